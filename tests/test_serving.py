"""The served model: a tiny trained segmenter logged with the pytorch and the tiled pyfunc flavours to a
temporary registry, loaded by either flavour, loaded in a fresh Python from its own shipped code, and
answering REST requests from `mlflow models serve` with the library's tiled prediction."""

from __future__ import annotations

import json
import os
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

TILE = (16, 16)
NAME = "geofm-stripes-tiny"
URI = f"models:/{NAME}@best"
TESTS = Path(__file__).resolve().parent
SERVER_START_S = 180
SECTION, _ = stripes(np.random.default_rng(5), (20, 72))
"""Several tiles wide and not a multiple of the tile."""


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, np.ndarray]]:
    """A sqlite registry whose `geofm-stripes-tiny@best` is a trained tiny model logged by
    `serving.log_model`; yields the tracking URI and the library's classes of `SECTION`."""
    root = tmp_path_factory.mktemp("registry")
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    experiment = MlflowClient().create_experiment("serving", artifact_location=(root / "artifacts").as_uri())
    model = train_on_stripe_tiles(TILE)
    with mlflow.start_run(experiment_id=experiment):
        info = serving.log_model(model, "model", registered_model_name=NAME,
                                 code_paths=[str(TESTS / "tiny_models.py")], pip_requirements=["torch"])
    MlflowClient().set_registered_model_alias(NAME, "best", info.registered_model_version)
    expected = predict_section(model, SECTION, device="cpu")
    with torch.inference_mode():
        squeezed = model(torch.from_numpy(SECTION)[None, None]).argmax(dim=1)[0].numpy()
    assert 0 < expected.sum() < expected.size and (expected != squeezed).mean() > 0.05
    yield tracking_uri, expected
    mlflow.set_tracking_uri(previous)


def test_both_flavours_load_from_the_registry(registry: tuple[str, np.ndarray]) -> None:
    _, expected = registry
    pyfunc = mlflow.pyfunc.load_model(URI)
    np.testing.assert_array_equal(pyfunc.predict(SECTION), expected)
    assert pyfunc.metadata.metadata["geofm"] == {"training_shape": [16, 16], "input_range": [0.0, 255.0]}
    network = mlflow.pytorch.load_model(URI)
    assert network.training_shape == TILE
    np.testing.assert_array_equal(predict_section(network, SECTION, device="cpu"), expected)
    with pytest.raises(Exception, match=r"Shape of input \(1, 20, 72\) does not match expected shape"):
        pyfunc.predict(SECTION[None])


def test_the_pyfunc_loads_in_a_fresh_python_from_its_shipped_code(
    registry: tuple[str, np.ndarray], tmp_path: Path
) -> None:
    tracking_uri, expected = registry
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


def post(url: str, payload: dict, timeout: float) -> dict:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


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
def test_the_served_model_answers_with_the_tiled_classes(
    registry: tuple[str, np.ndarray], tmp_path: Path
) -> None:
    tracking_uri, expected = registry
    port, log = free_port(), tmp_path / "server.log"
    command = [str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m", URI,
               "--env-manager", "local", "-p", str(port), "-h", "127.0.0.1"]
    # As in an activated virtual environment: the server starts `uvicorn` from PATH.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    environment = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "PATH": path}
    with log.open("w") as output:
        server = subprocess.Popen(command, cwd=tmp_path, env=environment, stdout=output,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/ping", server, log)
        answer = post(f"http://127.0.0.1:{port}/invocations", {"inputs": SECTION.tolist()}, timeout=60)
        np.testing.assert_array_equal(np.array(answer["predictions"], dtype=np.uint8), expected)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
