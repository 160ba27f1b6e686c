"""The base of every settings section, and the value types several sections share."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from training.tasks import get_task

Size = Annotated[int, Field(gt=0)]
TaskKey = Annotated[str, AfterValidator(lambda key: get_task(key).key)]


class Section(BaseModel):
    """A settings section: immutable, unknown keys refused; YAML lists are read as tuples."""

    model_config = ConfigDict(frozen=True, extra="forbid")
