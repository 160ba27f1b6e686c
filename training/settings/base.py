"""The base of every settings section, and the value types several sections share."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from training.catalog import ENCODERS, parse_model_key
from training.encoders import REFUSED_ENCODERS, refusal_message
from training.tasks import get_task

Size = Annotated[int, Field(gt=0)]
TaskKey = Annotated[str, AfterValidator(lambda key: get_task(key).key)]
ModelKeyText = Annotated[str, AfterValidator(lambda key: parse_model_key(key).key)]


def _offered(encoder: object) -> object:
    if encoder in REFUSED_ENCODERS:
        raise ValueError(refusal_message(str(encoder)))
    return encoder


Encoder = Annotated[Literal[ENCODERS], BeforeValidator(_offered)]  # type: ignore[valid-type]
"""A registered encoder's timm name; a refused one (`training.encoders.REFUSED_ENCODERS`) says why."""


class Section(BaseModel):
    """A settings section: immutable, unknown keys refused, no infinite or NaN number unless a field allows
    it, no `true`/`false` where a number is expected; YAML lists are read as tuples."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_number(cls, value: object, info: ValidationInfo) -> object:
        annotation = cls.model_fields[info.field_name].annotation
        expected = getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
        if isinstance(value, bool) and "bool" not in expected:
            raise ValueError(f"expected {expected}, not the boolean {str(value).lower()}")
        return value


def unique(kind: str, keys: tuple[str, ...]) -> tuple[str, ...]:
    """`keys`, or an error naming the first key listed twice."""
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ValueError(f"{kind} {repeated[0]!r} is listed twice")
    return keys
