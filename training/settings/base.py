"""The base of every settings section, and the value types several sections share."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from training.tasks import get_task

Size = Annotated[int, Field(gt=0)]
TaskKey = Annotated[str, AfterValidator(lambda key: get_task(key).key)]


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
