"""The benchmark report: mIoU and mPA tables (networks x tasks) beside the paper's published numbers."""

import dagster as dg

from assets.partitions import stage_metadata
from training import benchmark


def build_benchmark_report(trained_model: dg.AssetsDefinition) -> dg.AssetsDefinition:
    """The report asset, reading every partition of `trained_model`."""

    @dg.asset(
        deps=[dg.AssetDep(trained_model, partition_mapping=dg.AllPartitionMapping())],
        required_resource_keys={"project", "mlflow"},
        metadata=stage_metadata("report"),
        kinds={"pandas", "mlflow"},
    )
    def benchmark_report(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """Both tables as markdown (ours, the paper's in brackets); also logged on the MLflow parent run."""
        project = context.resources.project
        params = project.params()
        report = benchmark.build_report(params, project.root)
        if report.missing:
            context.log.warning(f"not trained yet: {', '.join(report.missing)}; their cells stay empty")
        context.resources.mlflow.log_report(params, report.tables)
        return dg.MaterializeResult(metadata={
            "tables": dg.MetadataValue.md(report.markdown),
            "missing_runs": report.missing,
            "outputs": benchmark.stage_outputs(params, "report"),
        })

    return benchmark_report
