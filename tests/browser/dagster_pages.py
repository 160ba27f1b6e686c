"""What a user does in the Dagster UI, as steps of the browser suite: "Materialize all" and the backfill it
launches, and the pages that show the outcome."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import NamedTuple

from pages import Browser, button_xpath
from services import graphql

BACKFILL_TIMEOUT_S = 600
TERMINAL_BACKFILL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
BACKFILL_QUERY = """query ($id: String!) {
  partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } }
  runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
    ... on Runs { results { runId status tags { key value } } }
  }
}"""


RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


@dataclass(frozen=True)
class Run:
    """One run of the backfill: its id, status and partitions, `(first, last)` of its range (a run of one
    partition: that key twice; of an unpartitioned asset: empty)."""

    run_id: str
    status: str
    partitions: tuple[str, ...]


def _partitions(tags: dict[str, str]) -> tuple[str, ...]:
    if "dagster/partition" in tags:
        return (tags["dagster/partition"],) * 2
    return tuple(tags[name] for name in RANGE_TAGS if name in tags)


@dataclass(frozen=True)
class Backfill:
    """The backfill "Materialize all" launched, as it ended."""

    backfill_id: str
    status: str
    runs: list[Run]


def open_page(browser: Browser, url: str) -> None:
    """Open a Dagster page, past the community sign-up dialog of a first visit."""
    browser.open(url)
    browser.wait(lambda: browser.visible("//nav | //main | //button"), "the Dagster UI")
    time.sleep(2)  # the sign-up dialog opens once the app has loaded
    for skip in browser.visible(button_xpath("Skip")):
        skip.click()


def materialize_all(browser: Browser, dagster_url: str) -> str:
    """Click "Materialize all" on the global lineage and launch the backfill it offers; the backfill's id."""
    open_page(browser, f"{dagster_url}/asset-groups")
    browser.click(button_xpath("Materialize all", prefix=True), '"Materialize all" button')
    browser.find(button_xpath("Launch backfill"), "the launch dialog")
    browser.wait(lambda: "Loading" not in browser.find("//*[@role='dialog']", "the launch dialog").text,
                 "the launch dialog's partitions")
    browser.shot("01-dagster-materialize-all-dialog")
    browser.click(button_xpath("Launch backfill"), '"Launch backfill" button')
    return browser.wait_for_text(r"Created backfill (\w+)", "the backfill's confirmation").group(1)


def wait_for_backfill(dagster_url: str, backfill_id: str, timeout_s: float = BACKFILL_TIMEOUT_S) -> Backfill:
    """The backfill once it has ended (polled through the webserver's GraphQL API), with its runs."""
    deadline = time.monotonic() + timeout_s
    while True:
        data = graphql(dagster_url, BACKFILL_QUERY, {"id": backfill_id})
        status = data["partitionBackfillOrError"]["status"]
        runs = [Run(run["runId"], run["status"],
                    _partitions({tag["key"]: tag["value"] for tag in run["tags"]}))
                for run in data["runsOrError"]["results"]]
        if status in TERMINAL_BACKFILL:
            return Backfill(backfill_id, status, runs)
        if time.monotonic() > deadline:
            raise AssertionError(f"backfill {backfill_id} still {status} after {timeout_s:.0f} s: {runs}")
        time.sleep(5)


class CheckRow(NamedTuple):
    """One row of an asset check's execution history."""

    partition: str
    result: str
    icon: str
    target_links: list[str]
    description: str


def check_history_rows(browser: Browser, count: int) -> list[CheckRow] | None:
    """The rows of the check's execution history shown (newest first), once `count` rows are shown."""
    rows = []
    for row in browser.visible("//table//tbody//tr"):
        cells = row.find_elements("tag name", "td")
        if len(cells) < 5:
            continue
        icon = cells[0].find_element("css selector", "[role=img]").get_attribute("aria-label")
        links = [link.get_attribute("href") for link in cells[2].find_elements("tag name", "a")]
        texts = [cell.text.strip() for cell in cells]
        rows.append(CheckRow(texts[3], texts[0], icon, links, texts[4]))
    return rows if len(rows) == count else None
