"""Declared tasks: a user's own labelled data (`declared_tasks:` in params.yaml) turned into the raw
sections of each split (`raw`) and into the same training-ready arrays as the paper tasks (`prepare`)."""
