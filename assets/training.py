"""The trained-model asset: one network (and fine-tuning mode) trained and tested on one task."""

import logging
from dataclasses import dataclass

import dagster as dg

from assets.partitions import TASK, AssetEvents, stage_metadata, task_and_model
from assets.resources import ExperimentStore
from training.settings import Project
from training.stages.outputs import stage_outputs
from training.stages.train import train_and_evaluate

BEATS_BASELINE = "beats_majority_baseline"
GPU_POOL = "gpu"


@dataclass
class EpochLog:
    """A fit callback writing one line per epoch to the Dagster run log."""

    log: logging.Logger
    label: str
    epochs: int

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        scores = " ".join(f"{name}={value:.4f}" for name, value in metrics.items())
        self.log.info(f"{self.label} epoch {epoch}/{self.epochs}: {scores}")


def build_trained_model(partitions: dg.MultiPartitionsDefinition,
                        prepared_data: dg.AssetsDefinition) -> dg.AssetsDefinition:
    """The trained-model asset over `partitions` (task x model), each reading its task's prepared data."""

    @dg.asset(
        partitions_def=partitions,
        deps=[dg.AssetDep(prepared_data, partition_mapping=dg.MultiToSingleDimensionPartitionMapping(
            partition_dimension_name=TASK))],
        pool=GPU_POOL,
        check_specs=[dg.AssetCheckSpec(BEATS_BASELINE, asset="trained_model",
                                       description="test mIoU above predicting the majority class")],
        metadata=stage_metadata("train"),
        kinds={"pytorch", "mlflow"},
    )
    def trained_model(context: dg.AssetExecutionContext, project: dg.ResourceParam[Project],
                      mlflow: dg.ResourceParam[ExperimentStore]) -> AssetEvents:
        """Fit on train, select on val, score on test; logged to MLflow and registered (best aliased)."""
        settings = project.settings
        task, model = task_and_model(context)
        epoch_log = EpochLog(context.log, f"{task}/{model}", settings.train.epochs)
        with mlflow.training_run(settings, task, model, launcher="dagster") as tracker:
            run = train_and_evaluate(settings, project.root, task, model, tracker, callbacks=[epoch_log])
            run_url = tracker.run_url
        promoted = mlflow.promote(run.model_ref, run.best_val_miou)
        yield dg.AssetCheckResult(
            check_name=BEATS_BASELINE, passed=run.beats_majority_baseline,
            metadata={"test_miou": run.miou, "majority_baseline_miou": run.majority_baseline_miou},
        )
        yield dg.MaterializeResult(metadata={
            "test_miou": run.miou, "test_mpa": run.mpa, "authors_protocol_miou": run.authors_miou,
            "authors_protocol_mpa": run.authors_mpa, "best_val_miou": run.best_val_miou,
            "best_epoch": run.best_epoch,
            "mlflow_run": dg.MetadataValue.url(run_url),
            "registered_model": run.model_ref.registered_name or "",
            "model_version": run.model_ref.version or "",
            "promoted_to_best": promoted,
            "outputs": stage_outputs(settings, "train", task=task, model=model),
        })

    return trained_model
