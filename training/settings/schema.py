"""The typed settings of geofm: one frozen model per `params.yaml` section, validated once, at load.

Every field carries its default, its allowed values (a `Literal`, a bound) and a description; the
settings table of docs/configuration.md is generated from these classes (`training.settings.docs`), so it
cannot drift. Past `training.settings.load_settings`, code receives these objects, never the raw mapping.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from training.catalog import LOSSES, SCHEDULES, ModelKey, parse_model_key
from training.data.raw_owner import data_origin
from training.errors import UnknownKeyError
from training.lookup import lookup, unknown_key_message
from training.settings.base import Encoder, ModelKeyText, Section, Size, TaskKey, unique
from training.settings.declared import DeclaredTask, check_task_name, task_spec
from training.settings.encoder_scan import EncoderScanSettings, axis_problem
from training.settings.orchestration import OrchestrationSettings
from training.settings.predict import PredictSettings
from training.tasks import TASKS, TaskSpec, get_task

Schedule = Literal[SCHEDULES]  # type: ignore[valid-type]
Loss = Literal[LOSSES]  # type: ignore[valid-type]


class SyntheticSettings(Section):
    """The offline stand-in for the Zenodo record, in its exact layout."""

    seed: int = Field(0, ge=0, description="seed of the synthetic generators (one stream per sample)")
    train_count: int = Field(32, ge=2, description="samples in each task's `train` folder")
    test_count: int = Field(8, ge=1, description="samples in each task's `valid` folder (our test split)")
    shapes: dict[TaskKey, tuple[Size, Size]] = Field(
        default_factory=dict,
        description="per-task `[height, width]`; a task not named keeps the record's size")


class DataSettings(Section):
    """Where the raw record comes from and how it is split and prepared."""

    source: Literal["zenodo", "synthetic"] = Field(
        "zenodo", description="`zenodo` downloads the record; `synthetic` writes the offline stand-in")
    record: str = Field("12798750", min_length=1, description="the Zenodo record id")
    raw_dir: str = Field("data/raw", min_length=1, description="raw record, `<raw_dir>/<task>/...`")
    prepared_dir: str = Field("data/prepared", min_length=1, description="training-ready arrays per task")
    val_fraction: float = Field(0.1, gt=0, lt=1,
                                description="share of the record's train set carved out for validation")
    split_seed: int = Field(1234, ge=0, description="seed of the validation split")
    synthetic: SyntheticSettings = Field(default_factory=SyntheticSettings,
                                         description="the synthetic source's settings")


class ModelSettings(Section):
    """The encoder and how it is adapted."""

    encoder: Encoder = Field("vit_small_patch14_dinov2",
                             description="timm name of the DINOv2/DINOv3 encoder (docs/models.md, Encoders)")
    weights: str = Field("hub", min_length=1,
                         description="`hub`, `none` (random, for offline demos) or a .pth/.safetensors path")
    lora_rank: int = Field(8, ge=1, description="rank of the LoRA adapters on `attn.qkv` and `attn.proj`")
    input_scaling: Literal["zscore", "authors"] = Field(
        "zscore", description="`zscore`: the train split's mean/std; `authors`: uint8 cast, Pillow bilinear "
                              "resize to the ViT grid, /255 (UNet: /255), as the authors' code")
    unet_forward: Literal["geofm", "authors"] = Field(
        "geofm", description="`geofm`: the bottleneck upsampled into the decoder; `authors`: zero-padded, as "
                             "their forward")
    position_grid: Literal["task", "source"] = Field(
        "task", description="the ViT's position embeddings: `task`: resampled once to the task's "
                            "patch grid (`full` trains that grid); `source`: the pretrained 37x37 grid, "
                            "resampled by the same formula in every forward (`full` trains the 37x37 grid), "
                            "as the authors'")


class TrainSettings(Section):
    """The fine-tuning loop; the defaults are the paper's."""

    epochs: int = Field(100, ge=1, description="passes over the training split")
    batch_size: int | str = Field(
        "paper", description="sections per batch (a positive integer), or `paper` for each task's batch "
        "size in the paper")
    lr: float = Field(1e-5, gt=0, description="AdamW learning rate")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay")
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = Field(
        (0.7, 0.999), description="AdamW betas")
    warmup_epochs: int = Field(0, ge=0, description="linear warm-up, in epochs (at most `epochs`)")
    schedule: Schedule = Field("constant", description="learning-rate schedule after the warm-up")
    loss: Loss = Field("weighted_dice", description="training loss (weighted dice: the paper's)")
    seeds: tuple[Annotated[int, Field(ge=0)], ...] = Field(
        (1234,), min_length=1,
        description="seeds of initialization and data order: every model trains once per seed, the "
                    "report shows mean +- std")
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes")
    batch_composition: Literal["shuffled", "mirror_pairs"] = Field(
        "shuffled", description="`shuffled`: mirror images are independent items; `mirror_pairs`: each batch "
                                "holds `batch_size` samples and their mirrors, as the authors'")
    device: str = Field("auto", min_length=1, description="`auto` (CUDA when present), `cpu`, `cuda:N`")
    regime: Literal["geofm", "authors"] = Field(
        "geofm", description="`geofm`: train mode every epoch, the epoch kept by pooled mIoU on validation; "
                             "`authors`: as their code, eval mode from epoch 2 (frozen BatchNorm "
                             "statistics, LoRA factors frozen) and the epoch kept by per-batch-mean mIoU on "
                             "the test split (optimistic)")
    micro_batch_size: int | None = Field(
        None, ge=1, description="sections per forward/backward pass when a batch does not fit in memory: the "
                                "gradients of the micro-batches add up to the full batch's (exactly, also "
                                "for the dice losses); null: the whole batch at once")
    reproducibility: Literal["fast", "strict"] = Field(
        "fast", description="`strict`: the same CPU kernels on every x86-64 machine with AVX2 (pinned before "
                            "torch loads, 2 threads, deterministic algorithms; on CUDA "
                            "deterministic too), so CPU trainings are bit-identical across machines; `fast`: "
                            "each machine's fastest kernels (docs/reproduce.md)")
    lock_wait_seconds: float = Field(
        0.0, ge=0, allow_inf_nan=True,
        description="how long a training waits for another one training into the same checkpoint "
                    "folder (0: refused at once, naming the folder; .inf: as long as it takes)")

    @field_validator("batch_size")
    @classmethod
    def _positive_or_paper(cls, value: int | str) -> int | str:
        if value != "paper" and not (isinstance(value, int) and value > 0):
            raise ValueError(f"expected a positive integer or 'paper', got {value!r}")
        return value

    @field_validator("device")
    @classmethod
    def _device_name(cls, device: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
            raise ValueError(f"unknown device {device!r}; allowed: auto, cpu, cuda, cuda:N")
        return device

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, seeds: tuple[int, ...]) -> tuple[int, ...]:
        return unique("seed", seeds)

    @model_validator(mode="after")
    def _warmup_within_epochs(self) -> TrainSettings:
        if self.warmup_epochs > self.epochs:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs}) exceeds epochs ({self.epochs})")
        return self

    def batch_size_for(self, task: TaskSpec) -> int:
        """The batch size of `task`: the configured number, or the paper's for that task."""
        return task.paper_batch_size if self.batch_size == "paper" else self.batch_size


