"""The trained-model asset: one network (and fine-tuning mode) trained and tested on one task."""

import logging
from dataclasses import dataclass

import dagster as dg

from assets.checks import BEATS_BASELINE, BEATS_BASELINE_DESCRIPTION, beats_majority_baseline
from assets.partitions import TASK, AssetEvents, stage_metadata, task_and_model
from training.settings import Project
from training.stages.outputs import stage_outputs
from training.stages.train import run_training_stage
from training.tracking import TrainingStore

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
                                       description=BEATS_BASELINE_DESCRIPTION)],
        metadata=stage_metadata("train"),
        kinds={"pytorch", "mlflow"},
    )
    def trained_model(context: dg.AssetExecutionContext, project: dg.ResourceParam[Project],
                      mlflow: dg.ResourceParam[TrainingStore]) -> AssetEvents:
        """Fit on train, select on val, score on test; logged to MLflow and registered (best aliased)."""
        settings = project.settings
        task, model = task_and_model(context)
        epoch_log = EpochLog(context.log, f"{task}/{model}", settings.train.epochs)
        outcome = run_training_stage(settings, project.root, task, model, mlflow, launcher="dagster",
                                     callbacks=[epoch_log])
        run, published = outcome.result, outcome.publication
        yield dg.MaterializeResult(metadata={
            "test_miou": run.miou, "test_mpa": run.mpa, "authors_protocol_miou": run.authors_miou,
            "authors_protocol_mpa": run.authors_mpa, "best_val_miou": run.best_val_miou,
            "best_epoch": run.best_epoch,
            "mlflow_run": dg.MetadataValue.url(published.run_url),
            "registered_model": published.model.registered_name or "",
            "model_version": published.model.version or "",
            "promoted_to_best": published.promoted,
            "reused_finished_training": outcome.reused,
            "outputs": stage_outputs(settings, "train", task=task, model=model),
        })
        yield beats_majority_baseline(
            test_miou=run.miou, majority_baseline_miou=run.majority_baseline_miou, val_miou=run.best_val_miou,
            task=task, model=model,
            weights_known_random=run.network != "unet" and settings.model.weights == "none")

    return trained_model
