"""How training treats the model over the epochs, and what selects the kept epoch (`train.regime`).

- `geofm` (the default): train mode in every training epoch; the kept epoch has the best pooled mIoU on the
  validation split (carved from the record's train set), so the test split stays unseen.
- `authors`: what the authors' `demo_classification.py` does. It calls `net.train()` once, before epoch 1,
  and `net.eval()` in every epoch's validation, never `train()` again: from epoch 2 on, every BatchNorm
  normalizes with its frozen running statistics, and loralib's `eval()` has merged `B A / r` into the frozen
  weight, after which the LoRA factors get no gradient (AdamW then leaves them untouched, without weight
  decay). The kept epoch has the best per-batch-mean mIoU (`training.metrics.BatchMeanScores`, batches of
  the training batch size, each sample with its mirror) on the record's `valid` split, the split they
  report: selection on the test set, optimistic by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from training.lookup import lookup

LORA_FACTORS = ("lora_A", "lora_B")
"""Names of the LoRA factor modules (peft) or parameters (loralib) inside an adapted layer."""


@dataclass(frozen=True)
class TrainingRegime:
    """`train_mode_epochs`: epochs trained in train mode (None: all), the later ones in eval mode with the
    LoRA factors frozen; `selection_split`: `val` or `test`; `selection_protocol`: `pooled` (the confusion
    matrix's mIoU) or `authors` (the per-batch mean over mirror-pair batches)."""

    name: str
    train_mode_epochs: int | None
    selection_split: str
    selection_protocol: str

    @property
    def optimistic(self) -> bool:
        """True when the kept epoch is chosen on the split that is then reported."""
        return self.selection_split == "test"

    def prepare_epoch(self, model: nn.Module, epoch: int) -> None:
        """Put `model` in the mode its training runs in during `epoch` (1-based)."""
        model.train(self.train_mode_epochs is None or epoch <= self.train_mode_epochs)

    def drop_frozen_gradients(self, model: nn.Module, epoch: int) -> None:
        """Before the optimizer steps: from the first eval-mode epoch on, the LoRA factors lose their
        gradient, as after loralib's merge (AdamW skips a parameter without one: no update, no decay)."""
        if self.train_mode_epochs is None or epoch <= self.train_mode_epochs:
            return
        for parameter in lora_factors(model):
            parameter.grad = None


def lora_factors(model: nn.Module) -> list[nn.Parameter]:
    """Every LoRA factor of `model` (peft's `lora_A`/`lora_B` weights, or loralib's parameters)."""
    return [parameter for name, parameter in model.named_parameters()
            if any(f".{factor}." in f".{name}." for factor in LORA_FACTORS)]


REGIMES: dict[str, TrainingRegime] = {
    "geofm": TrainingRegime("geofm", train_mode_epochs=None, selection_split="val",
                            selection_protocol="pooled"),
    "authors": TrainingRegime("authors", train_mode_epochs=1, selection_split="test",
                              selection_protocol="authors"),
}


def get_regime(name: str) -> TrainingRegime:
    """The regime called `name`; another name is an error listing the known ones."""
    return lookup("training regime", name, REGIMES)
