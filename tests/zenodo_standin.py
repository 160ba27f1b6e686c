"""A local stand-in for Zenodo, and a way to send zenodo-get's real HTTP traffic to it.

`ZenodoStandin` serves one record on 127.0.0.1 (an ephemeral port): `/api/records/<id>` answers with
Zenodo-API JSON (each file's key, size, `md5:` checksum and `links.self`) and the links serve the bytes.
Switches: `wrong_md5` (advertise a wrong checksum for some files) and `faults` (for a file, how its next
GETs are answered, in order, before it is served whole: `"drop"` sends the headers with the full
Content-Length and half the body, then closes the connection; `"503"` and `"429"` answer with that status
(429 with `Retry-After: 0`, as a rate limiter would); `"reset"` resets the connection before answering).

`route_zenodo_to(port)` makes every client zenodo-get builds (it rebuilds its module client on each
`zenodo_get.download` call) rewrite each request's scheme, host and port to the stand-in, keeping path
and query, so the code under test runs zenodo-get's real download path unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock
from urllib.parse import unquote, urlsplit

import httpx2
from zenodo_get import downloader


class ZenodoStandin:
    """Serve `files` as Zenodo record `record_id` on 127.0.0.1 while used as a context manager."""

    def __init__(self, record_id: str, files: dict[str, bytes]) -> None:
        self.record_id = record_id
        self.files = dict(files)
        self.wrong_md5: set[str] = set()
        self.faults: dict[str, list[str]] = {}
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def file_gets(self, key: str) -> int:
        """How many times the file `key` was requested."""
        return self.requests.count(self._file_path(key))

    def record_json(self) -> dict:
        entries = []
        for index, (key, content) in enumerate(self.files.items()):
            md5 = hashlib.md5(content).hexdigest()
            if key in self.wrong_md5:
                md5 = hashlib.md5(content + b"corrupted").hexdigest()
            entries.append(
                {
                    "id": f"file-{index}",
                    "key": key,
                    "size": len(content),
                    "checksum": f"md5:{md5}",
                    "links": {"self": f"https://zenodo.org{self._file_path(key)}"},
                }
            )
        return {
            "id": int(self.record_id),
            "metadata": {"title": f"stand-in record {self.record_id}", "publication_date": "2024-07-22"},
            "files": entries,
        }

    def _file_path(self, key: str) -> str:
        return f"/api/records/{self.record_id}/files/{key}/content"

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                """Keep the test output quiet."""

            def do_GET(self) -> None:
                path = unquote(urlsplit(self.path).path)
                with standin._lock:
                    standin.requests.append(path)
                if path == f"/api/records/{standin.record_id}":
                    self._send(200, json.dumps(standin.record_json()).encode(), "application/json")
                    return
                key = next((key for key in standin.files if standin._file_path(key) == path), None)
                if key is None:
                    self._send(404, b'{"status": 404, "message": "not found"}', "application/json")
                    return
                content = standin.files[key]
                with standin._lock:
                    pending = standin.faults.get(key, [])
                    fault = pending.pop(0) if pending else None
                if fault is None:
                    self._send(200, content, "application/octet-stream")
                elif fault == "drop":
                    self._send_truncated(content)
                elif fault == "reset":
                    self._reset()
                elif fault in ("503", "429"):
                    self._send_status(int(fault))
                else:
                    raise ValueError(f"unknown fault {fault!r} for {key}; known: drop, reset, 503, 429")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _send_truncated(self, body: bytes) -> None:
                """Promise the whole body, send half of it, then hang up."""
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True

            def _send_status(self, status: int) -> None:
                body = json.dumps({"status": status, "message": self.responses[status][0]}).encode()
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _reset(self) -> None:
                """Close at once with SO_LINGER 0, so the client gets a TCP reset instead of an answer."""
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                os.close(self.connection.detach())
                self.close_connection = True

        return Handler

    def __enter__(self) -> ZenodoStandin:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class _RerouteTransport(httpx2.BaseTransport):
    """Send each request to http://127.0.0.1:<port> with its path and query unchanged."""

    def __init__(self, inner: httpx2.BaseTransport, port: int) -> None:
        self._inner = inner
        self._port = port

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=self._port)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


@contextmanager
def route_zenodo_to(port: int) -> Iterator[None]:
    """While active, zenodo-get's HTTP clients (its own retrying transports) talk to 127.0.0.1:`port`."""
    build_transport = downloader._create_client_transport

    def rerouted_transport(*args: object, **kwargs: object) -> httpx2.BaseTransport:
        return _RerouteTransport(build_transport(*args, **kwargs), port)

    downloader._close_client()
    try:
        with (
            mock.patch.object(downloader, "_create_client_transport", rerouted_transport),
            mock.patch.dict(os.environ, {"NO_PROXY": "127.0.0.1"}),
        ):
            yield
    finally:
        downloader._close_client()
