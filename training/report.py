"""The benchmark's result tables (networks x tasks): our headline under the pooled protocol, and the
scores of the paper's protocol beside the paper's numbers.

Rows and columns follow the seed README of arXiv 2408.12396: networks Unet, DINOv2-LINEAR, -PUP, -DPT,
-MLA; tasks Seismic Facies, Seismic Geobody, Crater, DAS, Deep Fault, then each declared task (a column of
its own, no paper number). Our tables always hold the full grid, so a cell we did not run is NaN and its
paper number still shows in the markdown. On another encoder than the paper's DINOv2 ViT-S/14, the ViT rows
name it (`DINOv3 ViT-B/16-MLA`), beside the paper's row of the same network.

Each table says its protocol (`training.metrics`): `miou`/`mpa` are pooled (one confusion matrix over the
unmirrored test sections), our headline, and stand alone; `authors_miou`/`authors_mpa` are the paper's
(per-batch means over batches of the paper's size, each section with its mirror), and only they carry the
paper's number in brackets, so a paper number is never set beside a score of another protocol. What else
separates our run from the authors' computation (the settings) is listed under those tables
(`PAPER_NOTES`, filled by the report stage).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from training.encoders import DEFAULT_ENCODER, encoder_spec
from training.lookup import lookup
from training.tasks import get_task

PAPER_TASKS = ("seam", "salt", "crater", "das", "fault")
TASK_COLUMNS = [get_task(key).title for key in PAPER_TASKS]

DECODER_ROWS = {"linear": "LINEAR", "pup": "PUP", "dpt": "DPT", "mla": "MLA"}
"""The ViT networks' names in the rows, after their encoder's."""
NETWORK_ROWS = {"unet": "Unet", **{network: f"DINOv2-{name}" for network, name in DECODER_ROWS.items()}}
"""The paper's rows, in its order: DINOv2 is its encoder, ViT-S/14 (`training.encoders.DEFAULT_ENCODER`)."""
ENCODER = "encoder"
"""Key of `DataFrame.attrs` on each benchmark table: the timm name of the ViT rows' encoder."""
# The UNet baseline always trains fully; only the ViT networks have a fine-tuning mode worth a row label.
MODE_FREE_NETWORKS = ("unet",)


def _paper_table(rows: list[list[float]]) -> pd.DataFrame:
    table = pd.DataFrame(rows, index=list(NETWORK_ROWS.values()), columns=TASK_COLUMNS)
    table.index.name = "Network"
    return table


PAPER_MIOU = _paper_table([
    [0.5490, 0.8636, 0.5812, 0.7271, 0.6858],
    [0.6565, 0.8965, 0.6857, 0.8112, 0.6372],
    [0.6885, 0.8935, 0.6937, 0.8487, 0.7088],
    [0.6709, 0.8912, 0.6917, 0.8672, 0.7334],
    [0.6826, 0.8969, 0.6949, 0.8591, 0.7613],
])
PAPER_MPA = _paper_table([
    [0.7693, 0.9112, 0.6265, 0.7865, 0.7439],
    [0.8732, 0.9374, 0.7481, 0.9033, 0.7519],
    [0.9102, 0.9357, 0.7529, 0.9210, 0.7793],
    [0.8826, 0.9377, 0.7462, 0.9119, 0.7985],
    [0.8975, 0.9383, 0.7476, 0.9222, 0.8195],
])

POOLED = ("pooled: one confusion matrix over every pixel of the unmirrored test sections (our headline; "
          "the paper's numbers use another protocol and are in the paper-protocol tables)")
PAPER_PROTOCOL = ("the paper's: the mean over test batches of the paper's size, each section with its "
                  "mirror, of each batch's mIoU (torchmetrics, macro) or mPA (a class absent from the batch "
                  "counts 0); in brackets the paper's number, same protocol")


@dataclass(frozen=True)
class MetricTable:
    """How one result table is titled and scored, and the paper's table set beside it (None: stands alone,
    its protocol is not the paper's)."""

    title: str
    protocol: str
    paper: pd.DataFrame | None


# table key (a metrics.json score) -> its table; each also has a `<key>_std` table over the seeds.
METRIC_TABLES = {
    "miou": MetricTable("mIoU (pooled)", POOLED, None),
    "mpa": MetricTable("mPA (pooled)", POOLED, None),
    "authors_miou": MetricTable("mIoU, the paper's protocol, beside the paper", PAPER_PROTOCOL, PAPER_MIOU),
    "authors_mpa": MetricTable("mPA, the paper's protocol, beside the paper", PAPER_PROTOCOL, PAPER_MPA),
}
STD_SUFFIX = "_std"
PAPER_NOTES = "paper_notes"
"""Key of `DataFrame.attrs` on a paper-protocol table: lines saying what else differs from the authors'
computation (they travel with the tables to every place that renders them)."""


def network_row(network: str, encoder: str = DEFAULT_ENCODER) -> str:
    """The row of `network` on `encoder`: the paper's (`Unet`, `DINOv2-MLA`) on the paper's encoder, else the
    encoder's family and size before the network (`DINOv3 ViT-L/16-MLA`, `DINOv2 ViT-B/14 reg4-PUP`)."""
    paper_row = lookup("network", network, NETWORK_ROWS)
    if network in MODE_FREE_NETWORKS or encoder == DEFAULT_ENCODER:
        return paper_row
    return f"{encoder_spec(encoder).label}-{DECODER_ROWS[network]}"


def encoder_line(encoder: str) -> str:
    """The sentence naming the ViT rows' encoder, above the tables."""
    spec = encoder_spec(encoder)
    paper = ", the paper's" if encoder == DEFAULT_ENCODER else " (the paper's: DINOv2 ViT-S/14)"
    return f"ViT rows: encoder {spec.label} (`{encoder}`){paper}."