class OutputSettings(Section):
    """Where the training stages write (relative to the project root)."""

    runs_dir: str = Field("runs", min_length=1, description="`<runs_dir>/<task>/<model>/`: metrics, history")
    reports_dir: str = Field("reports", min_length=1, description="the benchmark tables")
    checkpoints_dir: str = Field("checkpoints", min_length=1,
                                 description="resumable training state, one folder per configuration")


TRACKING_SCHEMES = ("file", "sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks")
"""URI schemes of the tracking stores MLflow knows (a plain path is a file store)."""


class MlflowSettings(Section):
    """The MLflow tracking store, its artifacts and the alias of each model's best version."""

    tracking_uri: str = Field("sqlite:///mlflow/mlflow.db", min_length=1,
                              description="tracking store; a relative sqlite path is under the project root")
    artifact_root: str = Field("mlflow/artifacts", min_length=1, description="artifact location of new runs")
    experiment: str = Field("geofm-benchmark", min_length=1, description="experiment of the benchmark runs")
    best_alias: str = Field("best", min_length=1, description="alias on the best version of each model")
    ui_url: str = Field("http://127.0.0.1:5000", min_length=1,
                        description="the MLflow UI the run links (Dagster metadata, CLI) point to")

    @field_validator("tracking_uri")
    @classmethod
    def _known_store(cls, uri: str) -> str:
        scheme = uri.partition("://")[0].split("+")[0] if "://" in uri else ""
        if scheme and scheme not in TRACKING_SCHEMES:
            allowed = ", ".join(f"{name}://..." for name in TRACKING_SCHEMES)
            raise ValueError(f"unknown tracking store scheme {scheme!r} in {uri!r}; allowed: a folder "
                             f"path or {allowed}")
        return uri

    @field_validator("best_alias")
    @classmethod
    def _allowed_alias(cls, alias: str) -> str:
        reserved = alias.lower() == "latest" or re.fullmatch(r"[vV]\d+", alias)
        if reserved or not re.fullmatch(r"[\w\-]+", alias):
            raise ValueError(f"{alias!r} cannot be an MLflow alias; allowed: letters, digits, _ and -, "
                             "except `latest` and `v<number>` (MLflow reserves them)")
        return alias


