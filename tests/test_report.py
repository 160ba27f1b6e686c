"""The benchmark tables: paper order, our numbers in the right cells, the paper's numbers beside our scores
of the paper's protocol only, each table's protocol in the table, and what else differs from the authors'
computation under the paper-protocol tables."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from pipelines.tracking.store import summary_metrics
from training.authors_code import AUTHORS_CODE, paper_differences
from training.report import (
    NETWORK_ROWS,
    PAPER_MIOU,
    PAPER_MPA,
    benchmark_tables,
    network_row,
    tables_markdown,
)
from training.settings import Settings, load_settings

ROWS = ["Unet", "DINOv2-LINEAR", "DINOv2-PUP", "DINOv2-DPT", "DINOv2-MLA"]
COLUMNS = ["Seismic Facies", "Seismic Geobody", "Crater", "DAS", "Deep Fault"]


def _result(task: str, network: str, mode: str, miou: float, mpa: float,
            authors: tuple[float, float] = (math.nan, math.nan)) -> dict[str, object]:
    return {"task": task, "network": network, "mode": mode, "miou": miou, "mpa": mpa,
            "authors_miou": authors[0], "authors_mpa": authors[1]}


def test_paper_tables_hold_the_published_numbers_in_readme_order() -> None:
    for paper in (PAPER_MIOU, PAPER_MPA):
        assert list(paper.index) == ROWS
        assert list(paper.columns) == COLUMNS
    assert PAPER_MIOU.loc["DINOv2-MLA", "Deep Fault"] == 0.7613
    assert PAPER_MIOU.loc["Unet", "Seismic Facies"] == 0.5490
    assert PAPER_MPA.loc["DINOv2-PUP", "Seismic Facies"] == 0.9102
    assert PAPER_MPA.loc["DINOv2-LINEAR", "DAS"] == 0.9033
    assert list(NETWORK_ROWS.values()) == ROWS


def test_tables_put_each_result_in_its_cell_in_paper_order_with_nan_for_missing() -> None:
    results = [
        _result("fault", "mla", "lora", 0.70, 0.80),
        _result("seam", "unet", "full", 0.40, 0.55),
        _result("salt", "linear", "lora", 0.85, 0.91),
    ]
    tables = benchmark_tables(results)
    assert set(tables) == {f"{key}{std}" for key in ("miou", "mpa", "authors_miou", "authors_mpa")
                           for std in ("", "_std")}
    assert tables["miou_std"].isna().all().all()  # one seed per cell: no spread
    for table in tables.values():
        assert list(table.index) == ROWS
        assert list(table.columns) == COLUMNS
    assert tables["miou"].loc["DINOv2-MLA", "Deep Fault"] == 0.70
    assert tables["mpa"].loc["Unet", "Seismic Facies"] == 0.55
    assert tables["miou"].loc["DINOv2-LINEAR", "Seismic Geobody"] == 0.85
    assert int(tables["miou"].notna().sum().sum()) == 3
    assert math.isnan(tables["mpa"].loc["DINOv2-DPT", "Crater"])


def test_several_modes_label_the_vit_rows_but_not_unet() -> None:
    results = [
        _result("das", "pup", "lora", 0.81, 0.90),
        _result("das", "pup", "frozen", 0.75, 0.85),
        _result("das", "unet", "full", 0.70, 0.80),
    ]
    table = benchmark_tables(results)["miou"]
    assert list(table.index) == [
        "Unet",
        "DINOv2-LINEAR (frozen)", "DINOv2-LINEAR (lora)",
        "DINOv2-PUP (frozen)", "DINOv2-PUP (lora)",
        "DINOv2-DPT (frozen)", "DINOv2-DPT (lora)",
        "DINOv2-MLA (frozen)", "DINOv2-MLA (lora)",
    ]
    assert table.loc["DINOv2-PUP (lora)", "DAS"] == 0.81
    assert table.loc["DINOv2-PUP (frozen)", "DAS"] == 0.75
    assert table.loc["Unet", "DAS"] == 0.70


def test_the_rows_name_an_encoder_other_than_the_papers_and_keep_its_paper_numbers() -> None:
    results = [_result("das", "mla", "lora", 0.61, 0.71, authors=(0.62, 0.72)),
               _result("das", "mla", "frozen", 0.51, 0.61), _result("das", "unet", "full", 0.5, 0.6)]
    tables = benchmark_tables(results, encoder="vit_base_patch16_dinov3")
    assert list(tables["miou"].index) == [
        "Unet", *(f"DINOv3 ViT-B/16-{name} ({mode})" for name in ("LINEAR", "PUP", "DPT", "MLA")
                  for mode in ("frozen", "lora"))]
    assert tables["miou"].loc["DINOv3 ViT-B/16-MLA (lora)", "DAS"] == 0.61
    markdown = tables_markdown(tables)
    assert markdown.startswith("ViT rows: encoder DINOv3 ViT-B/16 (`vit_base_patch16_dinov3`) (the paper's: "
                               "DINOv2 ViT-S/14).\n")
    assert "DINOv2-" not in markdown
    paper_miou = _sections(markdown)["mIoU, the paper's protocol, beside the paper"]
    assert _row(paper_miou, "DINOv3 ViT-B/16-MLA (lora)")[3] == "0.6200 (paper 0.8591)"
    assert _row(paper_miou, "DINOv3 ViT-B/16-PUP (frozen)")[3] == "— (paper 0.8487)"
    names = {metric.key for metric in summary_metrics(tables)}
    assert "miou/DINOv3 ViT-B-16-MLA lora/DAS" in names  # one level per part: the encoder's slash goes


def test_each_encoder_family_and_size_has_its_own_rows() -> None:
    assert network_row("mla") == "DINOv2-MLA"  # the paper's encoder keeps the paper's rows
    assert network_row("pup", "vit_large_patch14_reg4_dinov2") == "DINOv2 ViT-L/14 reg4-PUP"
    assert network_row("linear", "vit_small_plus_patch16_dinov3") == "DINOv3 ViT-S+/16-LINEAR"
    assert network_row("unet", "vit_large_patch16_dinov3") == "Unet"
    paper = tables_markdown(benchmark_tables([_result("salt", "dpt", "lora", 0.8, 0.9)]))
    assert paper.startswith("ViT rows: encoder DINOv2 ViT-S/14 (`vit_small_patch14_dinov2`), the paper's.\n")
    with pytest.raises(KeyError, match="unknown encoder 'vit_tiny'"):
        network_row("mla", "vit_tiny")


def test_another_encoder_is_listed_beside_the_paper() -> None:
    notes = paper_differences(Settings(model={"encoder": "vit_large_patch16_dinov3"}))
    assert any(line.startswith("`model.encoder: vit_large_patch16_dinov3` (theirs `vit_small_patch14_dinov2`")
               for line in notes), notes
    assert not any(line.startswith("`model.encoder") for line in paper_differences(Settings()))


def _sections(markdown: str) -> dict[str, str]:
    """Title -> the markdown under it."""
    return {part.split("\n", 1)[0]: part.split("\n", 1)[1] for part in markdown.split("## ")[1:]}


def _row(section: str, label: str) -> list[str]:
    line = next(line for line in section.splitlines() if line.startswith(f"| {label} "))
    return [cell.strip() for cell in line.strip("|").split("|")][1:]


def test_the_paper_number_stands_beside_our_score_of_its_protocol_only() -> None:
    results = [_result("crater", "dpt", "lora", 0.6123, 0.7001, authors=(0.6400, 0.7300)),
               _result("das", "dpt", "frozen", 0.5, 0.6, authors=(0.55, 0.65))]
    sections = _sections(tables_markdown(benchmark_tables(results)))
    assert list(sections) == ["mIoU (pooled)", "mPA (pooled)", "mIoU, the paper's protocol, beside the paper",
                              "mPA, the paper's protocol, beside the paper"]
    pooled_miou, pooled_mpa, paper_miou, paper_mpa = sections.values()
    for pooled in (pooled_miou, pooled_mpa):  # our headline: pooled, never beside the paper
        assert "(paper" not in pooled
        assert _row(pooled, "Protocol") == ["pooled"] * 5
    assert _row(pooled_miou, "DINOv2-DPT (lora)")[2] == "0.6123"
    assert _row(pooled_mpa, "DINOv2-DPT (lora)")[2] == "0.7001"
    for paper in (paper_miou, paper_mpa):
        assert _row(paper, "Protocol") == ["per-batch (ours and paper)"] * 5
    assert _row(paper_miou, "DINOv2-DPT (lora)")[:3] == ["— (paper 0.6709)", "— (paper 0.8912)",
                                                         "0.6400 (paper 0.6917)"]
    assert _row(paper_mpa, "DINOv2-DPT (lora)")[2] == "0.7300 (paper 0.7462)"
    assert _row(paper_miou, "DINOv2-DPT (frozen)")[3] == "0.5500 (paper 0.8672)"
    assert _row(paper_miou, "Unet")[0] == "— (paper 0.5490)"


def test_what_else_differs_from_the_authors_is_listed_under_the_paper_tables() -> None:
    notes = ["`train.epochs: 5` (theirs `100`)", "selection: on validation"]
    tables = benchmark_tables([_result("salt", "mla", "lora", 0.8, 0.9, authors=(0.81, 0.91))], notes)
    sections = _sections(tables_markdown(tables))
    for title, section in sections.items():
        if "paper's protocol" in title:
            assert section.rstrip().endswith("Beside the paper:\n- `train.epochs: 5` (theirs `100`)\n"
                                              "- selection: on validation")
        else:
            assert "Beside the paper" not in section


def test_the_paper_profile_differs_from_the_authors_code_only_in_selection_and_precision() -> None:
    """Every `AUTHORS_CODE` setting is at their value under `paper` and `paper-scripts`; the demo names each
    setting it changes."""
    for profile in ("paper", "paper-scripts"):
        differences = paper_differences(load_settings("params.yaml", profile))
        assert [line.split(":")[0] for line in differences] == ["selection", "precision"], differences
        assert "OPTIMISTIC" in differences[0]
    demo = paper_differences(load_settings("params.yaml", "demo"))
    for key in ("data.source", "train.epochs", "train.batch_size", "train.lr", "model.input_scaling"):
        assert any(line.startswith(f"`{key}: ") for line in demo), key
    assert any("random" in line for line in demo)
    assert {setting.key for setting in AUTHORS_CODE} >= {"train.regime", "model.position_grid", "train.loss"}


def test_bad_results_are_named() -> None:
    with pytest.raises(KeyError, match="unknown network 'segformer'"):
        benchmark_tables([_result("salt", "segformer", "lora", 0.5, 0.5)])
    with pytest.raises(KeyError, match="unknown task 'mars'"):
        benchmark_tables([_result("mars", "mla", "lora", 0.5, 0.5)])
    with pytest.raises(ValueError, match="two results for DINOv2-MLA on task 'salt'"):
        benchmark_tables([_result("salt", "mla", "lora", 0.5, 0.5), _result("salt", "mla", "lora", 0.6, 0.6)])
    with pytest.raises(KeyError, match="missing the 'mpa' table"):
        tables_markdown({"miou": pd.DataFrame()})


def test_the_docs_list_every_setting_where_our_default_is_not_the_authors() -> None:
    page = (Path(__file__).parents[1] / "docs" / "paper.md").read_text()
    differences = page.split("## Where we differ from the paper")[1].split("\n## ")[0]
    defaults, listed = Settings(), []
    for setting in AUTHORS_CODE:
        value: object = defaults
        for part in setting.key.split("."):
            value = getattr(value, part)
        if value != setting.value:
            assert f"`{setting.key}: {setting.value}`" in differences, setting.key
            listed.append(setting.key)
    assert sorted(listed) == ["model.input_scaling", "model.position_grid", "model.unet_forward",
                              "train.batch_composition", "train.regime"]