def _needs_mode(network: str, modes: list[str]) -> bool:
    return network not in MODE_FREE_NETWORKS and len(modes) > 1


def _row_labels(modes: list[str], encoder: str) -> dict[tuple[str, str | None], str]:
    """(network, mode) -> row label in paper order; the mode joins the label only when several exist."""
    labels = {}
    for network in NETWORK_ROWS:
        row = network_row(network, encoder)
        if _needs_mode(network, modes):
            labels.update({(network, mode): f"{row} ({mode})" for mode in modes})
        else:
            labels[(network, None)] = row
    return labels


def benchmark_tables(results: Iterable[Mapping[str, Any]], paper_notes: Iterable[str] = (),
                     encoder: str = DEFAULT_ENCODER,
                     declared_titles: Mapping[str, str] | None = None) -> dict[str, pd.DataFrame]:
    """One table per `METRIC_TABLES` key from per-run results (dicts with task, network, mode, the keys and,
    over several seeds, `<key>_std`) of the ViT networks on `encoder`, and their std tables (NaN where a
    cell had one seed). `paper_notes`: what separates the runs from the authors' computation, kept with the
    paper-protocol tables; `declared_titles`: the title of each declared task (task key -> title), a
    column after the paper's, without a paper number."""
    results = list(results)
    declared_titles = dict(declared_titles or {})
    columns = [*TASK_COLUMNS, *declared_titles.values()]
    modes = sorted({str(r["mode"]) for r in results if r["network"] not in MODE_FREE_NETWORKS})
    labels = _row_labels(modes, encoder)
    keys = [*METRIC_TABLES, *(f"{key}{STD_SUFFIX}" for key in METRIC_TABLES)]
    tables = {key: pd.DataFrame(math.nan, index=list(labels.values()), columns=columns) for key in keys}
    filled: set[tuple[str, str]] = set()
    for result in results:
        network = result["network"]
        lookup("network", network, NETWORK_ROWS)
        row = labels[(network, str(result["mode"]) if _needs_mode(network, modes) else None)]
        task = result["task"]
        column = declared_titles[task] if task in declared_titles else get_task(task).title
        if (row, column) in filled:
            raise ValueError(f"benchmark results: two results for {row} on task {result['task']!r}")
        filled.add((row, column))
        for key, table in tables.items():
            value = result.get(key)
            table.loc[row, column] = math.nan if value is None else float(value)
    for key, table in tables.items():
        table.index.name = "Network"
        table.attrs[ENCODER] = encoder
        if key in METRIC_TABLES and METRIC_TABLES[key].paper is not None:
            table.attrs[PAPER_NOTES] = list(paper_notes)
    return tables


def _paper_row(label: str, paper: pd.DataFrame) -> str | None:
    """The paper's row of the network of our row `label` (on any encoder, maybe with a " (mode)" suffix)."""
    base = label.split(" (")[0]
    suffixes = {network: f"-{name}" for network, name in DECODER_ROWS.items()}
    network = next((network for network, row in NETWORK_ROWS.items()
                    if base == row or (network in suffixes and base.endswith(suffixes[network]))), None)
    return NETWORK_ROWS[network] if network and NETWORK_ROWS[network] in paper.index else None


def _cell(ours: float, std: float, paper: float | None) -> str:
    text = "—" if math.isnan(ours) else f"{ours:.4f}" + ("" if math.isnan(std) else f" ± {std:.4f}")
    return text if paper is None else f"{text} (paper {paper:.4f})"


def _cells(table: pd.DataFrame, std: pd.DataFrame | None, paper: pd.DataFrame | None) -> pd.DataFrame:
    """`table` as strings, each cell "mean ± std" (the std over seeds, where there were several) and, with
    `paper`, "(paper X)" where the paper published a number."""
    cells = pd.DataFrame("", index=table.index, columns=table.columns)
    for label in table.index:
        paper_row = None if paper is None else _paper_row(label, paper)
        for column in table.columns:
            published = paper.loc[paper_row, column] if paper_row and column in paper.columns else None
            spread = math.nan if std is None else float(std.loc[label, column])
            cells.loc[label, column] = _cell(float(table.loc[label, column]), spread, published)
    return cells


def _protocol_row(cells: pd.DataFrame, metric: MetricTable) -> pd.DataFrame:
    """`cells` under a first row that names each column's protocol, in the table itself."""
    protocol = "pooled" if metric.paper is None else "per-batch (ours and paper)"
    header = pd.DataFrame([[protocol] * len(cells.columns)], index=["Protocol"], columns=cells.columns)
    return pd.concat([header, cells])


def tables_markdown(tables: Mapping[str, pd.DataFrame]) -> str:
    """Every `METRIC_TABLES` table as markdown, under the sentence naming the ViT rows' encoder: titled, its
    protocol said above it and in its first row; the paper's number beside ours only where the protocols
    agree, with what else differs listed below."""
    encoders = {table.attrs[ENCODER] for table in tables.values() if ENCODER in table.attrs}
    sections = [encoder_line(encoder) + "\n" for encoder in sorted(encoders)]
    for key, metric in METRIC_TABLES.items():
        if key not in tables:
            raise KeyError(f"benchmark tables: missing the {key!r} table (have {', '.join(tables)})")
        cells = _protocol_row(_cells(tables[key], tables.get(f"{key}{STD_SUFFIX}"), metric.paper), metric)
        notes = "".join(f"\n- {note}" for note in tables[key].attrs.get(PAPER_NOTES, ()))
        sections.append(f"## {metric.title}\n\nProtocol: {metric.protocol}.\n\n{cells.to_markdown()}\n"
                        + (f"\nBeside the paper:{notes}\n" if notes else ""))
    return "\n".join(sections)
