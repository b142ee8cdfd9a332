"""App pairing: the OAuth2 authorization-code flow with PKCE (RFC 6749 §4.1, RFC 7636 S256).

- ``POST /oauth/authorize``: the patient side approves, with its own bearer token, the pairing
  of ``client_id`` for the purposes named in ``scope`` (read/write per brick). The approval is
  one ``Espace.operation`` (``MANAGE_CONSENTS``): the AppConsent and its Consent resource are
  written and traced; the answer is the RFC 6749 §4.1.2 redirect (or JSON when asked).
- ``POST /oauth/token``: the app exchanges the code and its ``code_verifier`` for an access
  token (``mes.tokens.issue_token``, kind ``app``) naming the patient. Scopes are an upper
  bound only: the PDP re-checks the stored consent on every call.
- ``DELETE /oauth/pairings/<client_id>``: the patient withdraws a pairing (as does a DELETE or
  an ``inactive`` PUT of its Consent).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from espace import fhir_store as store
from espace.clock import as_utc
from espace.errors import AccessDenied, DomainError
from espace.fhir_store import PairingCode
from espace.models import AppConsent, PatientSpace, ReferencedApp, flat, unflat
from espace.service import Espace
from espace.trace import Source, Target, TraceEntry
from fhir_server import pairing
from fhir_server.errors import FhirError
from fhir_server.repository import FhirRepository
from fhir_server.routing import CONSENTS
from habilitation.model import Action, Actor, ActorKind, AuthenticationMode, Decision
from mes.tokens import TokenError, actor_from_bearer, issue_token

CODE_LIFETIME = timedelta(minutes=10)
oauth_bp = Blueprint("oauth", __name__, url_prefix="/oauth")


class OAuthError(Exception):
    """An RFC 6749 §5.2 error: ``error`` code, description, HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.code = f"oauth.{error}"


def _espace() -> Espace:
    espace: Espace = current_app.extensions["espace"]
    return espace


def _source(actor_software: str = "") -> Source:
    return Source("oauth", request.remote_addr or "", g.get("request_id", ""), actor_software)


def _param(name: str) -> str:
    data: dict[str, Any] = request.get_json(silent=True) or {} if request.is_json else {}
    value = request.form.get(name) or request.args.get(name) or data.get(name)
    return str(value) if value is not None else ""


def _patient() -> Actor:
    try:
        actor = actor_from_bearer(current_app.config, request.headers.get("Authorization"))
    except TokenError as exc:
        raise OAuthError(exc.error, str(exc), 401) from exc
    if actor.kind not in (ActorKind.PATIENT, ActorKind.LEGAL_REPRESENTATIVE,
                          ActorKind.PROTECTED_ADULT_REPRESENTATIVE):
        raise OAuthError("access_denied", "only the patient side pairs apps", 403)
    return actor


