"""HTTPS listener: real TLS with certificates from the test PKI (TLS 1.2+, ECDHE + AEAD only)."""

from __future__ import annotations

import http.client
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from mes.serve import server_tls_context


@pytest.fixture
def https_port(app: Flask, pki: Any) -> Iterator[int]:
    ctx = server_tls_context(Path(pki.directory), "optional")
    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=ctx)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()


def _client_context(pki: Any) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    ctx.check_hostname = True
    return ctx


def test_healthz_over_tls12_plus(https_port: int, pki: Any) -> None:
    conn = http.client.HTTPSConnection(
        "localhost", https_port, context=_client_context(pki), timeout=10
    )
    conn.connect()
    sock = conn.sock
    assert isinstance(sock, ssl.SSLSocket)
    assert sock.version() in ("TLSv1.2", "TLSv1.3")
    cipher = sock.cipher()
    assert cipher is not None and ("GCM" in cipher[0] or "CHACHA20" in cipher[0])
    conn.request("GET", "/healthz")
    assert conn.getresponse().status == 200
    conn.close()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tls11_is_refused(https_port: int, pki: Any) -> None:
    ctx = _client_context(pki)
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except ssl.SSLError:
        pytest.skip("this OpenSSL cannot even offer TLS 1.1")
    conn = http.client.HTTPSConnection("localhost", https_port, context=ctx, timeout=10)
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        conn.request("GET", "/healthz")
        conn.getresponse()


def test_cbc_only_client_is_refused_on_tls12(https_port: int, pki: Any) -> None:
    ctx = _client_context(pki)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA256:AES128-SHA")
    conn = http.client.HTTPSConnection("localhost", https_port, context=ctx, timeout=10)
    with pytest.raises(ssl.SSLError):
        conn.request("GET", "/healthz")
        conn.getresponse()
