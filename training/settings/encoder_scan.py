"""The encoder axis (`encoder_scan:` in params.yaml): each model of `models` trains once more on each
encoder of `encoders`, as the scan key `<model>.<encoder>` (its own DVC stage `train-encoder@...`, Dagster
partition, run folder and registered model; docs/models.md "Encoders").

Two lists because DVC's `matrix:` reads params.yaml as it is: it cannot drop the UNet from `models` (the
UNet has no encoder) nor `model.encoder` from an encoder list (today's stages train it already).
"""

from __future__ import annotations

from pydantic import Field, field_validator

from training.catalog import ENCODER_SEPARATOR, FULLY_TRAINED_NETWORKS, VIT_NETWORKS, parse_model_key
from training.settings.base import Encoder, ModelKeyText, Section, unique

SCANNED_MODELS = ("linear-lora", "pup-lora", "mla-lora", "dpt-lora")


class EncoderScanSettings(Section):
    """The encoders besides `model.encoder` that the ViT models of the benchmark also train on."""

    encoders: tuple[Encoder, ...] = Field(
        (), description="encoders besides `model.encoder`: every model of `encoder_scan.models` trains once "
                        "more on each, as `<model>.<encoder>` (one DVC stage `train-encoder@<task>-<model>-"
                        "<encoder>`, Dagster partition and registered model each); `[]`: no scan")
    models: tuple[ModelKeyText, ...] = Field(
        SCANNED_MODELS,
        description="the ViT models of `models` (`<network>-<mode>`, no UNet: it has no encoder) trained on "
                    "each of `encoder_scan.encoders`")

    @field_validator("encoders")
    @classmethod
    def _unique_encoders(cls, encoders: tuple[str, ...]) -> tuple[str, ...]:
        return unique("encoder", encoders)

    @field_validator("models")
    @classmethod
    def _plain_vit_models(cls, models: tuple[str, ...]) -> tuple[str, ...]:
        for key in models:
            model = parse_model_key(key)
            if model.network in FULLY_TRAINED_NETWORKS:
                raise ValueError(f"{key!r} has no encoder to scan; only the ViT networks "
                                 f"({', '.join(VIT_NETWORKS)}) have one")
            if model.encoder is not None:
                plain = key.partition(ENCODER_SEPARATOR)[0]
                raise ValueError(f"{key!r} names its encoder already: write {plain!r}, the scan adds each "
                                 "of encoder_scan.encoders")
        return unique("model", models)

    def trainings(self) -> tuple[str, ...]:
        """The scan's model keys, `<model>.<encoder>`, model by model (DVC's matrix order within a task)."""
        return tuple(f"{model}{ENCODER_SEPARATOR}{encoder}"
                     for model in self.models for encoder in self.encoders)


def axis_problem(models: tuple[str, ...], encoder: str, scan: EncoderScanSettings) -> str | None:
    """What makes `scan` clash with the `models` list and `model.encoder` (`encoder`), as a message naming
    the key at fault, or None."""
    for key in models:
        if parse_model_key(key).encoder == encoder:
            plain = key.partition(ENCODER_SEPARATOR)[0]
            return f"models: {key!r} scans model.encoder itself: write {plain!r}"
    if not scan.encoders:
        return None
    if encoder in scan.encoders:
        return (f"encoder_scan.encoders: {encoder!r} is model.encoder, which every model of `models` trains "
                "on already: list only the other encoders")
    missing = [key for key in scan.models if key not in models]
    if missing:
        return (f"encoder_scan.models: {missing[0]!r} is not in models ({', '.join(models)}): the scan "
                "compares each model across encoders, model.encoder's run included")
    twice = [key for key in scan.trainings() if key in models]
    if twice:
        return (f"models: {twice[0]!r} is also a training of encoder_scan (one DVC stage writing its run "
                "folder): keep one")
    return None
