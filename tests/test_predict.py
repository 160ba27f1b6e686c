"""Segmenting a section of one's own: reading .dat, .npy and SEG-Y sections, and `geofm predict` with a
model registered in a temporary MLflow store."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import segyio
import segyio.tools
import torch
from segy_files import cube_trace_order, headers_only, write_cube
from tiny_benchmark import write_tiny_params
from tiny_models import TinySegmenter

from pipelines.cli.main import main
from pipelines.tracking.store import BenchmarkStore
from training.settings import load_settings
from training.survey import ModelContract, model_contract, read_section

SECTION = np.random.default_rng(0).normal(size=(24, 40)).astype(np.float32)
"""24 time samples (rows) by 40 traces (columns)."""


def write_segy(path: Path, section: np.ndarray) -> Path:
    """A SEG-Y file of IEEE floats (exact) whose traces are the columns of `section`."""
    segyio.tools.from_array2D(
        str(path), np.ascontiguousarray(section.T), format=segyio.SegySampleFormat.IEEE_FLOAT_4_BYTE
    )
    return path


def test_the_three_formats_give_the_same_section(tmp_path: Path) -> None:
    SECTION.tofile(tmp_path / "s.dat")
    np.save(tmp_path / "s.npy", SECTION)
    write_segy(tmp_path / "s.sgy", SECTION)
    np.testing.assert_array_equal(read_section(tmp_path / "s.dat", (24, 40)), SECTION)
    np.testing.assert_array_equal(read_section(tmp_path / "s.npy"), SECTION)
    np.testing.assert_array_equal(read_section(tmp_path / "s.sgy"), SECTION)


def test_bad_sections_are_named(tmp_path: Path) -> None:
    SECTION.tofile(tmp_path / "s.dat")
    with pytest.raises(ValueError, match=r"s\.dat: a raw \.dat file has no header"):
        read_section(tmp_path / "s.dat")
    with pytest.raises(ValueError, match=r"s\.dat: 3840 bytes, but a 24x41 float32 array has 3936"):
        read_section(tmp_path / "s.dat", (24, 41))
    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match=r"cube\.npy: expected a 2-D section"):
        read_section(tmp_path / "cube.npy")
    np.save(tmp_path / "nan.npy", np.full((3, 3), np.nan, np.float32))
    with pytest.raises(ValueError, match=r"nan\.npy: the section holds NaN or inf"):
        read_section(tmp_path / "nan.npy")
    (tmp_path / "junk.sgy").write_bytes(b"not a segy file")
    with pytest.raises(ValueError, match=r"junk\.sgy: cannot read as big-endian SEG-Y"):
        read_section(tmp_path / "junk.sgy")
    with pytest.raises(ValueError, match=r"s\.tif: unknown survey format; known: \.dat, \.npy"):
        read_section(tmp_path / "s.tif")
    with pytest.raises(FileNotFoundError, match=r"missing\.npy"):
        read_section(tmp_path / "missing.npy")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TinySegmenter]:
    """A project root whose MLflow store holds one registered model, `geofm-das-tiny`, aliased best."""
    root = tmp_path_factory.mktemp("project")
    write_tiny_params(root, ["das"], ["unet"])
    store = BenchmarkStore.for_project(load_settings(root / "params.yaml").mlflow, root)
    torch.manual_seed(0)
    model = TinySegmenter(num_classes=2, input_mean=0.1, input_std=0.5, training_shape=SECTION.shape)
    parent = store.parent_run("predict-test", {})
    with store.child_run(parent, "das-tiny", registered_name="geofm-das-tiny") as tracker:
        ref = tracker.log_model(model, "model")
    store.promote(ref, val_miou=0.5)
    return root, model


def test_predict_writes_the_models_classes_and_a_figure(
    project: tuple[Path, TinySegmenter], tmp_path: Path
) -> None:
    root, model = project
    output, figure = tmp_path / "out" / "classes.npy", tmp_path / "classes.png"
    status = main(
        [
            "--root",
            str(root),
            "predict",
            "--model",
            "geofm-das-tiny",
            "--input",
            str(write_segy(tmp_path / "line.sgy", SECTION)),
            "--output",
            str(output),
            "--figure",
            str(figure),
            "--no-amplitude-mapping",
        ]
    )
    assert status == 0
    with torch.inference_mode():
        expected = model(torch.from_numpy(SECTION)[None, None]).argmax(dim=1)[0].numpy()
    classes = np.load(output)
    assert classes.dtype == np.uint8 and classes.shape == SECTION.shape
    np.testing.assert_array_equal(classes, expected)
    assert 0 < expected.sum() < expected.size
    assert figure.stat().st_size > 0
    written = sorted(path.name for path in output.parent.iterdir())
    assert written == ["classes.json", "classes.npy", "classes.sgy"]


def test_a_registered_model_carries_its_training_shape_and_input_range(
    project: tuple[Path, TinySegmenter],
) -> None:
    root, model = project
    store = BenchmarkStore.for_project(load_settings(root / "params.yaml").mlflow, root)
    loaded = store.load_model("geofm-das-tiny@best")
    assert model_contract(loaded) == ModelContract(training_shape=SECTION.shape, input_range=(0.0, 255.0))


def test_predict_names_an_unknown_model_and_writes_nothing(
    project: tuple[Path, TinySegmenter], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, _ = project
    np.save(tmp_path / "s.npy", SECTION)
    status = main(
        [
            "--root",
            str(root),
            "predict",
            "--model",
            "geofm-das-nothing@best",
            "--input",
            str(tmp_path / "s.npy"),
            "--output",
            str(tmp_path / "classes.npy"),
        ]
    )
    assert status == 2
    assert "cannot load model models:/geofm-das-nothing@best" in capsys.readouterr().err
    assert not (tmp_path / "classes.npy").exists()


def _predict(root: Path, model: str, source: Path, output: Path, *flags: str) -> int:
    return main(["--root", str(root), "predict", "--model", model, "--input", str(source), "--output",
                 str(output), "--no-amplitude-mapping", *flags])


def test_predict_records_the_resolved_model_and_says_what_it_read(
    project: tuple[Path, TinySegmenter], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, _ = project
    cube = np.random.default_rng(2).uniform(0, 255, size=(6, 10, 18)).astype(np.float32)
    source = write_cube(tmp_path / "xline.sgy", cube, cells=[(i, 4) for i in range(6)])
    output = tmp_path / "out" / "classes.npy"
    assert _predict(root, "geofm-das-tiny", source, output, "--figure", str(tmp_path / "out" / "x.png")) == 0
    record = json.loads(output.with_suffix(".json").read_text())
    version = BenchmarkStore.for_project(load_settings(root / "params.yaml").mlflow, root).client \
        .get_model_version_by_alias("geofm-das-tiny", "best")
    assert record["provenance"] == {"model": "models:/geofm-das-tiny@best", "model_name": "geofm-das-tiny",
                                    "model_version": str(version.version), "model_run_id": version.run_id}
    assert np.load(output).shape == (18, 6) and record["layout"] == ["sample", "inline"]
    assert "1 section of crossline 24 (18 samples x 6 inlines) in" in capsys.readouterr().out


@pytest.mark.parametrize(("case", "flags", "message"), [
    ("missing", (), r"survey file not found: \S*missing\.sgy"),
    ("headers only", (), r"empty\.sgy: holds SEG-Y headers but no traces"),
    ("prestack", ("--line-2d",), r"prestack\.sgy: prestack data, offset gathers with 2 offsets"),
    ("doubled", (), r"doubled\.sgy: .* pass --duplicates first or --duplicates last"),
    ("no geometry", (), r"flat\.sgy: all 20 traces .* pass --line-2d .* --inline-byte and --crossline-byte"),
    ("little", ("--endian", "big"), r"little\.sgy: cannot read as big-endian SEG-Y .* give it with --endian"),
])
def test_predict_checks_the_survey_before_loading_the_model_and_names_the_flag(
    case: str, flags: tuple[str, ...], message: str, project: tuple[Path, TinySegmenter], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The model named does not exist: each survey error comes first, in one sentence, with status 2."""
    root, _ = project
    cube = np.random.default_rng(3).normal(size=(3, 20, 18)).astype(np.float32)
    cells = cube_trace_order((3, 20), "inline")
    sources = {
        "missing": lambda: tmp_path / "missing.sgy",
        "headers only": lambda: headers_only(write_cube(tmp_path / "cube.sgy", cube), tmp_path / "empty.sgy"),
        "prestack": lambda: write_cube(tmp_path / "prestack.sgy", cube,
                                       cells=[c for c in cells for _ in "ab"], offsets=[100, 200] * 60),
        "doubled": lambda: write_cube(tmp_path / "doubled.sgy", cube, cells=[*cells, cells[7]]),
        "no geometry": lambda: write_cube(tmp_path / "flat.sgy", cube, cells=[(0, 0)] * 20),
        "little": lambda: write_cube(tmp_path / "little.sgy", cube, endian="little"),
    }
    assert _predict(root, "geofm-das-nothing", sources[case](), tmp_path / "classes.npy", *flags) == 2
    error = capsys.readouterr().err
    assert re.search(rf"geofm predict: (\S*/)?{message}", error), error
    assert "cannot load model" not in error and not (tmp_path / "classes.npy").exists()


def test_predict_reads_header_bytes_and_duplicates_from_flags(
    project: tuple[Path, TinySegmenter], tmp_path: Path
) -> None:
    root, _ = project
    cube = np.random.default_rng(4).uniform(0, 255, size=(3, 20, 18)).astype(np.float32)
    cells = cube_trace_order((3, 20), "inline")
    source = write_cube(tmp_path / "cube.sgy", cube, cells=[*cells, cells[7]])
    swapped = tmp_path / "swapped.npy"
    flags = ("--inline-byte", "193", "--crossline-byte", "189", "--duplicates", "last")
    assert _predict(root, "geofm-das-tiny", source, swapped, *flags) == 0
    record = json.loads(swapped.with_suffix(".json").read_text())
    assert np.load(swapped).shape == (20, 3, 18) and record["survey_shape"] == [20, 3, 18]
