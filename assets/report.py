"""The benchmark report: mIoU and mPA tables (networks x tasks), pooled (our headline) and under the paper's
protocol beside the paper's published numbers (`training.report`)."""

import dagster as dg

from assets.partitions import stage_asset
from training.encoders import encoder_spec
from training.report import encoder_line
from training.settings import Project
from training.stages.outputs import stage_outputs
from training.stages.report import build_report
from training.stages.scale_table import scanned_encoders
from training.tracking import ReportStore


def build_benchmark_report(trained_model: dg.AssetsDefinition) -> dg.AssetsDefinition:
    """The report asset, reading every partition of `trained_model`."""

    @dg.asset(
        deps=[dg.AssetDep(trained_model, partition_mapping=dg.AllPartitionMapping())],
        **stage_asset("report"),
        kinds={"pandas", "mlflow"},
    )
    def benchmark_report(context: dg.AssetExecutionContext, project: dg.ResourceParam[Project],
                         mlflow: dg.ResourceParam[ReportStore]) -> dg.MaterializeResult:
        """The tables as markdown, each naming its protocol; the paper's numbers in brackets beside our scores
        of its protocol, with what else separates the runs from the authors'; also logged on the MLflow
        parent run."""
        settings = project.settings
        report = build_report(settings, project.root)
        if report.missing:
            context.log.warning(f"not trained yet: {', '.join(report.missing)}; their cells stay empty")
        mlflow.log_report(settings, report.tables, report.scale)
        return dg.MaterializeResult(metadata={
            "tables": dg.MetadataValue.md(report.markdown),
            "encoder": encoder_line(settings.model.encoder),
            "scanned_encoders": [encoder_spec(name).label for name in scanned_encoders(settings)],
            "missing_runs": report.missing,
            "outputs": stage_outputs(settings, "report"),
        })

    return benchmark_report
