"""The `beats_majority_baseline` check judges the test mIoU, never the validation mIoU."""

from __future__ import annotations

import dagster as dg
import pytest

from assets.checks import BEATS_BASELINE, beats_majority_baseline

BASELINE = 0.456789


def check(test_miou: float, val_miou: float, weights_known_random: bool = False) -> dg.AssetCheckResult:
    return beats_majority_baseline(test_miou=test_miou, majority_baseline_miou=BASELINE, val_miou=val_miou,
                                   task="seam", model="mla-lora", weights_known_random=weights_known_random)


def test_a_test_score_below_the_baseline_fails_whatever_the_validation_score() -> None:
    result = check(test_miou=0.40, val_miou=0.60)
    assert result.check_name == BEATS_BASELINE
    assert not result.passed
    assert result.severity == dg.AssetCheckSeverity.ERROR
    assert "test mIoU 0.4000 does not beat the majority-class baseline 0.4568" in result.description
    metadata = {key: value.value for key, value in result.metadata.items()}
    assert metadata == {"task": "seam", "model": "mla-lora", "test_miou": 0.40, "val_miou": 0.60,
                        "majority_baseline_miou": 0.4568}


def test_a_test_score_above_the_baseline_passes_whatever_the_validation_score() -> None:
    result = check(test_miou=0.50, val_miou=0.30)
    assert result.passed
    assert "test mIoU 0.5000 beats the majority-class baseline 0.4568" in result.description


@pytest.mark.parametrize("test_miou", [0.40, 0.50])
def test_a_random_encoder_makes_the_check_a_warning(test_miou: float) -> None:
    result = check(test_miou=test_miou, val_miou=0.45, weights_known_random=True)
    assert result.passed == (test_miou > BASELINE)
    assert result.severity == dg.AssetCheckSeverity.WARN
    assert "randomly initialised (model.weights: none)" in result.description
