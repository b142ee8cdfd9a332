"""Probe a TLS listener (HTTPS, or SMTP with STARTTLS) the way a scanner does.

For every protocol version the local OpenSSL can still speak, and for every cipher suite it
knows (``ALL:COMPLEMENTOFALL`` at security level 0, one suite per handshake), try a handshake
and record what the server accepts. The policy (ANSSI "Recommandations de sécurité relatives à
TLS" v1.2, R3/R5/R6; MSSanté "Référentiel #1" §5.2): nothing below TLS 1.2, and only suites
with forward secrecy (ECDHE/DHE) and AEAD on TLS 1.2 (TLS 1.3 suites are all FS + AEAD).

Run: ``python -m security.tlsprobe HOST PORT [--starttls]`` (prints JSON, exit 1 on a finding).
"""

from __future__ import annotations

import json
import smtplib
import socket
import ssl
import sys
import warnings
from dataclasses import asdict, dataclass, field

VERSIONS = {
    "SSLv3": ssl.TLSVersion.SSLv3,
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
ALLOWED_VERSIONS = {"TLSv1.2", "TLSv1.3"}


@dataclass
class ProbeReport:
    host: str
    port: int
    starttls: bool
    #: version -> accepted / refused / untestable (the local OpenSSL cannot offer it)
    versions: dict[str, str] = field(default_factory=dict)
    accepted_tls12_suites: list[str] = field(default_factory=list)
    refused_tls12_suites: int = 0
    untestable_tls12_suites: int = 0
    findings: list[str] = field(default_factory=list)

    @property
    def handshakes(self) -> int:
        tried = sum(1 for v in self.versions.values() if v != "untestable")
        return tried + len(self.accepted_tls12_suites) + self.refused_tls12_suites


def _context(version: ssl.TLSVersion, ciphers: str | None = None) -> ssl.SSLContext | None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with warnings.catch_warnings():  # probing SSLv3/TLS 1.0 is the point here
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = version
            ctx.maximum_version = version
        ctx.set_ciphers(ciphers or "ALL:COMPLEMENTOFALL:@SECLEVEL=0")
    except (ssl.SSLError, ValueError):
        return None
    return ctx


def handshake(
    host: str, port: int, ctx: ssl.SSLContext, *, starttls: bool, timeout: float = 5.0
) -> tuple[str, str] | None:
    """One handshake; (version, cipher) when the server accepts it, None when it refuses."""
    try:
        if starttls:
            with smtplib.SMTP(host, port, timeout=timeout) as smtp:
                smtp.ehlo("probe.test")
                smtp.starttls(context=ctx)
                sock = smtp.sock
                assert isinstance(sock, ssl.SSLSocket)
                cipher = sock.cipher()
                return str(sock.version()), cipher[0] if cipher else ""
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with ctx.wrap_socket(raw, server_hostname=host) as tls:
                cipher = tls.cipher()
                return str(tls.version()), cipher[0] if cipher else ""
    except (ssl.SSLError, ConnectionError, smtplib.SMTPException, OSError):
        return None


def _offerable(version: ssl.TLSVersion) -> bool:
    """Whether the local OpenSSL can even send a ClientHello for ``version``."""
    ctx = _context(version)
    if ctx is None:
        return False
    a, b = socket.socketpair()
    with b, ctx.wrap_socket(a, do_handshake_on_connect=False) as obj:
        obj.setblocking(False)
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            return True
        except ssl.SSLError:
            return False
        return True


def tls12_suites() -> list[dict[str, object]]:
    """Every TLS 1.2-or-older suite the local OpenSSL knows (name, kea, aead)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers("ALL:COMPLEMENTOFALL:@SECLEVEL=0")
    return [dict(c) for c in ctx.get_ciphers() if c["protocol"] != "TLSv1.3"]


def is_strong(suite: dict[str, object]) -> bool:
    kea = str(suite.get("kea") or "")
    return bool(suite.get("aead")) and kea in ("kx-ecdhe", "kx-dhe")


def probe(host: str, port: int, *, starttls: bool = False) -> ProbeReport:
    report = ProbeReport(host, port, starttls)
    for name, version in VERSIONS.items():
        if not _offerable(version):
            report.versions[name] = "untestable"
            continue
        ctx = _context(version)
        assert ctx is not None
        result = handshake(host, port, ctx, starttls=starttls)
        report.versions[name] = "accepted" if result else "refused"
        if result and name not in ALLOWED_VERSIONS:
            report.findings.append(f"protocol {name} accepted")
    for suite in tls12_suites():
        name = str(suite["name"])
        ctx = _context(ssl.TLSVersion.TLSv1_2, f"{name}:@SECLEVEL=0")
        if ctx is None:
            report.untestable_tls12_suites += 1
            continue
        result = handshake(host, port, ctx, starttls=starttls)
        if result is None:
            report.refused_tls12_suites += 1
            continue
        report.accepted_tls12_suites.append(name)
        if not is_strong(suite):
            report.findings.append(f"weak TLS 1.2 suite accepted: {name}")
    return report


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    starttls = "--starttls" in args
    host, port = [a for a in args if a != "--starttls"][:2]
    report = probe(host, int(port), starttls=starttls)
    print(json.dumps({**asdict(report), "handshakes": report.handshakes}, indent=2))
    return 1 if report.findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
