"""The server under test: ``gunicorn mes.wsgi:app`` (the production entry point, see
``mes/serve.py`` and the Dockerfile) on a free loopback port, configured through ``MES_*``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_settings(database_url: str, pki_dir: Path, work: Path, **extra: Any) -> dict[str, Any]:
    """The settings of a server under test: fresh keys, the test PKI, 80 MB requests."""
    from espace.crypto import DocumentCipher
    from espace.trace import TraceSigner

    return {
        "DATABASE_URL": database_url,
        "DOCUMENT_KEY": DocumentCipher.generate_key(),
        "TRACE_SIGNING_KEY": TraceSigner.generate_key(),
        "PKI_DIR": str(pki_dir),
        "VAR_DIR": str(work / "var"),
        "LOG_JSON": "false",
        "MAX_REQUEST_BYTES": 80 * 1024 * 1024,
        **extra,
    }


def settings_env(settings: dict[str, Any]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MES_")}
    for key, value in settings.items():
        if value is not None:
            env[f"MES_{key}"] = str(value)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


@dataclass
class Server:
    """A gunicorn master with ``workers`` gthread workers."""

    settings: dict[str, Any]
    workers: int = 2
    threads: int = 4
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    _log: Any = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> Server:
        gunicorn = Path(sys.executable).with_name("gunicorn")
        command = [
            str(gunicorn),
            "--workers", str(self.workers),
            "--threads", str(self.threads),
            "--worker-class", "gthread",
            "--bind", f"127.0.0.1:{self.port}",
            "--timeout", "300",
            "--log-level", "warning",
            "mes.wsgi:app",
        ]
        log: Any = subprocess.DEVNULL
        if self.log_path is not None:
            log = self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command, env=settings_env(self.settings), stdout=log, stderr=log,
            cwd=str(Path(__file__).resolve().parents[1]),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(self.base_url + "/healthz", timeout=2) as response:
                    if response.status == 200 and len(self.worker_pids()) >= self.workers:
                        return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("gunicorn did not answer /healthz in time")

    def worker_pids(self) -> list[int]:
        if self.process is None:
            return []
        children = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.process.pid:
                children.append(int(entry.name))
        return sorted(children)

    def memory(self) -> dict[int, dict[str, int]]:
        """VmRSS and VmHWM (peak) in bytes, per worker pid."""
        result: dict[int, dict[str, int]] = {}
        for pid in self.worker_pids():
            try:
                lines = Path(f"/proc/{pid}/status").read_text().splitlines()
            except OSError:
                continue
            values = {}
            for line in lines:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    name, amount, _ = line.split()
                    values[name.rstrip(":")] = int(amount) * 1024
            result[pid] = values
        return result

    def cpu_seconds(self) -> float:
        """User + system CPU time of the workers so far (for per-core figures)."""
        total = 0.0
        tick = os.sysconf("SC_CLK_TCK")
        for pid in self.worker_pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick
        return total

    def stop(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
