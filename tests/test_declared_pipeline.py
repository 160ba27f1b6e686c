"""A declared task through every stage of the command line, on tiny data: raw, prepare, train (registered
as geofm-<task>-<model>), report (a column of its own) and the prediction of the whole survey it came
from, written as SEG-Y with the survey's headers; and in Dagster, one more partition beside a paper task."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import pytest
import segyio
import yaml
from declared_projects import SEGY_SOURCE, declared_params, write_folder_project, write_segy_project

from assets import build_benchmark_assets
from pipelines.cli.main import main
from pipelines.tracking.store import BenchmarkStore
from training.settings import Project
from training.survey.contract import model_contract


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
    raw["declared_tasks"]["horizons"]["colours"] = ["#aa0000", "#00aa00", "#0000aa"]
    raw["predict"]["surveys"] = {"whole": {"task": "horizons", "path": "survey.sgy"}}
    _write_params(tmp_path, raw)
    for command in (["raw"], ["prepare", "--task", "horizons"], ["train", "--task", "horizons", "--model",
                                                                  "unet"], ["report"]):
        _run(tmp_path, *command)
    assert "models:/geofm-horizons-unet/1" in capsys.readouterr().out
    header = next(line for line in (tmp_path / "reports" / "benchmark.md").read_text().splitlines()
                  if line.startswith("|"))
    assert header.split("|")[-2].strip() == "Own horizons"
    _run(tmp_path, "predictions", "--survey", "whole")
    output = next((tmp_path / "predictions" / "whole").glob("*.sgy"))
    with segyio.open(tmp_path / "survey.sgy") as survey, segyio.open(output) as classes:
        assert list(classes.ilines) == list(survey.ilines) and classes.tracecount == survey.tracecount
        assert classes.header[5][segyio.TraceField.CDP_X] == survey.header[5][segyio.TraceField.CDP_X]
        values = np.unique(segyio.tools.cube(classes))
    assert set(values) <= {0, 1, 2}
    settings = Project.load(tmp_path).settings
    loaded = BenchmarkStore.for_project(settings.mlflow, tmp_path).load_model("geofm-horizons-unet@best")
    contract = model_contract(loaded)  # what the figures of every survey it segments are labelled with
    assert contract.class_names == ("top", "middle", "bottom")
    assert contract.class_colours == ("#aa0000", "#00aa00", "#0000aa")


@pytest.mark.usefixtures("single_torch_thread")
def test_a_folder_task_trains_and_reports(tmp_path: Path) -> None:
    write_folder_project(tmp_path)
    source = {"kind": "folders", "path": "sections", "dat_shape": [24, 37]}
    _write_params(tmp_path, declared_params("facies", source, shape=(14, 28)))
    for command in (["raw"], ["prepare", "--task", "facies"],
                    ["train", "--task", "facies", "--model", "unet"], ["report"]):
        _run(tmp_path, *command)
    assert "Own facies" in (tmp_path / "reports" / "benchmark.md").read_text()


def test_dagster_partitions_hold_the_declared_task_and_prepare_it(tmp_path: Path) -> None:
    write_segy_project(tmp_path)
    raw = declared_params("horizons", SEGY_SOURCE)
    raw["tasks"] = ["salt", "horizons"]
    synthetic = raw["profiles"]["demo"]["data"]["synthetic"]
    synthetic.update(train_count=4, test_count=2, shapes={"salt": [28, 28]})
    _write_params(tmp_path, raw)
    project = Project.load(tmp_path)
    assets = {asset.key.to_user_string(): asset for asset in build_benchmark_assets(
        project.settings.tasks, project.settings.models, ["whole"])}
    assert assets["predictions"].partitions_def.get_partition_keys() == ["whole"]
    prepared = assets["prepared_data"]
    assert prepared.partitions_def.get_partition_keys() == ["salt", "horizons"]
    assert dg.materialize([assets["raw_data"]], resources={"project": project}).success
    result = dg.materialize([prepared], partition_key="horizons", resources={"project": project},
                            selection=[prepared.key])
    assert result.success
    assert (tmp_path / "data" / "prepared" / "horizons" / "train_inputs.npy").is_file()
