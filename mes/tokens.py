"""OAuth2 bearer tokens (JWT, RS256/ES256) for the patient side, referenced apps and the system.

The issuer and its verification keys are configured (``OAUTH_ISSUER``, ``OAUTH_PUBLIC_KEYS``:
PEM files, one per line); for development and tests a local issuer signs with
``<PKI_DIR>/oauth-issuer-key.pem`` (created on first use) and ``mes token issue`` mints tokens.
Claims (RFC 9068 JWT access token profile): ``iss``, ``sub``, ``aud``, ``exp``, ``iat``,
``jti``, ``scope``, ``client_id`` (apps), and ``mes_kind`` (patient | legal_representative |
protected_adult_representative | app | system | support_agent), ``mes_patient`` (the INS
the caller acts on). Scopes are only an upper bound: the stored consent is re-checked on
every call by the policy decision point.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from habilitation.model import Actor, ActorKind, AuthenticationMode

ALGORITHMS = ["RS256", "ES256"]
_KINDS = {k.value: k for k in ActorKind if k is not ActorKind.PROFESSIONAL}


class TokenError(Exception):
    """The bearer token is missing, malformed, expired or not ours (HTTP 401)."""

    def __init__(self, message: str, *, error: str = "invalid_token") -> None:
        super().__init__(message)
        self.error = error


def _key_path(settings: Mapping[str, Any]) -> Path:
    return Path(str(settings.get("PKI_DIR") or "var/pki")) / "oauth-issuer-key.pem"


def development_private_key(settings: Mapping[str, Any]) -> ec.EllipticCurvePrivateKey:
    """The local issuer's ES256 key, created on first use."""
    path = _key_path(settings)
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pem)
    tmp.chmod(0o600)
    tmp.replace(path)
    return key


def verification_keys(settings: Mapping[str, Any]) -> list[Any]:
    keys: list[Any] = [development_private_key(settings).public_key()]
    for line in str(settings.get("OAUTH_PUBLIC_KEYS") or "").splitlines():
        if line.strip():
            keys.append(serialization.load_pem_public_key(Path(line.strip()).read_bytes()))
    return keys


def issue_token(
    settings: Mapping[str, Any],
    *,
    subject: str,
    kind: ActorKind,
    patient: str | None = None,
    app_id: str | None = None,
    scope: str = "",
    name: str = "",
    ttl_seconds: int = 3600,
    now: float | None = None,
) -> str:
    """Mint an access token with the development issuer (tests, ``mes token issue``)."""
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "iss": settings.get("OAUTH_ISSUER", "http://127.0.0.1:8080"),
        "aud": settings.get("OAUTH_AUDIENCE", "mes-fhir"),
        "sub": subject,
        "iat": issued,
        "nbf": issued - 5,
        "exp": issued + ttl_seconds,
        "jti": uuid.uuid4().hex,
        "scope": scope,
        "mes_kind": kind.value,
    }
    if patient:
        claims["mes_patient"] = patient
    if app_id:
        claims["client_id"] = app_id
    if name:
        claims["name"] = name
    return jwt.encode(claims, development_private_key(settings), algorithm="ES256")


def decode_token(settings: Mapping[str, Any], token: str) -> dict[str, Any]:
    last: Exception | None = None
    for key in verification_keys(settings):
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=settings.get("OAUTH_AUDIENCE", "mes-fhir"),
                issuer=settings.get("OAUTH_ISSUER", "http://127.0.0.1:8080"),
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
                leeway=30,
            )
            return claims
        except jwt.InvalidSignatureError as exc:
            last = exc
            continue
        except jwt.PyJWTError as exc:
            raise TokenError(f"invalid token: {exc}") from exc
    raise TokenError(f"invalid token: {last}")


def actor_from_bearer(settings: Mapping[str, Any], authorization: str | None) -> Actor:
    """Authenticate an ``Authorization: Bearer`` header into an ``Actor`` (RFC 6750)."""
    if not authorization or not authorization.startswith("Bearer "):
        raise TokenError("missing bearer token", error="invalid_request")
    claims = decode_token(settings, authorization[7:].strip())
    kind = _KINDS.get(str(claims.get("mes_kind", "")))
    if kind is None:
        raise TokenError("token does not name a known caller kind")
    patient = claims.get("mes_patient")
    if kind is ActorKind.PATIENT:
        patient = patient or claims["sub"]
    if (
        kind
        in (ActorKind.APP, ActorKind.LEGAL_REPRESENTATIVE, ActorKind.PROTECTED_ADULT_REPRESENTATIVE)
        and not patient
    ):
        raise TokenError("token does not name the patient it acts for")
    mode: AuthenticationMode | None = {
        ActorKind.APP: AuthenticationMode.APP_TOKEN,
        ActorKind.SYSTEM: AuthenticationMode.SYSTEM,
        ActorKind.SUPPORT_AGENT: None,  # back-office login; not a patient login
    }.get(kind, AuthenticationMode.PATIENT_LOGIN)
    return Actor(
        kind=kind,
        id=str(claims["sub"]),
        name=str(claims.get("name", "")),
        authentication_mode=mode,
        on_behalf_of=str(patient) if patient else None,
        app_id=str(claims["client_id"]) if claims.get("client_id") else None,
        software=str(claims.get("client_id", "")) or None,
    )
