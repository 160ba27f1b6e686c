"""The served model: a tiny trained segmenter logged with the pytorch and the tiled pyfunc flavours to a
temporary registry, loaded by either flavour, loaded in a fresh Python from its own shipped code, and
answering REST requests from `mlflow models serve`, started by the README's command as printed, with the
library's tiled prediction of the section mapped as `geofm predict` maps it; NaN, and unmapped amplitudes
outside the training range, answered with 400 and the reason."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from mlflow import MlflowClient
from tiny_training import stripes, train_on_stripe_tiles

from pipelines.tracking import serving
from training.survey import predict_section
from training.survey.amplitude import map_section

TILE = (16, 16)
NAME = "geofm-fault-unet"
"""The name the README's serve command names."""
URI = f"models:/{NAME}@best"
TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
SERVER_START_S = 180
SECTION, _ = stripes(np.random.default_rng(5), (20, 72))
"""Several tiles wide and not a multiple of the tile, in the training range."""
RAW = ((SECTION - 127.5) * 40).round()
"""The same section as raw int16-like amplitudes in the thousands."""


Registry = tuple[str, np.ndarray, torch.nn.Module]


def mapped(section: np.ndarray) -> np.ndarray:
    return map_section(section, serving.PERCENTILES, (0.0, 255.0))


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A project root whose sqlite registry (`mlflow/mlflow.db`, as params.yaml has it) holds a trained
    tiny model logged by `serving.log_model` as `geofm-fault-unet@best`; yields the tracking URI and the
    library's classes of `SECTION` mapped as served, and the model."""
    root = tmp_path_factory.mktemp("registry")
    (root / "mlflow").mkdir()
    tracking_uri = f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)  # an earlier test may have set the process-wide registry elsewhere
    experiment = MlflowClient().create_experiment("serving", artifact_location=(root / "artifacts").as_uri())
    model = train_on_stripe_tiles(TILE)
    with mlflow.start_run(experiment_id=experiment):
        info = serving.log_model(model, "model", registered_model_name=NAME,
                                 code_paths=[str(TESTS / "tiny_models.py")], pip_requirements=["torch"])
    MlflowClient().set_registered_model_alias(NAME, "best", info.registered_model_version)
    expected = predict_section(model, mapped(SECTION), device="cpu")
    with torch.inference_mode():
        squeezed = model(torch.from_numpy(mapped(SECTION))[None, None]).argmax(dim=1)[0].numpy()
    assert 0 < expected.sum() < expected.size and (expected != squeezed).mean() > 0.05
    yield tracking_uri, expected, model
    mlflow.set_tracking_uri(previous[0])
    mlflow.set_registry_uri(previous[1])


def test_both_flavours_load_from_the_registry(registry: Registry) -> None:
    _, expected, model = registry
    pyfunc = mlflow.pyfunc.load_model(URI)
    np.testing.assert_array_equal(pyfunc.predict(SECTION), expected)
    np.testing.assert_array_equal(pyfunc.predict(SECTION, params={"map_amplitudes": False}),
                                  predict_section(model, SECTION, device="cpu"))
    np.testing.assert_array_equal(pyfunc.predict(RAW), predict_section(model, mapped(RAW),
                                                                       device="cpu"))
    assert pyfunc.metadata.metadata["geofm"] == {"training_shape": [16, 16], "input_range": [0.0, 255.0]}
    network = mlflow.pytorch.load_model(URI)
    assert network.training_shape == TILE
    np.testing.assert_array_equal(predict_section(network, mapped(SECTION), device="cpu"), expected)
    with pytest.raises(Exception, match=r"Shape of input \(1, 20, 72\) does not match expected shape"):
        pyfunc.predict(SECTION[None])


def test_the_pyfunc_loads_in_a_fresh_python_from_its_shipped_code(
    registry: Registry, tmp_path: Path
) -> None:
    tracking_uri, expected, _ = registry
    np.save(tmp_path / "section.npy", SECTION)
    script = ("import sys, mlflow, numpy as np\n"
              "model = mlflow.pyfunc.load_model(sys.argv[1])\n"
              "np.save('classes.npy', model.predict(np.load('section.npy')))\n"
              "import training; print(training.__file__)\n")
    environment = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri}
    environment.pop("PYTHONPATH", None)
    done = subprocess.run([sys.executable, "-c", script, URI], cwd=tmp_path, env=environment,
                          capture_output=True, text=True, timeout=300, check=True)
    assert "/code/training/__init__.py" in done.stdout.strip().splitlines()[-1]
    np.testing.assert_array_equal(np.load(tmp_path / "classes.npy"), expected)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def post(url: str, payload: dict, timeout: float) -> tuple[int, dict]:
    """The status and JSON answer of a POST."""
    request = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def readme_serve_command(port: int) -> str:
    """docs/surveys.md's `mlflow models serve` command as printed, on `port` instead of 5001."""
    page = (REPO / "docs" / "surveys.md").read_text()
    block = re.search(r"### Serving.*?```bash\n(.*?)\ncurl ", page, re.S)
    assert block, "docs/surveys.md lacks the serve command under ### Serving"
    command = block.group(1).replace("\\\n", " ")
    assert "-p 5001" in command
    return command.replace("-p 5001", f"-p {port}")


def wait_until_ready(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"mlflow models serve exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(1)
    pytest.fail(f"mlflow models serve did not answer {url} within {SERVER_START_S} s:\n"
                f"{log.read_text()[-3000:]}")


@pytest.mark.slow
def test_the_readme_serve_command_serves_the_model_and_checks_its_input(
    registry: Registry, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Run from the project root with neither the tracking URI nor the venv in the environment."""
    tracking_uri, expected, _ = registry
    root = Path(tracking_uri.removeprefix("sqlite:///")).parent.parent
    (root / ".venv").symlink_to(Path(sys.executable).parent.parent, target_is_directory=True)
    port, log = free_port(), tmp_path_factory.mktemp("server") / "server.log"
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
    environment["PATH"] = "/usr/bin:/bin"
    with log.open("w") as output:
        server = subprocess.Popen(["bash", "-c", readme_serve_command(port)], cwd=root, env=environment,
                                  stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/invocations"
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/ping", server, log)
        status, answer = post(url, {"inputs": SECTION.tolist()}, timeout=60)
        assert status == 200
        np.testing.assert_array_equal(np.array(answer["predictions"], dtype=np.uint8), expected)
        status, answer = post(url, {"inputs": RAW.tolist()}, timeout=60)
        raw_classes = np.array(answer["predictions"], dtype=np.uint8)
        assert status == 200 and (raw_classes == expected).mean() > 0.98
        nan = SECTION.copy()
        nan[3, 4] = np.nan
        status, answer = post(url, {"inputs": nan.tolist()}, timeout=60)
        assert status == 400 and "the section holds 1 NaN or inf amplitudes" in answer["message"]
        status, answer = post(url, {"inputs": RAW.tolist(), "params": {"map_amplitudes": False}}, timeout=60)
        assert status == 400 and "must be in the training range [0, 255]" in answer["message"]
        assert sorted(path.name for path in root.iterdir()) == [".venv", "artifacts", "mlflow"]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
