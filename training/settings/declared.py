"""Tasks declared in `params.yaml` (`declared_tasks:`): a user's own labelled data, trained like a paper task.

A declared task names its classes, the section size it trains at, its batch size and its source: a 3-D
survey with a label cube (`kind: segy`), split into blocks of inlines with a gap between them, or folders
of 2-D sections and label images (`kind: folders`). Its `TaskSpec` comes from here (`task_spec`).
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from training.settings.base import Section, Size
from training.tasks import PATCH_SIZE, UNLABELLED, TaskSpec

TASK_NAME = re.compile(r"[a-z][a-z0-9_]*")
"""A declared task's name: it names folders, DVC stages, Dagster partitions and registered models."""

InlineRange = tuple[int, int]


class SegySource(Section):
    """A post-stack survey (SEG-Y, any trace sorting, or `.npy`) and labels of the same geometry."""

    kind: Literal["segy"] = Field(description="`segy`: a 3-D survey and a label cube")
    survey: str = Field(min_length=1, description="the survey (.sgy/.segy or .npy (inline, crossline, "
                                                  "sample)), relative to the project root")
    labels: str = Field(min_length=1, description="the labels: a SEG-Y cube of the survey's geometry or "
                                                  "a .npy volume of its shape; class ids, `unlabelled` "
                                                  "elsewhere")
    unlabelled: int = Field(UNLABELLED, ge=0, le=255,
                            description="the label value of traces nobody interpreted (never trained on)")
    sections: Literal["inline", "crossline", "both"] = Field(
        "inline", description="the sections it trains on; a crossline is cut into its pieces in each block")
    train: InlineRange = Field(description="[first, last] inline numbers of the training block")
    val: InlineRange = Field(description="[first, last] inline numbers of the validation block")
    test: InlineRange = Field(description="[first, last] inline numbers of the test block")
    gap: int = Field(1, ge=0, description="inlines left out between two blocks (used nowhere)")

    @field_validator("train", "val", "test")
    @classmethod
    def _increasing(cls, block: InlineRange) -> InlineRange:
        if block[0] > block[1]:
            raise ValueError(f"expected [first, last] with first <= last, got {list(block)}")
        return block

    @model_validator(mode="after")
    def _apart(self) -> SegySource:
        blocks = sorted([(self.train, "train"), (self.val, "val"), (self.test, "test")])
        for (before, name), (after, other) in zip(blocks, blocks[1:], strict=False):
            if after[0] <= before[1]:
                raise ValueError(f"the {name} inlines {list(before)} and the {other} inlines {list(after)} "
                                 "overlap: a section may sit in one split only")
            if after[0] - before[1] - 1 < self.gap:
                raise ValueError(f"the {name} inlines {list(before)} and the {other} inlines {list(after)} "
                                 f"are less than gap={self.gap} inlines apart")
        return self

    @property
    def blocks(self) -> dict[str, InlineRange]:
        return {"train": self.train, "val": self.val, "test": self.test}


class FolderSource(Section):
    """Folders of 2-D sections and their label images: `<path>/<split>/{sections,labels}/<name>.<ext>`."""

    kind: Literal["folders"] = Field(description="`folders`: 2-D sections and label images per split")
    path: str = Field(min_length=1, description="the folder holding `train`, `val` and `test`, each with "
                                                "`sections/` (.npy, .dat) and `labels/` (.npy, .dat, .png, "
                                                ".tif) of the same names")
    dat_shape: tuple[Size, Size] | None = Field(
        None, description="[samples, traces] of the .dat files (float32 sections, uint8 labels)")
    unlabelled: int = Field(UNLABELLED, ge=0, le=255, description="the label value of unlabelled pixels")


def _source_kind(value: object) -> str | None:
    return value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)


Source = Annotated[Annotated[SegySource, Tag("segy")] | Annotated[FolderSource, Tag("folders")],
                   Discriminator(_source_kind, custom_error_type="source_kind",
                                 custom_error_message="kind: expected `segy` or `folders`")]


class DeclaredTask(Section):
    """One task of the user's own data."""

    title: str = Field(min_length=1, description="the task's name in the report and the figures")
    classes: tuple[Annotated[str, Field(min_length=1)], ...] = Field(
        min_length=2, max_length=255, description="class names, in the order of their ids 0, 1, ...")
    colours: tuple[Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")], ...] | None = Field(
        None, description="a `#rrggbb` colour per class for the figures; null: the default colours")
    shape: tuple[Size, Size] = Field(description="[height, width] of the training sections; longer "
                                                 "sections are cut into tiles, shorter ones padded")
    batch_size: int = Field(4, ge=1, description="its batch size where `train.batch_size` is `paper`")
    source: Source = Field(description="where its data lie: `kind: segy` or `kind: folders`")

    @model_validator(mode="after")
    def _a_colour_per_class(self) -> DeclaredTask:
        if self.colours is not None and len(self.colours) != len(self.classes):
            raise ValueError(f"colours: {len(self.colours)} colours for {len(self.classes)} classes")
        if self.source.unlabelled < len(self.classes):
            raise ValueError(f"source.unlabelled: {self.source.unlabelled} is a class id of "
                             f"{len(self.classes)} classes")
        return self


def check_task_name(name: str) -> str:
    """`name` if it can name a declared task; else a ValueError saying what a name may hold."""
    if not TASK_NAME.fullmatch(name):
        raise ValueError(f"declared task name {name!r}: allowed: lower-case letters, digits and _, "
                         "starting with a letter")
    return name


def task_spec(name: str, task: DeclaredTask) -> TaskSpec:
    """The registry entry of a declared task: its shape, classes, ViT patch grid and batch size."""
    grid = (math.ceil(task.shape[0] / PATCH_SIZE), math.ceil(task.shape[1] / PATCH_SIZE))
    return TaskSpec(name, task.title, tuple(task.shape), len(task.classes), grid, task.batch_size,
                    "input", "target", 0, 0, unlabelled=UNLABELLED)
