"""The Dagster front door as a user sees it after "Materialize all": every stage ran once and succeeded, the
report's tables hold the trained numbers, each check result names its partition and the training that
materialized it, and the lineage, catalog, partitions and check views tell the same story."""

from __future__ import annotations

import math
from pathlib import Path

import dagster as dg
import pytest

pytest.importorskip("selenium", reason="the browser suite drives Chromium with selenium (the dev extra)")

from dagster_pages import Backfill, check_history_rows, open_page  # noqa: E402
from outcomes import check_outcomes, report_tables  # noqa: E402
from pages import Browser  # noqa: E402

from assets.checks import BEATS_BASELINE  # noqa: E402
from training.report import METRIC_TABLES  # noqa: E402

pytestmark = pytest.mark.browser
SEVERITY_ICONS = {"ERROR": "cancel", "WARN": "warning_outline"}
"""The icon Dagster draws beside a failed check result of each severity."""


def test_materialize_all_runs_every_stage_once_and_succeeds(browser: Browser, dagster_ui: str,
                                                            materialized: Backfill, project) -> None:
    assert materialized.status == "COMPLETED_SUCCESS", materialized
    assert {run.status for run in materialized.runs} == {"SUCCESS"}, materialized.runs
    ranges = sorted(run.partitions for run in materialized.runs)
    trained = [outcome.partition for outcome in check_outcomes(project.root)]
    # raw_data and benchmark_report (unpartitioned); prepared_data, every task in one run; trained_model,
    # a run per model (Dagster splits a task x model range by model), over every task (one, das, here).
    assert ranges == sorted([(), (), ("das", "das"), *[(key, key) for key in trained]])
    open_page(browser, f"{dagster_ui}/runs/b/{materialized.backfill_id}")
    browser.wait_for_text(r"Status\s+Succeeded", "the backfill's status")
    browser.wait_for_text(r"trained_model\s+100% completed", "the trainings' progress")
    browser.shot("02-dagster-backfill")


def test_report_shows_both_tables_with_the_trained_numbers(browser: Browser, dagster_ui: str,
                                                           materialized: Backfill, project) -> None:
    open_page(browser, f"{dagster_ui}/assets/benchmark_report")
    browser.click("//a[normalize-space()='[Show Markdown]']", "the tables' [Show Markdown] link")
    heading = '//*[@role="dialog"]//h2[normalize-space()="{}"]/following::table[1]'
    shown = {key: browser.find(heading.format(metric.title),
                               f"the {metric.title} table under its heading in the markdown dialog")
             for key, metric in METRIC_TABLES.items()}
    browser.shot("03-dagster-report-tables")
    expected = report_tables(project.root)
    for key, element in shown.items():
        header, *rows = browser.table(element)
        cells = {row[0]: dict(zip(header[1:], row[1:], strict=True)) for row in rows}
        assert cells.pop("Protocol")  # each table names its protocol in its first row
        assert set(cells) == set(expected[key].index)
        for network, scores in expected[key].iterrows():
            for task, value in scores.items():
                ours = "—" if math.isnan(value) else f"{value:.4f}"
                beside = " (paper " if METRIC_TABLES[key].paper is not None else ""
                assert cells[network][task].startswith(f"{ours}{beside}"), (key, network, cells[network])


def test_each_check_result_names_its_partition_and_training(browser: Browser, dagster_ui: str,
                                                           materialized: Backfill, project) -> None:
    open_page(browser, f"{dagster_ui}/assets/trained_model?view=checks&checkDetail={BEATS_BASELINE}")
    browser.click("//*[normalize-space()='Execution history']", "the check's Execution history tab")
    expected = {outcome.partition: outcome for outcome in check_outcomes(project.root)}
    shown = browser.wait(lambda: check_history_rows(browser, len(expected)), "one check result per partition")
    rows = {row.partition: (row.result, row.icon, row.target_links, row.description) for row in shown}
    browser.shot("04-dagster-check-history")
    backfill_runs = {run.run_id for run in materialized.runs}
    assert set(rows) == set(expected)
    for partition, (result, icon, target_runs, description) in rows.items():
        outcome = expected[partition]
        assert result == ("Passed" if outcome.passed else "Failed"), (partition, result)
        if not outcome.passed:
            assert icon == SEVERITY_ICONS[outcome.severity], (partition, outcome.severity, icon)
        # The target materialization links to the backfill's run that trained this partition.
        trained_by = _materializing_run(project.root, "trained_model", partition)
        assert trained_by in backfill_runs, (partition, trained_by)
        assert target_runs == [f"{dagster_ui}/runs/{trained_by}"], (partition, target_runs)
        assert f"{outcome.task}/{outcome.model}: test mIoU" in description, description


def _materializing_run(root: Path, asset: str, partition: str) -> str:
    """The run of the latest materialization of `asset`'s `partition`, read from the project's instance."""
    with dg.DagsterInstance.from_config(str(root / ".dagster_home")) as instance:
        wanted = dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition])
        return instance.fetch_materializations(wanted, limit=1).records[0].event_log_entry.run_id



def test_lineage_catalog_partitions_and_checks_agree(browser: Browser, dagster_ui: str,
                                                    materialized: Backfill, project) -> None:
    outcomes = check_outcomes(project.root)
    total, failed = len(outcomes), sum(not outcome.passed for outcome in outcomes)
    verdict = "Failed" if failed else "Passed"
    # Materializations: every partition materialized, none failed, in the catalog and the Partitions tab.
    open_page(browser, f"{dagster_ui}/assets")
    browser.wait_for_text(rf"trained_model\n.*\n.*\n.*\nAll\n0\n0\n0\n{total} partitions",
                          f"the catalog's trained_model row: all {total} partitions materialized")
    browser.shot("05-dagster-catalog")
    open_page(browser, f"{dagster_ui}/assets/trained_model?view=partitions")
    browser.wait_for_text(rf"Failed \(0\)\s+Materialized \({total}\)\s+Materializing \(0\)\s+Missing \(0\)",
                          f"the Partitions tab: {total} materialized, none failed")
    browser.shot("06-dagster-partitions")
    # Checks: the same verdict per partition in the check's list, its Partitions tab and the lineage node.
    open_page(browser, f"{dagster_ui}/assets/trained_model?view=checks&checkDetail={BEATS_BASELINE}")
    browser.wait_for_text(rf"{BEATS_BASELINE}\n{verdict}", f"the check listed as {verdict}")
    browser.click("//button[normalize-space()='Partitions']", "the check's Partitions tab")
    browser.wait_for_text(rf"{total} Partitions\s+Execution Failed \(0\)\s+Failed \({failed}\)\s+"
                          rf"In Progress \(0\)\s+Missing \(0\)\s+Skipped \(0\)\s+Passed \({total - failed}\)",
                          f"the check's Partitions tab: {failed} of {total} failed")
    browser.shot("07-dagster-check-partitions")
    open_page(browser, f"{dagster_ui}/assets/trained_model?view=lineage")
    browser.wait_for_text(rf"trained_model\nLatest event\n.*\nAsset checks\n{0 if failed else 1} / 1 Passed\n"
                          r"Partitions\n100% filled", "the lineage node's checks and partitions")
    browser.shot("08-dagster-lineage")
