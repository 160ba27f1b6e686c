"""A task declared in params.yaml: validated at load, its SEG-Y survey or folders of sections turned into
the same training-ready arrays as a paper task, split in blocks with a gap, unlabelled pixels kept out of
every loss, and a bad source refused before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from declared_projects import (
    LABELLED_INLINES,
    SEGY_SOURCE,
    SHAPE,
    UNLABELLED_VALUE,
    declared_params,
    declared_settings,
    write_folder_project,
    write_segy_project,
)
from PIL import Image
from segy_files import FIRST_INLINE, write_cube

from training.data.card import CARD_FILE, read_card
from training.data.dataset import PreparedDataset
from training.declared.sections import DeclaredSourceError
from training.losses import build_loss
from training.metrics import ConfusionMatrix
from training.settings import SettingsError
from training.stages.prepare import prepare, validate_prepared_data
from training.stages.raw import materialize_raw, validate_raw_data
from training.tasks import UNLABELLED


def _prepare(root: Path, raw: dict, key: str) -> Path:
    settings = declared_settings(raw)
    materialize_raw(settings, root)
    validate_raw_data(settings, root)
    folder = prepare(settings, root, key).folder
    validate_prepared_data(settings, root, key)
    return folder


@pytest.mark.parametrize("order", ["inline", "crossline"])
def test_a_segy_task_is_prepared_in_blocks_with_a_gap(tmp_path: Path, order: str) -> None:
    write_segy_project(tmp_path, order)
    raw = declared_params("horizons", {**SEGY_SOURCE, "sections": "both"})
    folder = _prepare(tmp_path, raw, "horizons")
    members = json.loads((folder / "splits.json").read_text())
    blocks = {split: range(first, last + 1) for split, (first, last) in
              (("train", (100, 102)), ("val", (104, 105)), ("test", (107, 108)))}
    for split, names in members.items():
        inlines = {int(name.split("@")[0].split("-")[1]) for name in names if name.startswith("inline")}
        assert inlines == {number for number in LABELLED_INLINES if number in blocks[split]}
        pieces = {name.split("@")[0].partition("-inlines-")[2] for name in names
                  if name.startswith("crossline")}
        first, last = blocks[split][0], blocks[split][-1]
        assert pieces == {f"{first}-{last}"}  # a crossline's piece never reaches past its block
    for split in members:
        dataset = PreparedDataset(tmp_path / "data" / "prepared", "horizons", split, flip_pairs=False)
        inputs, labels = dataset.read_sample(0)
        assert inputs.shape == labels.shape == (28, 28)
        assert 0.0 <= inputs.min() and inputs.max() <= 255.0  # mapped as `geofm predict` maps the survey
        assert set(np.unique(labels)) <= {0, 1, 2, UNLABELLED}
    card = read_card(folder / CARD_FILE)
    assert list(card.index) == ["train", "val", "test"] and (card["unlabelled_fraction"] > 0).all()
    source = json.loads((folder / "source.json").read_text())
    assert source["geometry"]["inlines"] == [100, 111] and source["amplitude"]["percentiles"] == [1.0, 99.0]


def test_unlabelled_traces_of_a_partly_labelled_inline_stay_unlabelled(tmp_path: Path) -> None:
    write_segy_project(tmp_path)
    folder = _prepare(tmp_path, declared_params("horizons", SEGY_SOURCE), "horizons")
    names = json.loads((folder / "splits.json").read_text())["train"]
    labels = np.load(folder / "train_labels.npy")
    # inline 101 is labelled on its first 20 of 40 crosslines: its tiles beyond them are unlabelled
    for name, tile in zip(names, labels, strict=True):
        section, _, origin = name.partition("@")
        column = int(origin.split(",")[1])
        if section == "inline-101":
            labelled_columns = np.flatnonzero((tile != UNLABELLED).any(axis=0)) + column
            assert labelled_columns.max() < SHAPE[1] // 2


def test_a_label_volume_in_npy_gives_the_same_arrays_as_the_label_cube(tmp_path: Path) -> None:
    write_segy_project(tmp_path)
    from_segy = _prepare(tmp_path, declared_params("horizons", SEGY_SOURCE), "horizons")
    segy_labels = np.load(from_segy / "train_labels.npy")
    raw = declared_params("horizons", {**SEGY_SOURCE, "survey": f"{tmp_path}/survey.sgy",
                                       "labels": f"{tmp_path}/labels.npy"})
    other = tmp_path / "other"
    other.mkdir()
    assert np.array_equal(np.load(_prepare(other, raw, "horizons") / "train_labels.npy"), segy_labels)


def test_a_folder_label_of_another_size_is_refused(tmp_path: Path) -> None:
    write_folder_project(tmp_path)
    labels = tmp_path / "sections" / "val" / "labels"
    Image.fromarray(np.zeros((24, 31), np.uint8)).save(labels / "val0.png")
    source = {"kind": "folders", "path": "sections", "dat_shape": [24, 37]}
    params = declared_params("facies", source)
    _refused(tmp_path, params, r"val0\.png: labels of 24x31 for a section of 24x30")
    np.save(labels / "val0.npy", np.zeros((24, 30), np.uint8))
    _refused(tmp_path, params, r"val0\.png: val0\.npy has the same name")


def test_a_folder_task_is_prepared(tmp_path: Path) -> None:
    write_folder_project(tmp_path)
    source = {"kind": "folders", "path": "sections", "dat_shape": [24, 37]}
    folder = _prepare(tmp_path, declared_params("facies", source, shape=(14, 28)), "facies")
    counts = json.loads((folder / "stats.json").read_text())["counts"]
    assert counts["train"] > counts["val"] > 0 and counts["test"] > 0
    labels = np.load(folder / "train_labels.npy")
    assert labels.shape[1:] == (14, 28) and (labels == UNLABELLED).any() and (labels < 3).any()


def test_unlabelled_pixels_never_reach_the_loss_or_the_scores() -> None:
    logits = torch.randn(2, 3, 8, 8, requires_grad=True)
    target = torch.randint(0, 3, (2, 8, 8))
    target[:, :, :4] = UNLABELLED
    for name in ("cross_entropy", "dice", "weighted_dice", "focal"):
        loss = build_loss(name, 3)
        changed = logits.detach().clone()
        changed[:, :, :, :4] = torch.randn(2, 3, 8, 4) * 10  # only the unlabelled pixels' scores change
        assert torch.allclose(loss(logits, target), loss(changed, target)), name
        logits.grad = None
        loss(logits, target).backward()
        assert (logits.grad[:, :, :, :4] == 0).all(), name
    matrix = ConfusionMatrix(3)
    matrix.update(logits.argmax(1), target)
    assert matrix.matrix.sum() == 2 * 8 * 4


def _refused(root: Path, raw: dict, match: str) -> None:
    settings = declared_settings(raw)
    with pytest.raises(DeclaredSourceError, match=match):
        materialize_raw(settings, root)
    assert not (root / "data").exists()  # refused before any work


def test_a_label_cube_of_another_geometry_is_refused(tmp_path: Path) -> None:
    write_segy_project(tmp_path)
    write_cube(tmp_path / "labels.sgy", np.zeros((SHAPE[0], SHAPE[1] - 1, SHAPE[2]), np.float32))
    _refused(tmp_path, declared_params("horizons", SEGY_SOURCE), r"labels\.sgy: the labels hold 12 inlines x "
             r"39 crosslines.*give labels of its geometry")


def test_an_unknown_class_id_is_refused(tmp_path: Path) -> None:
    write_segy_project(tmp_path)
    labels = np.full(SHAPE, UNLABELLED_VALUE, np.float32)
    labels[5, 3, 7] = 4
    write_cube(tmp_path / "labels.sgy", labels)
    _refused(tmp_path, declared_params("horizons", SEGY_SOURCE),
             rf"inline {FIRST_INLINE + 5}: label value 4 is not a class id \(0\.\.2\)")


def test_a_block_outside_the_survey_is_refused(tmp_path: Path) -> None:
    write_segy_project(tmp_path)
    _refused(tmp_path, declared_params("horizons", {**SEGY_SOURCE, "test": [107, 140]}),
             r"declared_tasks\.horizons\.source\.test: inlines \[107, 140\] reach outside the survey")


def test_overlapping_blocks_and_bad_declarations_are_refused_at_load() -> None:
    cases = {
        "overlap": ({**SEGY_SOURCE, "val": [102, 105]},
                    "the train inlines .* and the val inlines .* overlap"),
        "no gap": ({**SEGY_SOURCE, "val": [103, 105]}, "less than gap=1 inlines apart"),
        "kind": ({**SEGY_SOURCE, "kind": "las"}, r"declared_tasks\.horizons\.source: kind: expected"),
    }
    for source, match in cases.values():
        with pytest.raises(SettingsError, match=match):
            declared_settings(declared_params("horizons", source))
    raw = declared_params("horizons", SEGY_SOURCE)
    raw["declared_tasks"]["salt"] = raw["declared_tasks"]["horizons"]
    with pytest.raises(SettingsError, match="'salt' has the name of a paper task"):
        declared_settings(raw)
    raw = declared_params("horizons", SEGY_SOURCE)
    raw["tasks"] = ["horizons", "salt", "horizon"]
    with pytest.raises(SettingsError, match=r"tasks\[2\]: unknown task 'horizon'"):
        declared_settings(raw)


def test_a_declared_task_runs_next_to_the_paper_tasks() -> None:
    raw = declared_params("horizons", SEGY_SOURCE)
    raw["tasks"] = ["salt", "horizons"]
    specs = declared_settings(raw).task_specs
    assert specs["horizons"].num_classes == 3 and specs["horizons"].patch_grid == (2, 2)
    assert specs["salt"].unlabelled is None and specs["horizons"].unlabelled == UNLABELLED
