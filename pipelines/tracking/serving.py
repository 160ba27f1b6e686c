"""A served model: one MLflow model directory with two flavours side by side, `pytorch` (the trained
network, for `mlflow.pytorch.load_model`) and `python_function` (tiled prediction of a whole section, for
`mlflow.pyfunc.load_model` and `mlflow models serve`).

The pyfunc's signature: a float32 (H, W) section in (time/depth down the rows, raw amplitudes), uint8
(H, W) classes out. The section is mapped as `geofm predict` maps a 2-D line (clipped at its 1st and 99th
percentiles, scaled onto the training range); with the parameter `map_amplitudes: false` it is taken as
given and refused unless inside the training range. NaN or inf amplitudes are refused (HTTP 400, saying
why). Over REST (`mlflow models serve -m models:/NAME@best --env-manager local`), POST to /invocations:

    {"inputs": [[a00, a01, ...], [a10, a11, ...], ...]}      (one row per sample, one column per trace)
    {"inputs": [[...], ...], "params": {"map_amplitudes": false}}

and the answer is `{"predictions": [[c00, c01, ...], ...]}`. The tile size, overlap and batch size sit in
the model's `model_config` (`mlflow.pyfunc.load_model(uri, model_config={"overlap": [64, 64]})` changes
them); the training shape and input range in its metadata under `geofm`. The pyfunc flavour ships the
`training` package and this module (`code_paths`), so it loads in any Python with the packages of its
requirements; the pytorch flavour expects geofm installed, as in geofm's own CLI and assets.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import mlflow
import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.models import Model, ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel, PythonModelContext
from mlflow.types import ParamSchema, ParamSpec, Schema, TensorSpec
from torch import nn

import training
from training.errors import GeofmError
from training.survey.amplitude import map_section
from training.survey.contract import model_contract
from training.survey.tiling import TiledPredictor

TORCH_ARTIFACT = "pytorch"
MAP_AMPLITUDES = "map_amplitudes"
PERCENTILES = (1.0, 99.0)
"""The clip percentiles of a served section: `geofm predict`'s default."""
SIGNATURE = ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, -1))]),
                           outputs=Schema([TensorSpec(np.dtype(np.uint8), (-1, -1))]),
                           params=ParamSchema([ParamSpec(MAP_AMPLITUDES, "boolean", True)]))


def _refuse(message: str) -> MlflowException:
    """An error the scoring server answers with HTTP 400 and `message`."""
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


def served_section(section: np.ndarray, input_range: tuple[float, float], map_amplitudes: bool) -> np.ndarray:
    """The section the network sees: mapped onto `input_range` at its own percentiles, or as given when
    `map_amplitudes` is false and it lies inside that range; NaN/inf, or unmapped amplitudes outside the
    range, are refused."""
    if not np.isfinite(section).all():
        raise _refuse(f"the section holds {int((~np.isfinite(section)).sum())} NaN or inf amplitudes; send "
                      "finite amplitudes (mark dead traces with 0)")
    if map_amplitudes:
        try:
            return map_section(section, PERCENTILES, input_range)
        except GeofmError as error:
            raise _refuse(str(error)) from None
    low, high = input_range
    if section.min() < low or section.max() > high:
        raise _refuse(f"with {MAP_AMPLITUDES} false the section must be in the training range [{low:g}, "
                      f"{high:g}], got [{section.min():g}, {section.max():g}]; send it with {MAP_AMPLITUDES} "
                      "true to map raw amplitudes")
    return section


class TiledSegmenterModel(PythonModel):
    """The pyfunc flavour: loads the pytorch flavour's network and predicts sections in tiles."""

    def load_context(self, context: PythonModelContext) -> None:
        config = context.model_config
        network = mlflow.pytorch.load_model(context.artifacts[TORCH_ARTIFACT], map_location="cpu")
        self.input_range = model_contract(network, tile_shape=tuple(config["tile_shape"])).input_range
        self.predictor = TiledPredictor(network, tile_shape=tuple(config["tile_shape"]),
                                        overlap=tuple(config["overlap"]),
                                        batch_size=int(config["batch_size"]))

    # np.ndarray is a type hint MLflow infers no schema from (nor warns about): the signature stays SIGNATURE.
    def predict(self, context: PythonModelContext, model_input: np.ndarray,
                params: dict | None = None) -> np.ndarray:
        map_amplitudes = bool((params or {}).get(MAP_AMPLITUDES, True))
        section = np.asarray(model_input, dtype=np.float32)
        if self.input_range is None:
            raise _refuse("the model records no training range (`input_range`) to check the section against")
        return self.predictor.classes(served_section(section, self.input_range, map_amplitudes))


