"""A declared task through every stage of the command line, on tiny data: raw, prepare, train (registered
as geofm-<task>-<model>), report (a column of its own) and the prediction of the whole survey it came
from, written as SEG-Y with the survey's headers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import segyio
import yaml
from declared_projects import SEGY_SOURCE, declared_params, write_folder_project, write_segy_project

from pipelines.cli.main import main


def _write_params(root: Path, raw: dict) -> None:
    raw["models"] = ["unet"]
    raw["profiles"]["demo"]["train"].update(epochs=1, batch_size=4, reproducibility="fast")
    raw["orchestration"].update(lease_dir=str(root / ".devices"))
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


def _run(root: Path, *command: str) -> None:
    assert main(["--root", str(root), *command]) == 0, command


@pytest.mark.usefixtures("single_torch_thread")
def test_a_segy_task_trains_reports_and_segments_its_survey(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    write_segy_project(tmp_path)
    raw = declared_params("horizons", SEGY_SOURCE)
    raw["predict"]["surveys"] = {"whole": {"task": "horizons", "path": "survey.sgy"}}
    _write_params(tmp_path, raw)
    for command in (["raw"], ["prepare", "--task", "horizons"], ["train", "--task", "horizons", "--model",
                                                                  "unet"], ["report"]):
        _run(tmp_path, *command)
    assert "models:/geofm-horizons-unet/1" in capsys.readouterr().out
    header = (tmp_path / "reports" / "benchmark.md").read_text().splitlines()[4]
    assert header.split("|")[-2].strip() == "Own horizons"
    _run(tmp_path, "predictions", "--survey", "whole")
    output = next((tmp_path / "predictions" / "whole").glob("*.sgy"))
    with segyio.open(tmp_path / "survey.sgy") as survey, segyio.open(output) as classes:
        assert list(classes.ilines) == list(survey.ilines) and classes.tracecount == survey.tracecount
        assert classes.header[5][segyio.TraceField.CDP_X] == survey.header[5][segyio.TraceField.CDP_X]
        values = np.unique(segyio.tools.cube(classes))
    assert set(values) <= {0, 1, 2}


@pytest.mark.usefixtures("single_torch_thread")
def test_a_folder_task_trains_and_reports(tmp_path: Path) -> None:
    write_folder_project(tmp_path)
    source = {"kind": "folders", "path": "sections", "dat_shape": [24, 37]}
    _write_params(tmp_path, declared_params("facies", source, shape=(14, 28)))
    for command in (["raw"], ["prepare", "--task", "facies"],
                    ["train", "--task", "facies", "--model", "unet"], ["report"]):
        _run(tmp_path, *command)
    assert "Own facies" in (tmp_path / "reports" / "benchmark.md").read_text()
