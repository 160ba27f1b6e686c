"""The task registry: the five segmentation tasks of the benchmark, as the Zenodo record ships them.

This is the one place that knows each task's section size, class count, ViT patch grid, folder names and
the paper's batch size. Other code asks `get_task(key)` or the settings (`Settings.task_specs`); the demo
profile of `params.yaml` may shrink sections (`data.synthetic.shapes`), and then the patch
grid follows the shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from training.lookup import lookup

PATCH_SIZE = 14
"""The patch size the registry's grids are given for (DINOv2's); `TaskSpec.for_patch_size` converts."""
UNLABELLED = 255
"""The label value of a pixel without a class (a declared task's uninterpreted traces, a tile's padding):
losses and scores leave it out."""
RECORD_INPUT_RANGE = (0.0, 255.0)
"""The amplitude range of every task's input sections in the record (the authors' uint8 cast assumes it)."""


@dataclass(frozen=True)
class TaskSpec:
    """One benchmark task: what a sample looks like on disk and how the ViT sees it."""

    key: str
    title: str
    shape: tuple[int, int]
    num_classes: int
    patch_grid: tuple[int, int]
    paper_batch_size: int
    input_dir: str
    label_dir: str
    train_count: int
    test_count: int
    patch_size: int = PATCH_SIZE
    unlabelled: int | None = None
    """The label value of pixels without a class (`UNLABELLED` for a declared task), None where every
    pixel has one (the paper tasks)."""

    @property
    def vit_input_shape(self) -> tuple[int, int]:
        """Height and width of the section after resizing to the ViT patch grid."""
        return self.patch_grid[0] * self.patch_size, self.patch_grid[1] * self.patch_size

    def with_shape(self, shape: tuple[int, int]) -> TaskSpec:
        """The same task at another section size, its patch grid rounded up to cover the section."""
        height, width = (int(size) for size in shape)
        grid = (math.ceil(height / self.patch_size), math.ceil(width / self.patch_size))
        return replace(self, shape=(height, width), patch_grid=grid)

    def for_patch_size(self, patch_size: int) -> TaskSpec:
        """The same task for an encoder of another patch size: the grid rounded up to cover the ViT input
        of this one (seam's 1008 x 784 pixels: 72 x 56 patches of 14, 63 x 49 of 16)."""
        if patch_size == self.patch_size:
            return self
        height, width = self.vit_input_shape
        grid = (math.ceil(height / patch_size), math.ceil(width / patch_size))
        return replace(self, patch_grid=grid, patch_size=patch_size)


TASKS: dict[str, TaskSpec] = {
    spec.key: spec
    for spec in (
        TaskSpec("seam", "Seismic Facies", (1006, 782), 6, (72, 56), 3, "input", "target", 250, 45),
        TaskSpec("salt", "Seismic Geobody", (224, 224), 2, (20, 20), 32, "input", "target", 3000, 1000),
        TaskSpec("crater", "Crater", (1022, 1022), 2, (73, 73), 3, "image", "label", 1000, 199),
        TaskSpec("das", "DAS", (512, 512), 2, (37, 37), 6, "image", "label", 115, 28),
        TaskSpec("fault", "Deep Fault", (896, 896), 2, (64, 64), 6, "image", "label", 1081, 269),
    )
}


def get_task(key: str) -> TaskSpec:
    """The registered task called `key`; an unknown key is an error naming the known ones."""
    return lookup("task", key, TASKS)
