"""The data layer: fetching the Zenodo record, safe extraction, validation, splits and prepared arrays."""
