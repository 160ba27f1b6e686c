"""Label values of a declared task checked and brought to the prepared convention: class ids 0..C-1, and
`UNLABELLED` where the user's own unlabelled value (or a dead trace) stands."""

from __future__ import annotations

import numpy as np

from training.declared.sections import DeclaredSourceError
from training.tasks import UNLABELLED


def class_ids(values: np.ndarray, num_classes: int, unlabelled: int, where: str) -> np.ndarray:
    """`values` as uint8 class ids with `unlabelled` turned into `UNLABELLED`; a value that is neither a
    class id nor `unlabelled` is refused, naming `where`."""
    values = np.asarray(values)
    known = ((values >= 0) & (values < num_classes)) | (values == unlabelled)
    if values.dtype.kind == "f":
        known &= values == np.round(values)
    if not known.all():
        bad = values[~known].reshape(-1)[0]
        raise DeclaredSourceError(f"{where}: label value {bad:g} is not a class id (0..{num_classes - 1}) "
                                  f"nor the unlabelled value {unlabelled}")
    ids = values.astype(np.int64)
    return np.where(ids == unlabelled, UNLABELLED, ids).astype(np.uint8)