def _shipped_code(folder: Path) -> list[str]:
    """The `training` package and this module as `pipelines.tracking.serving`, staged under `folder`."""
    package = folder / "pipelines"
    module = package / "tracking"
    module.mkdir(parents=True)
    for init in (package, module):
        (init / "__init__.py").write_text("")
    shutil.copy2(__file__, module / Path(__file__).name)
    return [str(Path(training.__file__).parent), str(package)]


def save_model(
    path: str,
    pytorch_model: nn.Module,
    *,
    mlflow_model: Model | None = None,
    tile_shape: tuple[int, int] | None = None,
    overlap: tuple[int, int] | None = None,
    batch_size: int = 8,
    input_range: tuple[float, float] | None = None,
    code_paths: Sequence[str] = (),
    pip_requirements: Sequence[str] | None = None,
) -> None:
    """Write `pytorch_model` to the folder `path` as an MLflow model with the pytorch and the tiled pyfunc
    flavours. `tile_shape`/`input_range` default to the model's `training_shape`/`input_range`, `overlap`
    to a quarter of the tile; `code_paths`: more code the pickled network needs."""
    contract = model_contract(pytorch_model, tile_shape=tile_shape, input_range=input_range)
    tile = contract.training_shape
    overlap = overlap or (tile[0] // 4, tile[1] // 4)
    mlflow_model = mlflow_model or Model()
    requirements = list(pip_requirements) if pip_requirements is not None else None
    with tempfile.TemporaryDirectory() as staging:
        torch_dir = Path(staging) / TORCH_ARTIFACT
        mlflow.pytorch.save_model(pytorch_model.cpu(), str(torch_dir), serialization_format="pickle",
                                  pip_requirements=requirements)
        mlflow.pyfunc.save_model(
            path, python_model=TiledSegmenterModel(), artifacts={TORCH_ARTIFACT: str(torch_dir)},
            code_paths=[*_shipped_code(Path(staging) / "code"), *code_paths], signature=SIGNATURE,
            mlflow_model=mlflow_model, pip_requirements=requirements,
            model_config={"tile_shape": list(tile), "overlap": list(overlap), "batch_size": batch_size},
            metadata={"geofm": {"training_shape": list(tile), "input_range": contract.input_range and
                                list(contract.input_range)}},
        )
        torch_flavour = Model.load(str(torch_dir)).flavors["pytorch"]
    # The pytorch flavour points into the pyfunc's copy of the network, and carries no code: loading it
    # (geofm's own CLI and assets) must not put the model's snapshot of `training` on sys.path.
    torch_dir_inside = mlflow_model.flavors["python_function"]["artifacts"][TORCH_ARTIFACT]["path"]
    mlflow_model.add_flavor("pytorch", **{**torch_flavour,
                                          "model_data": f"{torch_dir_inside}/{torch_flavour['model_data']}"})
    mlflow_model.save(str(Path(path) / "MLmodel"))


def log_model(
    pytorch_model: nn.Module,
    name: str,
    *,
    registered_model_name: str | None = None,
    tile_shape: tuple[int, int] | None = None,
    overlap: tuple[int, int] | None = None,
    batch_size: int = 8,
    input_range: tuple[float, float] | None = None,
    code_paths: Sequence[str] = (),
    pip_requirements: Sequence[str] | None = None,
) -> ModelInfo:
    """Log `pytorch_model` (see `save_model`) to the active run as the model `name`, registering it under
    `registered_model_name` when given."""
    return Model.log(
        artifact_path=None, name=name, flavor=sys.modules[__name__],
        registered_model_name=registered_model_name,
        pytorch_model=pytorch_model, tile_shape=tile_shape, overlap=overlap, batch_size=batch_size,
        input_range=input_range, code_paths=code_paths, pip_requirements=pip_requirements,
    )
