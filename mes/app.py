"""The Flask application factory: every HTTP face on one WSGI app.

Faces register themselves with ``init_app(app)`` (Flask's extension pattern); each face has
one error handler and one enforcement point. ``/healthz``, ``/readyz`` and ``/metrics`` are
process endpoints.
"""

from __future__ import annotations

import importlib
import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, g, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from sqlalchemy import text
from werkzeug.middleware.proxy_fix import ProxyFix

from espace.clock import Clock
from espace.service import Espace
from mes.config import load_settings
from mes.wiring import build_espace

FACES = ("xds.web", "fhir_server.web", "mssante.web", "patient_api.web")

REQUESTS = Counter("mes_http_requests_total", "HTTP requests", ["face", "status"])
LATENCY = Histogram("mes_http_request_seconds", "HTTP request latency", ["face"])

log = logging.getLogger("mes.http")


def create_app(
    config: Mapping[str, Any] | None = None,
    *,
    espace: Espace | None = None,
    clock: Clock | None = None,
) -> Flask:
    """Create the WSGI application. ``config`` overrides defaults; ``MES_*`` env applies last."""
    app = Flask("mes")
    settings = load_settings(config)
    app.config.from_mapping(settings)
    if settings.get("PROXY_FIX_HOPS"):
        hops = int(settings["PROXY_FIX_HOPS"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    app.config["MAX_CONTENT_LENGTH"] = int(settings["MAX_REQUEST_BYTES"])
    app.extensions["espace"] = espace or build_espace(settings, clock=clock)

    @app.before_request
    def _start() -> None:
        g.request_id = request.headers.get("X-Request-ID") or uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.before_request
    def _refuse_nul_in_json_apis() -> Any:
        """Refuse NUL characters in the JSON APIs (400): no text column can store them
        (PostgreSQL rejects them), so they are bad input, not a server error."""
        if not request.path.startswith("/api/"):
            return None
        body = request.get_data(cache=True) if request.content_length else b""
        if (
            "\x00" in request.path
            or b"%00" in request.query_string
            or b"\x00" in body
            or b"\\u0000" in body
        ):
            return jsonify(error="invalid_input", detail="NUL characters are refused"), 400
        return None

    @app.after_request
    def _finish(response: Response) -> Response:
        face = (request.blueprint or "process").split(".")[0]
        REQUESTS.labels(face, str(response.status_code)).inc()
        LATENCY.labels(face).observe(time.perf_counter() - g.get("started", time.perf_counter()))
        response.headers["X-Request-ID"] = g.get("request_id", "")
        return response

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify(status="ok")

    @app.get("/readyz")
    def readyz() -> Any:
        try:
            with get_espace(app).session_factory() as session:
                session.execute(text("SELECT 1"))
        except Exception as exc:  # readiness reports, it does not crash
            return jsonify(status="unavailable", error=type(exc).__name__), 503
        return jsonify(status="ready")

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)

    for name in FACES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and name.startswith(exc.name):
                continue  # face not built in this distribution
            raise
        module.init_app(app)
    return app


def get_espace(app: Flask) -> Espace:
    espace: Espace = app.extensions["espace"]
    return espace
