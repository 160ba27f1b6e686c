"""Asset check results built from a run's scores: pure functions a unit test calls without running Dagster.

`beats_majority_baseline` judges the test mIoU (never the validation mIoU, which selected the epoch) against
predicting the training split's most frequent class everywhere.
"""

from __future__ import annotations

import dagster as dg

BEATS_BASELINE = "beats_majority_baseline"
BEATS_BASELINE_DESCRIPTION = "test mIoU above predicting the majority class"


def beats_majority_baseline(
    *,
    test_miou: float,
    majority_baseline_miou: float,
    val_miou: float,
    task: str,
    model: str,
    weights_known_random: bool,
) -> dg.AssetCheckResult:
    """Passed when the test mIoU is above the baseline's. A failure is an ERROR, or a WARN when the encoder
    is known to be randomly initialised (`model.weights: none`), where losing to the baseline is expected."""
    passed = test_miou > majority_baseline_miou
    verdict = "beats" if passed else "does not beat"
    message = (f"{task}/{model}: test mIoU {test_miou:.4f} {verdict} the majority-class baseline "
               f"{majority_baseline_miou:.4f} (the validation mIoU, {val_miou:.4f}, selected the epoch and "
               "is not judged)")
    if weights_known_random:
        message += "; the encoder is randomly initialised (model.weights: none), not DINOv2-pretrained"
    return dg.AssetCheckResult(
        check_name=BEATS_BASELINE,
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN if weights_known_random else dg.AssetCheckSeverity.ERROR,
        description=message,
        metadata={
            "task": task,
            "model": model,
            "test_miou": round(test_miou, 4),
            "val_miou": round(val_miou, 4),
            "majority_baseline_miou": round(majority_baseline_miou, 4),
        },
    )