def challenge_of(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@oauth_bp.post("/authorize")
def authorize() -> Response:
    """The patient approves the pairing (RFC 6749 §4.1.1 request, §4.1.2 response)."""
    actor = _patient()
    client_id, redirect_uri = _param("client_id"), _param("redirect_uri")
    with _espace().session_factory() as session:
        app = session.get(ReferencedApp, client_id)
        if app is None or app.status != "referenced":
            raise OAuthError("invalid_client", "unknown or dereferenced app")
        if redirect_uri not in app.redirect_uris.splitlines():
            raise OAuthError("invalid_request", "redirect_uri is not registered for this app")
    state = _param("state")
    if _param("response_type") != "code":
        return _redirect(redirect_uri, {"error": "unsupported_response_type", "state": state})
    if _param("code_challenge_method") != "S256" or not 43 <= len(_param("code_challenge")) <= 128:
        return _redirect(redirect_uri, {"error": "invalid_request", "state": state,
                                        "error_description": "PKCE S256 is required"})
    purposes = set(_param("scope").split())
    code = secrets.token_urlsafe(32)
    patient = actor.on_behalf_of or actor.id
    with _espace().operation(
        actor, Action.MANAGE_CONSENTS, event_type="oauth.authorize", source=_source(),
        space_ins=patient, target=Target(type="ReferencedApp", id=client_id),
    ) as op:
        repo = FhirRepository(op, base_url="")
        consent_id = pairing.grant(repo, session_app(op.session, client_id), purposes)
        op.detail.update(app=client_id, purposes=sorted(purposes), consent=consent_id)
        op.session.add(PairingCode(
            code_hash=hashlib.sha256(code.encode()).hexdigest(), space_id=repo.space.id,
            app_id=client_id, redirect_uri=redirect_uri, purposes=flat(purposes),
            code_challenge=_param("code_challenge"), consent_id=consent_id,
            created_at=op.now, expires_at=op.now + CODE_LIFETIME,
        ))
    return _redirect(redirect_uri, {"code": code, "state": state})


def session_app(session: Session, app_id: str) -> ReferencedApp:
    app = session.get(ReferencedApp, app_id)
    if app is None:
        raise OAuthError("invalid_client", "unknown app")
    return app


def _redirect(redirect_uri: str, params: dict[str, str]) -> Response:
    query = urlencode({k: v for k, v in params.items() if v})
    location = f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{query}"
    if request.accept_mimetypes.best == "application/json":
        return jsonify(redirect_to=location, **{k: v for k, v in params.items() if v})
    response = Response(status=302)
    response.headers["Location"] = location
    return response


@oauth_bp.post("/token")
def token() -> Response:
    """Exchange the code (RFC 6749 §4.1.3) after checking the PKCE verifier (RFC 7636 §4.6)."""
    if _param("grant_type") != "authorization_code":
        raise OAuthError("unsupported_grant_type", "only authorization_code is supported")
    code, verifier = _param("code"), _param("code_verifier")
    client_id = _param("client_id")
    espace = _espace()
    now = espace.clock.now()
    with espace.session_factory() as session:
        row = session.get(PairingCode, hashlib.sha256(code.encode()).hexdigest())
        if row is None or row.used_at is not None or as_utc(row.expires_at) < now:
            raise OAuthError("invalid_grant", "unknown, used or expired code")
        if row.app_id != client_id or row.redirect_uri != _param("redirect_uri"):
            raise OAuthError("invalid_grant", "client_id or redirect_uri does not match")
        if not verifier or not secrets.compare_digest(challenge_of(verifier), row.code_challenge):
            raise OAuthError("invalid_grant", "PKCE verification failed")
        row.used_at = now
        space_id, purposes = row.space_id, sorted(unflat(row.purposes))
        active = session.execute(select(AppConsent.id).where(
            AppConsent.space_id == space_id, AppConsent.app_id == client_id,
            AppConsent.withdrawn_at.is_(None))).first()
        space = session.get(PatientSpace, space_id)
        session.commit()
    if active is None or space is None:
        raise OAuthError("invalid_grant", "the pairing was withdrawn")
    scope = " ".join(purposes)
    access_token = issue_token(current_app.config, subject=client_id, kind=ActorKind.APP,
                               patient=space.ins, app_id=client_id, scope=scope)
    app_actor = Actor(kind=ActorKind.APP, id=client_id, authentication_mode=AuthenticationMode
                      .APP_TOKEN, on_behalf_of=space.ins, app_id=client_id, software=client_id)
    espace.record(TraceEntry(
        actor=app_actor, action="oauth.token", event_type="oauth.token",
        decision=Decision.permit("pkce_code_exchange", "authorization code and verifier valid"),
        outcome="success", source=_source(client_id), space_id=space_id,
        target=Target(type="ReferencedApp", id=client_id),
    ))
    response = jsonify(access_token=access_token, token_type="Bearer", expires_in=3600,
                       scope=scope, patient=space.ins)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@oauth_bp.delete("/pairings/<client_id>")
def unpair(client_id: str) -> Response:
    """Withdraw a pairing at once (the PDP sees it on the app's next call)."""
    actor = _patient()
    with _espace().operation(
        actor, Action.MANAGE_CONSENTS, event_type="oauth.unpair", source=_source(),
        space_ins=actor.on_behalf_of or actor.id, target=Target(type="ReferencedApp",
                                                                  id=client_id),
    ) as op:
        repo = FhirRepository(op, base_url="")
        found = 0
        for row in op.session.execute(select(store.FhirResourceRow).where(
            store.FhirResourceRow.space_id == repo.space.id,
            store.FhirResourceRow.resource_type == "Consent",
            store.FhirResourceRow.brick == CONSENTS,
            store.FhirResourceRow.deleted.is_(False),
        )).scalars():
            resource = store.resource_of(row)
            if pairing.app_of(resource) == client_id:
                store.remove(op.session, row, writer=repo.writer(), now=op.now)
                found += 1
        for consent in op.session.execute(select(AppConsent).where(
            AppConsent.space_id == repo.space.id, AppConsent.app_id == client_id,
            AppConsent.withdrawn_at.is_(None),
        )).scalars():
            consent.withdrawn_at = op.now
            found += 1
        if not found:
            raise FhirError(404, "not-found", "no pairing with this app", code="no_pairing")
    return Response(status=204)


def _oauth_error(exc: Exception) -> Response:
    if isinstance(exc, OAuthError):
        status, error, text = exc.status, exc.error, exc.description
    elif isinstance(exc, AccessDenied):
        status, error, text = 403, "access_denied", exc.decision.reason
    elif isinstance(exc, FhirError):
        status, error, text = exc.status, "invalid_request", exc.diagnostics
        if exc.status == 403:
            error = "access_denied"
        if exc.status == 404:
            error = "not_found"
    elif isinstance(exc, DomainError):
        status, error, text = 400, "invalid_request", exc.message
    else:
        current_app.logger.exception("OAuth request failed", exc_info=exc)
        status, error, text = 500, "server_error", "internal error"
    response = jsonify(error=error, error_description=text)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    if status == 401:
        response.headers["WWW-Authenticate"] = f'Bearer realm="mes", error="{error}"'
    return response


oauth_bp.register_error_handler(Exception, _oauth_error)


def init_app(app: Flask) -> None:
    app.register_blueprint(oauth_bp)


__all__ = ["challenge_of", "init_app", "oauth_bp"]
