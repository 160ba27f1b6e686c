"""The benchmark tables: paper order, our numbers in the right cells, the paper's numbers beside ours."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from training.report import NETWORK_ROWS, PAPER_MIOU, PAPER_MPA, benchmark_tables, tables_markdown

ROWS = ["Unet", "DINOv2-LINEAR", "DINOv2-PUP", "DINOv2-DPT", "DINOv2-MLA"]
COLUMNS = ["Seismic Facies", "Seismic Geobody", "Crater", "DAS", "Deep Fault"]


def _result(task: str, network: str, mode: str, miou: float, mpa: float) -> dict[str, object]:
    return {"task": task, "network": network, "mode": mode, "miou": miou, "mpa": mpa}


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
    assert set(tables) == {"miou", "mpa", "miou_std", "mpa_std"}
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


def test_markdown_sets_the_paper_number_beside_ours() -> None:
    results = [_result("crater", "dpt", "lora", 0.6123, 0.7001), _result("das", "dpt", "frozen", 0.5, 0.6)]
    markdown = tables_markdown(benchmark_tables(results))
    miou, mpa = markdown.split("## mPA")
    assert miou.startswith("## mIoU")
    assert "0.6123 (paper 0.6917)" in miou
    assert "0.7001 (paper 0.7462)" in mpa
    assert "0.5000 (paper 0.8672)" in miou
    assert "— (paper 0.5490)" in miou
    dpt_lora = next(line for line in miou.splitlines() if line.startswith("| DINOv2-DPT (lora)"))
    assert [cell.strip() for cell in dpt_lora.strip("|").split("|")][1:4] == [
        "— (paper 0.6709)", "— (paper 0.8912)", "0.6123 (paper 0.6917)",
    ]


def test_bad_results_are_named() -> None:
    with pytest.raises(KeyError, match="unknown network 'segformer'"):
        benchmark_tables([_result("salt", "segformer", "lora", 0.5, 0.5)])
    with pytest.raises(KeyError, match="unknown task 'mars'"):
        benchmark_tables([_result("mars", "mla", "lora", 0.5, 0.5)])
    with pytest.raises(ValueError, match="two results for DINOv2-MLA on task 'salt'"):
        benchmark_tables([_result("salt", "mla", "lora", 0.5, 0.5), _result("salt", "mla", "lora", 0.6, 0.6)])
    with pytest.raises(KeyError, match="missing the 'mpa' table"):
        tables_markdown({"miou": pd.DataFrame()})
