"""What a model must carry to be applied to a survey: the section size it was trained on and the amplitude
range of its training inputs. Read from the model's attributes; explicit values override them."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

TRAINING_SHAPE_ATTRIBUTE = "training_shape"
INPUT_RANGE_ATTRIBUTE = "input_range"


@dataclass(frozen=True)
class ModelContract:
    """`training_shape`: (height, width) of the training sections, the tile size of prediction;
    `input_range`: (low, high) amplitudes of the training inputs, the target of amplitude mapping."""

    training_shape: tuple[int, int]
    input_range: tuple[float, float] | None

    def __post_init__(self) -> None:
        if len(self.training_shape) != 2 or min(self.training_shape) < 1:
            raise ValueError(f"training shape must be two positive sizes, got {self.training_shape}")
        if self.input_range is not None and not self.input_range[0] < self.input_range[1]:
            raise ValueError(f"input range must be (low, high) with low < high, got {self.input_range}")


def model_contract(
    model: nn.Module,
    *,
    tile_shape: tuple[int, int] | None = None,
    input_range: tuple[float, float] | None = None,
) -> ModelContract:
    """The contract of `model`: `tile_shape` or `model.training_shape`, `input_range` or
    `model.input_range` (None when neither is known). A model without a training shape, and none given,
    is an error naming the attribute."""
    shape = tile_shape if tile_shape is not None else getattr(model, TRAINING_SHAPE_ATTRIBUTE, None)
    if shape is None:
        raise ValueError(
            f"{type(model).__name__} carries no `{TRAINING_SHAPE_ATTRIBUTE}` (the section size it was "
            "trained on, the tile size of prediction); give tile_shape=(height, width)"
        )
    amplitudes = input_range if input_range is not None else getattr(model, INPUT_RANGE_ATTRIBUTE, None)
    return ModelContract(
        training_shape=(int(shape[0]), int(shape[1])),
        input_range=None if amplitudes is None else (float(amplitudes[0]), float(amplitudes[1])),
    )
