"""Background services of the browser suite (`dagster dev`, `mlflow ui`): each started in its own session,
ready once its URL answers, and ended with its whole process group (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

STOP_GRACE_S = 20


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.is_file() else ""


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to the process group of `process` (its session leader), then SIGKILL to whatever of the
    group is left (code servers, run workers): nothing the service started outlives it."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        pass
    time.sleep(1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


@contextmanager
def service(command: Sequence[str], *, cwd: Path, env: Mapping[str, str], ready_url: str, log: Path,
            timeout_s: float) -> Iterator[subprocess.Popen]:
    """Run `command` until the block ends; the block starts once `ready_url` answers 200. A service that
    exits or does not answer within `timeout_s` fails with the tail of its log."""
    with log.open("wb") as output:
        process = subprocess.Popen(list(command), cwd=cwd, env=dict(env), stdout=output,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout_s
        while not _answers(ready_url):
            if process.poll() is not None or time.monotonic() > deadline:
                state = f"exited with {process.returncode}" if process.poll() is not None else (
                    f"did not answer {ready_url} within {timeout_s:.0f} s")
                raise RuntimeError(f"{command[0]} {state}; the end of {log}:\n{_tail(log)}")
            time.sleep(1)
        yield process
    finally:
        stop_group(process)


def graphql(url: str, query: str, variables: Mapping[str, object] | None = None) -> dict:
    """The `data` of a GraphQL query to the Dagster webserver at `url`; errors raise."""
    body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
    request = urllib.request.Request(f"{url}/graphql", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.load(response)
    if answer.get("errors"):
        raise RuntimeError(f"GraphQL query failed: {answer['errors']}")
    return answer["data"]
