"""Fixtures of the attack and fault suite: three patients with data on every face, real HTTP
clients against the live server, a canary file and a loopback listener that must see nothing.

The XDS request builders of the XDS face's own tests (``tests/xds/xds_support.py``) are reused
so that the attacks start from the exact requests the face accepts.
"""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "xds"))

from sec_net import CANARY_SECRET, Listener  # noqa: E402

from espace.clock import FrozenClock  # noqa: E402


@pytest.fixture(autouse=True)
def _real_time(clock: FrozenClock) -> None:
    """The test PKI's certificates are valid from yesterday: run the clock at today's time."""
    clock.set(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    """A local file an XXE / XInclude / xop:Include would read; its text must never come back."""
    path = tmp_path / "canary.txt"
    path.write_text(CANARY_SECRET + "\n")
    return path


@pytest.fixture
def loopback_listener() -> Iterator[Listener]:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    listener = Listener(server.getsockname()[1])
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(0.5)
                try:
                    listener.connections.append(conn.recv(4096) or b"<connect>")
                except OSError:
                    listener.connections.append(b"<connect>")

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


class HttpResponse:
    """The subset of Flask's test response ``xds_support.post`` reads, over real HTTP."""

    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        self.content_type = response.headers.get("content-type", "")
        self.data = response.content
        self.headers = response.headers


class HttpClient:
    """A FlaskClient look-alike speaking real HTTP to the live server (httpx)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=30)

    def post(self, path: str, *, data: bytes, content_type: str) -> HttpResponse:
        return HttpResponse(
            self.http.post(path, content=data, headers={"Content-Type": content_type})
        )

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def http(live_server: str) -> Iterator[HttpClient]:
    client = HttpClient(live_server)
    try:
        yield client
    finally:
        client.close()