class Settings(Section):
    """Everything one benchmark configuration needs: `params.yaml` with its profile applied."""

    profile: str = Field("demo", min_length=1, description="the overlay of `profiles:` applied to the keys")
    tasks: tuple[str, ...] = Field(tuple(TASKS), min_length=1,
                                   description="tasks of the benchmark: paper tasks and declared tasks")
    declared_tasks: dict[str, DeclaredTask] = Field(
        default_factory=dict, description="the user's own labelled data, by task name (docs/own-survey.md)")
    models: tuple[ModelKeyText, ...] = Field(
        ("unet", "linear-lora", "pup-lora", "mla-lora", "dpt-lora"), min_length=1,
        description="`unet` or `<network>-<mode>`, network linear/pup/mla/dpt, mode frozen/full/lora, on "
                    "`model.encoder`; `<network>-<mode>.<encoder>` on another encoder (docs/models.md)")
    encoder_scan: EncoderScanSettings = Field(default_factory=EncoderScanSettings, description="")
    data: DataSettings = Field(default_factory=DataSettings, description="")
    model: ModelSettings = Field(default_factory=ModelSettings, description="")
    train: TrainSettings = Field(default_factory=TrainSettings, description="")
    outputs: OutputSettings = Field(default_factory=OutputSettings, description="")
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings, description="")
    predict: PredictSettings = Field(default_factory=PredictSettings, description="")
    orchestration: OrchestrationSettings = Field(default_factory=OrchestrationSettings, description="")

    @field_validator("tasks")
    @classmethod
    def _unique_tasks(cls, tasks: tuple[str, ...]) -> tuple[str, ...]:
        return unique("task", tasks)

    @field_validator("declared_tasks")
    @classmethod
    def _declared_names(cls, declared: dict[str, DeclaredTask]) -> dict[str, DeclaredTask]:
        for name in declared:
            check_task_name(name)
            if name in TASKS:
                raise ValueError(f"declared task {name!r} has the name of a paper task: choose another")
        return declared

    @model_validator(mode="after")
    def _known_tasks(self) -> Settings:
        known = [*TASKS, *self.declared_tasks]
        for index, key in enumerate(self.tasks):
            if key not in known:
                raise ValueError(f"tasks[{index}]: {unknown_key_message('task', key, known)}")
        for name, survey in self.predict.surveys.items():
            if survey.task not in known:
                problem = unknown_key_message("task", survey.task, known)
                raise ValueError(f"predict.surveys.{name}.task: {problem}")
        return self

    @field_validator("models")
    @classmethod
    def _unique_models(cls, models: tuple[str, ...]) -> tuple[str, ...]:
        return unique("model", models)

    @model_validator(mode="after")
    def _one_encoder_axis(self) -> Settings:
        problem = axis_problem(self.models, self.model.encoder, self.encoder_scan)
        if problem:
            raise ValueError(problem)
        return self

    @cached_property
    def benchmark_models(self) -> tuple[str, ...]:
        """Every model the benchmark trains per task: `models`, then the encoder scan's `<model>.<encoder>`
        (one Dagster partition, DVC stage and registered model each)."""
        return (*self.models, *self.encoder_scan.trainings())

    @cached_property
    def task_specs(self) -> dict[str, TaskSpec]:
        """The configured tasks at the section sizes of the configured data source."""
        shapes = self.data.synthetic.shapes if self.data.source == "synthetic" else {}
        return {key: self._task_spec(key, shapes) for key in self.tasks}

    def _task_spec(self, key: str, shapes: dict[str, tuple[int, int]]) -> TaskSpec:
        if key in self.declared_tasks:
            return task_spec(key, self.declared_tasks[key])
        return get_task(key).with_shape(shapes[key]) if key in shapes else get_task(key)

    def declared(self, key: str) -> DeclaredTask | None:
        """The declaration of task `key`, or None for a paper task."""
        return self.declared_tasks.get(key)

    def task_origin(self, key: str) -> str:
        """Where task `key`'s data come from, as its raw and prepared folders record it."""
        if key in self.declared_tasks:
            return f"declared task {key}"
        return data_origin(self.data.source, self.data.record)

    def task(self, key: str) -> TaskSpec:
        """One configured task; a task outside `tasks` is an error listing them."""
        return lookup("task", key, self.task_specs)

    def model_key(self, key: str) -> ModelKey:
        """One model of the benchmark; a model outside `benchmark_models` is an error listing them."""
        if key not in self.benchmark_models:
            raise UnknownKeyError(unknown_key_message("model", key, self.benchmark_models))
        return parse_model_key(key)


