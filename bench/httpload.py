"""A closed-loop HTTP load generator over loopback: ``concurrency`` keep-alive connections
(``http.client``), each sending prepared requests back to back; latencies per request.

Requests are built before the clock starts (signing a VIHF is the client's cost, not ours).
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    elapsed: float = 0.0
    bytes_received: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def throughput(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0


Check = Callable[[int, bytes], str | None]
"""Inspect a response (status, body); return an error text when it is not a success."""


def run(
    base_url: str,
    requests: Sequence[Request],
    *,
    concurrency: int = 1,
    check: Check | None = None,
    timeout: float = 300.0,
) -> Outcome:
    """Send ``requests`` (split round-robin over ``concurrency`` connections); wait for all."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    outcome = Outcome()
    lock = threading.Lock()
    shares = [list(requests[i::concurrency]) for i in range(concurrency)]
    barrier = threading.Barrier(concurrency + 1)

    def worker(share: list[Request]) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        local: list[float] = []
        statuses: dict[int, int] = {}
        received = 0
        failures: list[str] = []
        barrier.wait()
        for req in share:
            start = time.perf_counter()
            try:
                conn.request(req.method, req.path, body=req.body, headers=req.headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=timeout)
                continue
            local.append(time.perf_counter() - start)
            statuses[response.status] = statuses.get(response.status, 0) + 1
            received += len(data)
            if check is not None:
                problem = check(response.status, data)
                if problem:
                    failures.append(problem)
        conn.close()
        with lock:
            outcome.latencies.extend(local)
            for status, n in statuses.items():
                outcome.statuses[status] = outcome.statuses.get(status, 0) + n
            outcome.bytes_received += received
            outcome.failures.extend(failures)

    threads = [threading.Thread(target=worker, args=(s,), daemon=True) for s in shares]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    outcome.elapsed = time.perf_counter() - started
    return outcome


def get(base_url: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def send(base_url: str, req: Request) -> tuple[int, bytes]:
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=300)
    try:
        conn.request(req.method, req.path, body=req.body, headers=req.headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()
