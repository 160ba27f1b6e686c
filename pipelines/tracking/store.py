"""`BenchmarkStore`: the benchmark's one MLflow layer. It owns the runs (a parent run per benchmark
configuration, a nested run per training), the registry (a registered model per task x model, the best
version aliased) and the report tables. The CLI (DVC stages) uses it directly; the Dagster definitions
pass the same object to the assets as their `mlflow` resource.

Safe under concurrency and kills: a new sqlite store is created, and a parent run looked up or created,
under a file lock beside the database (two processes would otherwise both migrate the schema, or both
create the parent); a training's run is tagged with its training id, so a training resumed after a kill
continues its unfinished run (one whole curve); a model is registered only once its run has FINISHED.
The parent run is RUNNING while trainings are added under it, and FINISHED once the report has logged
tables that cover them all.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import math
import re
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import filelock
import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import LifecycleStage, Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode
from mlflow.utils.mlflow_tags import MLFLOW_SOURCE_NAME, MLFLOW_SOURCE_TYPE
from torch import nn

from pipelines.tracking.finished_lookup import TRAINING_TAG, VAL_MIOU_TAG
from pipelines.tracking.locations import SQLITE_PREFIX, absolute_tracking_uri, registered_model_name, run_url
from pipelines.tracking.mlflow_io import (
    absolute_artifact_root,
    client_for,
    flatten_params,
    log_frame,
    log_text,
    model_uri,
)
from pipelines.tracking.tracker import MlflowTracker
from training.errors import GeofmError
from training.report import METRIC_TABLES, tables_markdown
from training.settings import MlflowSettings, Settings
from training.stages.outputs import benchmark_id
from training.tracking import ModelRef, Publication

BENCHMARK_TAG = "geofm.benchmark_id"
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"
"""Marks the experiment as model training, so the MLflow UI opens on its runs, not on the GenAI view."""
LOG = logging.getLogger("geofm")
_METRIC_REFUSED = re.compile(r"[^\w\-. :/]")
"""What MLflow does not allow in a metric name (it allows alphanumerics, `_`, `-`, `.`, ` `, `:` and `/`)."""
_READY_STORES: set[str] = set()
"""Tracking URIs whose schema this process has already seen created (no lock needed after that)."""


class ModelNotFoundError(GeofmError, ValueError):
    """A model reference that the store cannot load."""


def metric_name(*parts: str) -> str:
    """`parts` joined by `/`, less the characters MLflow refuses in a metric name (`DINOv2-MLA (frozen)`
    becomes `DINOv2-MLA frozen`) and with a `/` inside a part as `-` (`DINOv3 ViT-B/16-MLA` is one level,
    `DINOv3 ViT-B-16-MLA`)."""
    return "/".join(_METRIC_REFUSED.sub("", part.replace("/", "-")) for part in parts)


def summary_metrics(tables: Mapping[str, pd.DataFrame]) -> list[Metric]:
    """Each network's mIoU and mPA per task and averaged over the tasks, as parent-run metrics
    (`miou/DINOv2-MLA/Seismic Geobody`, `miou/DINOv2-MLA/mean`)."""
    timestamp, metrics = int(time.time() * 1000), []
    for key in METRIC_TABLES:
        for row, scores in tables[key].iterrows():
            known = scores.dropna()
            values = {**known.to_dict(), "mean": known.mean()} if len(known) else {}
            metrics += [Metric(metric_name(key, str(row), str(name)), float(value), timestamp, 0)
                        for name, value in values.items()]
    return metrics


@dataclass(frozen=True)
class BenchmarkStore:
    """The MLflow store (absolute locations), the benchmark's experiment and the alias of the best version."""

    tracking_uri: str
    artifact_root: str
    experiment: str
    best_alias: str = "best"
    ui_url: str = "http://127.0.0.1:5000"

    @classmethod
    def for_project(cls, settings: MlflowSettings, root: Path) -> BenchmarkStore:
        """The store `settings` names, its relative sqlite path and artifact folder made absolute under
        `root`."""
        return cls(absolute_tracking_uri(settings.tracking_uri, root),
                   absolute_artifact_root(settings.artifact_root, root), settings.experiment,
                   settings.best_alias, settings.ui_url)

    def lock(self) -> filelock.FileLock:
        """The store's lock: a file beside a sqlite database, else one per URI in the temporary folder."""
        if self.tracking_uri.startswith(SQLITE_PREFIX):
            path = Path(f"{self.tracking_uri[len(SQLITE_PREFIX):]}.lock")
        else:
            digest = hashlib.sha256(self.tracking_uri.encode()).hexdigest()[:16]
            path = Path(tempfile.gettempdir()) / f"geofm-mlflow-{digest}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        return filelock.FileLock(path)

    @property
    def client(self) -> MlflowClient:
        """A client on the store. MLflow creates a new store's schema when it builds the first client (and
        registry) of a process, so the first ones are built under the lock."""
        if self.tracking_uri in _READY_STORES:
            return client_for(self.tracking_uri)
        with self.lock():
            client = client_for(self.tracking_uri)
            client.search_registered_models(max_results=1)
        _READY_STORES.add(self.tracking_uri)
        return client

    def experiment_id(self) -> str:
        """The benchmark experiment's id, creating it with the configured artifact location if missing."""
        client = self.client
        experiment = client.get_experiment_by_name(self.experiment)
        if experiment is None:
            try:
                return client.create_experiment(self.experiment, artifact_location=self.artifact_root,
                                                tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING_KIND})
            except MlflowException as error:
                if error.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
                    raise
                experiment = client.get_experiment_by_name(self.experiment)
        if experiment.lifecycle_stage == LifecycleStage.DELETED:
            raise GeofmError(f"MLflow experiment {self.experiment!r} is deleted: restore it "
                             "(`mlflow experiments restore`) or set another mlflow.experiment in params.yaml")
        if experiment.tags.get(EXPERIMENT_KIND_TAG) != MODEL_TRAINING_KIND:
            client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND)
        return experiment.experiment_id

    def parent_run(self, benchmark: str, params: Mapping[str, Any]) -> str:
        """The id of the parent run tagged `benchmark`, created (with the flattened params) if new."""
        if "'" in benchmark or "`" in benchmark:
            raise ValueError(f"benchmark id {benchmark!r} must not contain quotes")
        client, experiment_id = self.client, self.experiment_id()
        with self.lock():
            existing = client.search_runs([experiment_id],
                                          filter_string=f"tags.`{BENCHMARK_TAG}` = '{benchmark}'",
                                          order_by=["attributes.start_time ASC"], max_results=1)
            if existing:
                return existing[0].info.run_id
            run = client.create_run(experiment_id, run_name=f"benchmark-{benchmark}",
                                    tags={BENCHMARK_TAG: benchmark})
        client.log_batch(run.info.run_id, params=[Param(k, v) for k, v in flatten_params(params).items()])
        return run.info.run_id

    def benchmark_run(self, settings: Settings) -> str:
        """The parent run of this benchmark configuration."""
        return self.parent_run(benchmark_id(settings), settings.model_dump(mode="json"))

    @contextmanager
    def child_run(self, parent_run_id: str, run_name: str, registered_name: str | None = None,
                  tags: Mapping[str, Any] | None = None,
                  run_id: str | None = None) -> Iterator[MlflowTracker]:
        """A run nested under `parent_run_id` (or the existing `run_id`, continued), active for the block;
        it ends FINISHED, or FAILED if the block raises."""
        client = self.client
        experiment_id = client.get_run(parent_run_id).info.experiment_id
        tags = {key: str(value) for key, value in (tags or {}).items()}
        opened = (mlflow.start_run(run_id=run_id) if run_id else
                  mlflow.start_run(experiment_id=experiment_id, run_name=run_name,
                                   parent_run_id=parent_run_id, tags=tags))
        with opened as run:
            yield MlflowTracker(client, run.info.run_id, experiment_id, self.ui_url, registered_name)

    def _training_runs(self, training_id: str, status: str) -> list[str]:
        found = self.client.search_runs(
            [self.experiment_id()],
            filter_string=f"tags.`{TRAINING_TAG}` = '{training_id}' and attributes.status = '{status}'",
            order_by=["attributes.start_time DESC"])
        return [run.info.run_id for run in found]

    def finished_run(self, training_id: str) -> str | None:
        """The newest FINISHED run of this training (same settings and prepared data), if any."""
        runs = self._training_runs(training_id, "FINISHED")
        return runs[0] if runs else None

    @contextmanager
    def training_run(self, settings: Settings, task: str, model: str, launcher: str, training_id: str,
                     seed: int) -> Iterator[MlflowTracker]:
        """The run of one training (one seed) under the benchmark's parent run: an unfinished run of the
        same training (killed, or failed) is continued, so its curve stays whole; otherwise a new run,
        tagged with `training_id`. Nothing is registered here (see `publish`). A parent run that a report
        had finished is RUNNING again: its tables no longer cover every training under it."""
        tags = {"geofm.task": task, "geofm.model": model, "geofm.seed": seed,
                "geofm.profile": settings.profile, "geofm.launcher": launcher, TRAINING_TAG: training_id,
                MLFLOW_SOURCE_NAME: f"geofm train --task {task} --model {model} ({launcher})",
                MLFLOW_SOURCE_TYPE: "JOB"}
        unfinished = self._training_runs(training_id, "RUNNING") + self._training_runs(training_id, "FAILED")
        name = f"{task}-{model}" if len(settings.train.seeds) == 1 else f"{task}-{model}-seed{seed}"
        parent = self.benchmark_run(settings)
        if self.client.get_run(parent).info.status != "RUNNING":
            self.client.update_run(parent, status="RUNNING")
        with self.child_run(parent, name, tags=tags,
                            run_id=unfinished[0] if unfinished else None) as tracker:
            yield tracker

    @staticmethod
    def _register(logged_model_uri: str, name: str) -> str:
        """A new version of `name`; MLflow's notices about it go to the log, not the terminal."""
        notices = io.StringIO()
        with contextlib.redirect_stderr(notices):
            version = str(mlflow.register_model(logged_model_uri, name).version)
        LOG.info(notices.getvalue().strip())
        return version

    def publish(self, run_id: str, logged_model_uri: str, task: str, model: str,
                val_miou: float) -> Publication:
        """Register the model a FINISHED run logged (once: a version of that run is reused), promote it."""
        client = self.client
        run = client.get_run(run_id)
        if run.info.status != "FINISHED":
            raise GeofmError(f"run {run_id} is {run.info.status}: only a finished training is registered")
        name = registered_model_name(task, model)
        with self.lock():
            versions = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
            version = str(versions[0].version) if versions else self._register(logged_model_uri, name)
        reference = ModelRef(uri=f"models:/{name}/{version}", registered_name=name, version=version)
        promoted = self.promote(reference, val_miou)
        best = promoted or str(client.get_registered_model(name).aliases.get(self.best_alias)) == version
        return Publication(reference, promoted, run_url(self.ui_url, run.info.experiment_id, run_id), best)

    def promote(self, model: ModelRef, val_miou: float) -> bool:
        """Record `val_miou` on the model's version and move the best alias to it if it beats the
        aliased version; whether the alias moved (False when it already was on this version)."""
        if model.registered_name is None or model.version is None:
            raise ValueError(f"model {model.uri} was not registered, so it cannot be promoted")
        if not math.isfinite(val_miou):
            raise ValueError(f"{model.uri}: validation mIoU is {val_miou}, not a number")
        client, name, version = self.client, model.registered_name, str(model.version)
        client.set_model_version_tag(name, version, VAL_MIOU_TAG, repr(float(val_miou)))
        current = client.get_registered_model(name).aliases.get(self.best_alias)
        if current is not None and str(current) == version:
            return False
        if current is not None:
            best = client.get_model_version(name, str(current)).tags.get(VAL_MIOU_TAG)
            if best is not None and float(best) >= val_miou:
                return False
        client.set_registered_model_alias(name, self.best_alias, version)
        return True

    def log_tables(self, parent_run_id: str, tables: Mapping[str, pd.DataFrame]) -> None:
        """Both benchmark tables on the parent run (markdown beside the paper, csv, MLflow tables);
        ends the run when its last training ended."""
        client = self.client
        log_text(client, parent_run_id, tables_markdown(tables), "report/benchmark.md")
        for key, table in tables.items():
            log_frame(client, parent_run_id, table, f"report/{key}")
        client.log_batch(parent_run_id, metrics=summary_metrics(tables))
        client.set_terminated(parent_run_id, "FINISHED", end_time=self._last_training_end(parent_run_id))

    def _last_training_end(self, parent_run_id: str) -> int:
        """When the parent's last training ended (ms), else when the parent started: the parent's end, so
        a report run again over reused trainings leaves the benchmark's duration as it was."""
        client = self.client
        parent = client.get_run(parent_run_id).info
        children = client.search_runs([parent.experiment_id],
                                      filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'")
        return max([run.info.end_time or run.info.start_time for run in children] + [parent.start_time])

    def log_report(self, settings: Settings, tables: Mapping[str, pd.DataFrame],
                   scale: Mapping[str, pd.DataFrame] | None = None) -> None:
        """Both benchmark tables on this benchmark configuration's parent run, and the encoder scale table
        of each task (`report/scale_<task>`) when encoders were scanned."""
        run_id = self.benchmark_run(settings)
        for task, table in (scale or {}).items():
            log_frame(self.client, run_id, table, f"report/scale_{task}")
        self.log_tables(run_id, tables)

    def best_model_of_task(self, task: str, models: Sequence[str]) -> str:
        """`name@best` of the task's registered model whose best version has the highest validation mIoU."""
        client, scored = self.client, []
        for model in models:
            name = registered_model_name(task, model)
            try:
                version = client.get_model_version_by_alias(name, self.best_alias)
            except MlflowException:
                continue
            scored.append((float(version.tags.get(VAL_MIOU_TAG, "-inf")), f"{name}@{self.best_alias}"))
        if not scored:
            raise ModelNotFoundError(
                f"no registered model of task {task!r} has a `{self.best_alias}` version in "
                f"{self.tracking_uri}: train one first (geofm train --task {task} ...)")
        return max(scored)[1]

    def model_provenance(self, reference: str) -> dict[str, str]:
        """What a prediction records of the model `reference` names: its URI and, for a registered model,
        the name, version and run the alias or version resolves to (for a `runs:/` URI, the run)."""
        uri = model_uri(reference, self.best_alias)
        if uri.startswith("runs:/"):
            return {"model": uri, "model_run_id": uri.removeprefix("runs:/").split("/")[0]}
        name, alias = (uri.removeprefix("models:/").split("@", 1) + [""])[:2]
        client = client_for(self.tracking_uri)
        try:
            version = (client.get_model_version_by_alias(name, alias) if alias
                       else client.get_model_version(*name.split("/", 1)))
        except (MlflowException, TypeError) as error:
            raise ModelNotFoundError(f"cannot resolve model {uri} in {self.tracking_uri}: {error}") from None
        return {"model": uri, "model_name": version.name, "model_version": str(version.version),
                "model_run_id": version.run_id}

    def load_model(self, reference: str) -> nn.Module:
        """The model `reference` names (a registered name at the best alias, `name@alias`, `name/version`,
        or a `models:/` or `runs:/` URI), on the CPU."""
        client_for(self.tracking_uri)
        uri = model_uri(reference, self.best_alias)
        try:
            return mlflow.pytorch.load_model(uri, map_location="cpu")
        except MlflowException as error:
            message = f"cannot load model {uri} from {self.tracking_uri}: {error.message}"
            raise ModelNotFoundError(message) from None
