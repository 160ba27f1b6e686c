"""A project: its root folder and its validated settings, what every stage is called with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from training.settings.loading import load_settings
from training.settings.paths import ProjectPaths
from training.settings.schema import Settings

PARAMS_FILE = "params.yaml"


@dataclass(frozen=True)
class Project:
    """The project folder (absolute) and the settings of its params file under one profile."""

    root: Path
    settings: Settings

    @classmethod
    def load(cls, root: Path, params_file: str = PARAMS_FILE, profile: str | None = None) -> Project:
        """Read and validate `root/params_file` under `profile` (default: the file's own)."""
        root = Path(root).resolve()
        return cls(root, load_settings(root / params_file, profile))

    @property
    def paths(self) -> ProjectPaths:
        return ProjectPaths.of(self.settings, self.root)
