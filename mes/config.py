"""Configuration: defaults, then a mapping, then ``MES_*`` environment variables.

Secrets (document key, trace signing key) come from the environment in production; for
development ``mes init`` writes them to ``var/secrets.json`` (``make run`` does it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEFAULTS: dict[str, Any] = {
    "VAR_DIR": "var",
    "DATABASE_URL": None,  # default: sqlite:///<VAR_DIR>/mes.db
    "DOCUMENT_KEY": None,  # base64 32 bytes (AES-256-GCM)
    "TRACE_SIGNING_KEY": None,  # base64 32 bytes (Ed25519 seed)
    "PKI_DIR": None,  # default: <VAR_DIR>/pki
    "HTTP_HOST": "127.0.0.1",
    "HTTP_PORT": 8080,
    "HTTPS_PORT": 8443,
    "HTTPS_CLIENT_CERT": "optional",  # none | optional | required
    "SMTP_HOST": "127.0.0.1",
    "SMTP_PORT": 2525,
    "SMTP_IMPLICIT_TLS_PORT": None,
    "PUBLIC_BASE_URL": None,  # e.g. https://mes.example.org (WSDL addresses, FHIR links)
    "AFFINITY_DOMAIN": "dmp",  # dmp | connectathon (value sets the registry enforces)
    "VIHF_ALLOW_SHA1": False,  # legacy mode
    "VIHF_CLOCK_SKEW_SECONDS": 300,
    "MAX_REQUEST_BYTES": 64 * 1024 * 1024,
    "MAX_ATTACHMENT_BYTES": 50 * 1024 * 1024,
    "XDS_MAX_QUERY_RESULTS": 500,
    "MAIL_DOMAIN": "patient.mssante.fr",
    "MAIL_TRUST_DOMAINS": "operateur.test.mssante.fr,mssante.fr",
    "MAIL_MAX_MESSAGE_BYTES": 20 * 1024 * 1024,
    "NOTIFY_SMARTHOST": None,  # host:port; unset: e-mails are written under <VAR_DIR>/outbox
    "NOTIFY_FROM": "Mon espace santé <ne-pas-repondre@monespacesante.fr>",
    "DIGEST_HOUR": 18,
    "OAUTH_ISSUER": "http://127.0.0.1:8080",
    "OAUTH_AUDIENCE": "mes-fhir",
    "LOG_JSON": True,
    "PROXY_FIX_HOPS": 0,
}

_BOOL = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def _coerce(default: Any, raw: str) -> Any:
    if isinstance(default, bool):
        return _BOOL.get(raw.strip().lower(), bool(raw))
    if isinstance(default, int):
        return int(raw)
    return raw


def load_settings(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults, then ``var/secrets.json``, then ``overrides``, then ``MES_*`` variables."""
    settings = dict(DEFAULTS)
    if overrides:
        settings.update(overrides)
    for key, value in os.environ.items():
        if key.startswith("MES_"):
            name = key[4:]
            settings[name] = _coerce(DEFAULTS.get(name), value)
    var_dir = Path(settings["VAR_DIR"])
    secrets_file = var_dir / "secrets.json"
    if secrets_file.exists():
        for name, value in json.loads(secrets_file.read_text()).items():
            if settings.get(name) is None:
                settings[name] = value
    if not settings.get("DATABASE_URL"):
        settings["DATABASE_URL"] = f"sqlite:///{(var_dir / 'mes.db').resolve()}"
    if not settings.get("PKI_DIR"):
        settings["PKI_DIR"] = str(var_dir / "pki")
    return settings


def write_dev_secrets(var_dir: Path) -> Path:
    """Create ``var/secrets.json`` with fresh development keys (idempotent)."""
    from espace.crypto import DocumentCipher
    from espace.trace import TraceSigner

    var_dir.mkdir(parents=True, exist_ok=True)
    path = var_dir / "secrets.json"
    if not path.exists():
        path.write_text(
            json.dumps(
                {
                    "DOCUMENT_KEY": DocumentCipher.generate_key(),
                    "TRACE_SIGNING_KEY": TraceSigner.generate_key(),
                },
                indent=2,
            )
        )
        path.chmod(0o600)
    return path
