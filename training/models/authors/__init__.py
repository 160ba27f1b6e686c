"""Import of checkpoints trained with the authors' code (their key names, their LoRA files, their forward).

`load_authors_checkpoint(path, network, task, finetune=..., lora_path=...)` gives a geofm model whose
logits equal the authors' forward on the same raw section (tested in tests/test_authors_import.py).
"""

from training.models.authors.checkpoint import AuthorsCheckpointError, load_authors_checkpoint

__all__ = ["AuthorsCheckpointError", "load_authors_checkpoint"]
