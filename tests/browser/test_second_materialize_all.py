"""A second "Materialize all" on the finished tiny benchmark, as a user clicks it again: a few runs (one per
stage, a training run per model), every training reused, and the check views after it: each partition's
newest result judges the newest materialization and keeps its severity, and the lineage node's verdict is
the one the documentation gives (Dagster 1.13 keeps a partitioned check's state without severity).

Runs after the other browser tests (file order): they look at the first backfill alone."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

pytest.importorskip("selenium", reason="the browser suite drives Chromium with selenium (the dev extra)")

from dagster_pages import (  # noqa: E402
    Backfill,
    check_history_rows,
    materialize_all,
    open_page,
    wait_for_backfill,
)
from outcomes import check_outcomes  # noqa: E402
from pages import Browser  # noqa: E402

from assets.checks import BEATS_BASELINE  # noqa: E402
from training.leases import REUSED  # noqa: E402
from training.settings import Project  # noqa: E402

pytestmark = pytest.mark.browser
SEVERITY_ICONS = {"ERROR": "cancel", "WARN": "warning_outline"}


@pytest.fixture(scope="module")
def rematerialized(browser: Browser, dagster_ui: str, materialized: Backfill) -> Backfill:
    """The backfill of a second "Materialize all", once the first one has ended."""
    return wait_for_backfill(dagster_ui, materialize_all(browser, dagster_ui))


def _latest_trainings(root: Path) -> dict[str, tuple[str, dict]]:
    """Partition -> (run, metadata) of each trained_model partition's newest materialization."""
    latest = {}
    with dg.DagsterInstance.from_config(str(root / ".dagster_home")) as instance:
        for outcome in check_outcomes(root):
            wanted = dg.AssetRecordsFilter(asset_key=dg.AssetKey("trained_model"),
                                           asset_partitions=[outcome.partition])
            entry = instance.fetch_materializations(wanted, limit=1).records[0].event_log_entry
            latest[outcome.partition] = (entry.run_id, entry.asset_materialization.metadata)
    return latest


def test_a_second_materialize_all_reuses_every_training_in_one_run_per_stage(rematerialized: Backfill,
                                                                            project) -> None:
    assert rematerialized.status == "COMPLETED_SUCCESS", rematerialized
    models = Project.load(project.root).settings.models
    assert len(rematerialized.runs) == 3 + len(models), rematerialized.runs  # raw, prepare, report
    runs = {run.run_id for run in rematerialized.runs}
    for partition, (run_id, metadata) in _latest_trainings(project.root).items():
        assert run_id in runs, (partition, run_id)
        assert metadata["reused_finished_training"].value and metadata["device"].value == REUSED, partition


def test_after_it_each_partition_s_newest_check_result_keeps_its_severity(
        browser: Browser, dagster_ui: str, rematerialized: Backfill, project) -> None:
    outcomes = {outcome.partition: outcome for outcome in check_outcomes(project.root)}
    latest = _latest_trainings(project.root)
    open_page(browser, f"{dagster_ui}/assets/trained_model?view=checks&checkDetail={BEATS_BASELINE}")
    browser.click("//*[normalize-space()='Execution history']", "the check's Execution history tab")
    rows = browser.wait(lambda: check_history_rows(browser, 2 * len(outcomes)),
                        "two check results per partition")
    browser.shot("13-dagster-check-history-second-backfill")
    newest: dict[str, tuple[str, str, list[str]]] = {}
    for row in rows:  # newest first
        newest.setdefault(row.partition, (row.result, row.icon, row.target_links))
    for partition, (result, icon, links) in newest.items():
        outcome = outcomes[partition]
        assert result == ("Passed" if outcome.passed else "Failed"), (partition, result)
        if not outcome.passed:
            assert icon == SEVERITY_ICONS[outcome.severity], (partition, outcome.severity, icon)
        assert links == [f"{dagster_ui}/runs/{latest[partition][0]}"], (partition, links)
    failed = sum(not outcome.passed for outcome in outcomes.values())
    open_page(browser, f"{dagster_ui}/assets/trained_model?view=lineage")
    browser.wait_for_text(rf"trained_model\nLatest event\n.*\nAsset checks\n{0 if failed else 1} / 1 Passed\n"
                          r"Partitions\n100% filled", "the lineage node's checks and partitions")
    browser.shot("14-dagster-lineage-second-backfill")

