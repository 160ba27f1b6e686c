"""Where each stage reads and writes, resolved under the project root from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from training.settings.schema import Settings


@dataclass(frozen=True)
class ProjectPaths:
    """The project's folders (absolute), as `params.yaml` names them relative to the root."""

    root: Path
    raw_dir: Path
    prepared_dir: Path
    runs_dir: Path
    reports_dir: Path
    checkpoints_dir: Path

    @classmethod
    def of(cls, settings: Settings, root: Path) -> ProjectPaths:
        root = Path(root).resolve()
        data, outputs = settings.data, settings.outputs
        return cls(root, root / data.raw_dir, root / data.prepared_dir, root / outputs.runs_dir,
                   root / outputs.reports_dir, root / outputs.checkpoints_dir)

    def run_dir(self, task_key: str, model_key: str) -> Path:
        """`<runs_dir>/<task>/<model>`: metrics.json, history.csv and artifacts/ of one training."""
        return self.runs_dir / task_key / model_key

    def relative(self, path: Path) -> str:
        """`path` relative to the root, as dvc.yaml spells it."""
        return Path(path).relative_to(self.root).as_posix()
