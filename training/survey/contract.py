"""What a model must carry to be applied to a survey: the section size it was trained on and the amplitude
range of its training inputs, and what it may carry for the figures: its class names and colours (a
declared task's). Read from the model's attributes; explicit values override them."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

TRAINING_SHAPE_ATTRIBUTE = "training_shape"
INPUT_RANGE_ATTRIBUTE = "input_range"
CLASS_NAMES_ATTRIBUTE = "class_names"
CLASS_COLOURS_ATTRIBUTE = "class_colours"


@dataclass(frozen=True)
class ModelContract:
    """`training_shape`: (height, width) of the training sections, the tile size of prediction;
    `input_range`: (low, high) amplitudes of the training inputs, the target of amplitude mapping."""

    training_shape: tuple[int, int]
    input_range: tuple[float, float] | None
    class_names: tuple[str, ...] | None = None
    class_colours: tuple[str, ...] | None = None

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
        class_names=getattr(model, CLASS_NAMES_ATTRIBUTE, None),
        class_colours=getattr(model, CLASS_COLOURS_ATTRIBUTE, None),
    )


def name_classes(model: nn.Module, names: tuple[str, ...], colours: tuple[str, ...] | None) -> None:
    """Let `model` carry its class names and colours (`#rrggbb`, or None for the default ones) to the
    figures of every survey it segments."""
    setattr(model, CLASS_NAMES_ATTRIBUTE, tuple(names))
    setattr(model, CLASS_COLOURS_ATTRIBUTE, None if colours is None else tuple(colours))
