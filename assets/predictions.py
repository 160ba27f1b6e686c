"""The predictions asset: each configured survey (`predict.surveys`) segmented by its task's best model.

No `from __future__ import annotations` here: Dagster reads the `context` annotation from the signature,
and a string annotation is refused (`Cannot annotate context with type dg.AssetExecutionContext`)."""

import base64

import dagster as dg

from assets.partitions import stage_asset
from training.settings import Project
from training.stages.predictions import predict_configured_survey
from training.tracking import ModelSource


def _preview(figure_bytes: bytes) -> str:
    """The figure as a markdown image the Dagster UI shows inline."""
    return f"![inline](data:image/png;base64,{base64.b64encode(figure_bytes).decode()})"


def build_predictions(surveys: list[str], trained_model: dg.AssetsDefinition) -> dg.AssetsDefinition:
    """The predictions asset over one partition per survey name, after every trained model."""

    @dg.asset(
        partitions_def=dg.StaticPartitionsDefinition(surveys),
        deps=[dg.AssetDep(trained_model, partition_mapping=dg.AllPartitionMapping())],
        **stage_asset("predictions"),
        kinds={"pytorch", "numpy"},
    )
    def predictions(context: dg.AssetExecutionContext, project: dg.ResourceParam[Project],
                    mlflow: dg.ResourceParam[ModelSource]) -> dg.MaterializeResult:
        """The survey's classes (.npy, SEG-Y copy for a SEG-Y input), the record with the amplitude mapping,
        a preview of one inline."""
        settings, name = project.settings, context.partition_key
        models = settings.benchmark_models
        result = predict_configured_survey(settings, project.root, name, mlflow.load_model,
                                           lambda task: mlflow.best_model_of_task(task, models),
                                           mlflow.model_provenance)
        written = [str(path) for path in (result.paths.classes, result.paths.segy, result.paths.metadata)
                   if path is not None]
        return dg.MaterializeResult(metadata={
            "model": result.provenance.get("model", ""),
            "outputs": written,
            "class_histogram": {str(c): int(n) for c, n in enumerate(result.class_counts)},
            "amplitude_mapping": (dg.MetadataValue.json(vars(result.amplitude_mapping))
                                  if result.amplitude_mapping else "none: amplitudes used as given"),
            "sections_per_second": round(result.sections / max(result.seconds, 1e-9), 2),
            "preview": dg.MetadataValue.md(_preview(result.figure.read_bytes())) if result.figure else "",
        })

    return predictions
