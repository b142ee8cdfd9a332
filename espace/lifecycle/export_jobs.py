"""Portability as a job (RGPD art. 20): the patient asks, the job worker builds, the patient
downloads with the link's key before it expires.

1. ``request_export`` (HTTP 202 Accepted, RFC 9110 15.3.3): records a ``pending`` export with
   the requester as the policy saw them, draws an X25519 key pair, keeps the public key and the
   SHA-256 of the private key, and hands the private key once, in the download link.
2. ``build_pending_exports`` (``run_due_jobs``: ``mes jobs run`` and the scheduler that
   ``mes serve`` / ``mes worker`` start): one ``Espace.operation`` per export, *as the
   requester* (action ``space.export``): the policy is asked again at build time (a
   representative whose access ended gets nothing) and the archive holds what the requester
   sees. The archive is sealed to the public key (X25519 + HKDF-SHA256 + AES-256-GCM, the
   shape of RFC 9180 DHKEM base mode, not its wire format): the server never holds a key
   that opens a built export. The patient is told it is ready; the link expires
   ``EXPORT_TTL_HOURS`` (default 168) after that. Three failed builds (each traced) mark it
   ``failed`` and the patient is told.
3. ``export_status`` / ``open_export``: the status resource and the download.
4. ``expire_exports``: the archives whose link expired are deleted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import func, select

from espace.clock import as_utc
from espace.errors import AccessDenied, Conflict, DomainError, NotFound
from espace.export import DEFAULT_TTL, build_archive
from espace.lifecycle.common import fmt_day, job_operation
from espace.lifecycle.model import ExportArchive
from espace.models import TraceRecord
from espace.service import Espace, Operation
from espace.trace import Source, Target
from habilitation.model import AccessMode, Action, Actor, ActorKind, AuthenticationMode

log = logging.getLogger("espace.export")

MAX_BUILD_ATTEMPTS = 3
SEALED_V2 = b"\x02"  # X25519 ephemeral key (32) | nonce (12) | AES-256-GCM ciphertext
LEGACY_V1 = b"\x01"  # nonce (12) | AES-256-GCM under the link key (exports built before jobs)


class ExportExpired(DomainError):
    code = "export_expired"


@dataclass(frozen=True, slots=True)
class ExportRequest:
    id: str
    key: str  # url-safe base64 of the X25519 private key; shown once, in the link
    status: str


# --------------------------------------------------------------------------- sealing
def _aad(export_id: str, space_id: str) -> bytes:
    return f"mes-export|{space_id}|{export_id}".encode()


def _derive(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    return HKDF(SHA256(), 32, salt=ephemeral + recipient, info=b"mes-export v2").derive(shared)


def seal(plain: bytes, public_key: bytes, aad: bytes) -> bytes:
    """Encrypt ``plain`` to an X25519 public key (ephemeral-static ECDH, HKDF, AES-256-GCM)."""
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes_raw()
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(public_key))
    nonce = os.urandom(12)
    key = _derive(shared, ephemeral_public, public_key)
    return SEALED_V2 + ephemeral_public + nonce + AESGCM(key).encrypt(nonce, plain, aad)


def unseal(blob: bytes, private_key: bytes, aad: bytes) -> bytes:
    """Decrypt a sealed archive (or a legacy one) with the link's key (raises InvalidTag)."""
    if blob[:1] == LEGACY_V1:
        return AESGCM(private_key).decrypt(blob[1:13], blob[13:], aad)
    recipient = X25519PrivateKey.from_private_bytes(private_key)
    ephemeral_public, nonce = blob[1:33], blob[33:45]
    shared = recipient.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
    key = _derive(shared, ephemeral_public, recipient.public_key().public_bytes_raw())
    return AESGCM(key).decrypt(nonce, blob[45:], aad)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        return b""


# --------------------------------------------------------------------------- the requester
def actor_json(actor: Actor) -> str:
    """The requester, as the job will present them to the policy decision point."""
    return json.dumps(
        {
            "kind": actor.kind.value,
            "id": actor.id,
            "name": actor.name,
            "authentication_mode": actor.authentication_mode.value
            if actor.authentication_mode
            else None,
            "access_mode": actor.access_mode.value,
            "on_behalf_of": actor.on_behalf_of,
            "app_id": actor.app_id,
            "secret_connection": actor.secret_connection,
        }
    )


def actor_from_json(text: str) -> Actor:
    data: dict[str, Any] = json.loads(text)
    mode = data.get("authentication_mode")
    return Actor(
        kind=ActorKind(data["kind"]),
        id=str(data["id"]),
        name=str(data.get("name") or ""),
        authentication_mode=AuthenticationMode(mode) if mode else None,
        access_mode=AccessMode(data.get("access_mode") or AccessMode.NORMAL.value),
        on_behalf_of=data.get("on_behalf_of"),
        app_id=data.get("app_id"),
        secret_connection=bool(data.get("secret_connection")),
    )


def _ttl(espace: Espace) -> timedelta:
    hours = espace.settings.get("EXPORT_TTL_HOURS")
    return timedelta(hours=int(hours)) if hours else DEFAULT_TTL


# --------------------------------------------------------------------------- request
def request_export(op: Operation) -> ExportRequest:
    """Record a pending export of ``op.space`` for ``op.actor`` (one pending at a time)."""
    space = op.space
    assert space is not None
    pending = op.session.execute(
        select(ExportArchive.id).where(
            ExportArchive.space_id == space.id, ExportArchive.status == "pending"
        )
    ).first()
    if pending is not None:
        raise Conflict(f"export {pending[0]} is being prepared", code="export_pending")
    private = X25519PrivateKey.generate()
    raw = private.private_bytes_raw()
    export_id = secrets.token_hex(16)
    op.session.add(
        ExportArchive(
            id=export_id,
            space_id=space.id,
            requested_by=op.actor.id,
            created_at=op.now,
            expires_at=op.now + _ttl(op.espace),  # replaced when the archive is ready
            key_hash=hashlib.sha256(raw).hexdigest(),
            status="pending",
            requester=actor_json(op.actor),
            public_key=private.public_key().public_bytes_raw().hex(),
        )
    )
    op.target = Target("Export", export_id)
    op.detail = {"status": "pending"}
    return ExportRequest(export_id, _b64(raw), "pending")


# --------------------------------------------------------------------------- the job
def _failed_builds(espace: Espace, space_id: str, export_id: str) -> int:
    """Failed or denied builds of this export: the trace is the counter."""
    with espace.session_factory() as session:
        count = session.execute(
            select(func.count(TraceRecord.id)).where(
                TraceRecord.space_key == space_id,
                TraceRecord.event_type == "export.build",
                TraceRecord.target_id == export_id,
                TraceRecord.outcome != "success",
            )
        ).scalar_one()
    return int(count)


def _build(op: Operation, export_id: str) -> bool:
    space = op.space
    assert space is not None
    row = op.session.get(ExportArchive, export_id, with_for_update=True)
    if row is None or row.status != "pending":
        op.detail = {"skipped": True}  # another node built it
        return False
    plain, documents, resources = build_archive(op)
    blob = seal(plain, bytes.fromhex(row.public_key), _aad(row.id, space.id))
    expires = op.now + _ttl(op.espace)
    row.blob, row.size, row.documents, row.resources = blob, len(blob), documents, resources
    row.status, row.ready_at, row.expires_at = "ready", op.now, expires
    op.detail = {"documents": documents, "resources": resources, "size": len(blob)}
    op.notify(
        "export_ready",
        "L'export de votre profil Mon espace santé est prêt. Téléchargez-le depuis votre espace "
        f"avec le lien obtenu lors de la demande, avant le {expires:%d/%m/%Y à %H:%M}.",
        dedup_key=f"export:{export_id}",
    )
    return True


def _give_up(espace: Espace, export_id: str, space_id: str, source: Source) -> None:
    with job_operation(espace, "export", space_id, event_type="export.fail", source=source) as op:
        row = op.session.get(ExportArchive, export_id, with_for_update=True)
        op.target = Target("Export", export_id)
        if row is None or row.status != "pending":
            return
        row.status = "failed"
        op.notify(
            "export_ready",
            f"L'export demandé le {fmt_day(as_utc(row.created_at))} n'a pas pu être préparé. "
            "Vous pouvez le demander à nouveau.",
            dedup_key=f"export_failed:{export_id}",
        )


def build_pending_exports(espace: Espace, *, source: Source | None = None) -> int:
    """Build every pending export (oldest first); returns how many became ready.

    A build that fails or is denied is traced by its operation and retried at the next run;
    after ``MAX_BUILD_ATTEMPTS`` the export is marked failed and the patient is told.
    """
    src = source or Source(face="job")
    with espace.session_factory() as session:
        due = list(
            session.execute(
                select(ExportArchive.id, ExportArchive.space_id, ExportArchive.requester)
                .where(ExportArchive.status == "pending")
                .order_by(ExportArchive.created_at)
            ).all()
        )
    built = 0
    for export_id, space_id, requester in due:
        try:
            actor = actor_from_json(requester)
        except (ValueError, KeyError, TypeError):
            actor = None
        if actor is None or _failed_builds(espace, space_id, export_id) >= MAX_BUILD_ATTEMPTS:
            _give_up(espace, export_id, space_id, src)
            continue
        try:
            with espace.operation(
                actor,
                Action.EXPORT_SPACE,
                event_type="export.build",
                source=src,
                space_id=space_id,
                target=Target("Export", export_id),
            ) as op:
                built += _build(op, export_id)
        except (DomainError, AccessDenied):
            continue  # traced by the operation; retried, then marked failed
        except Exception:  # noqa: BLE001 - one broken export must not stop the others
            log.exception("export %s could not be built", export_id)
    return built


# --------------------------------------------------------------------------- status, download
def _row(op: Operation, export_id: str) -> ExportArchive:
    space = op.space
    assert space is not None
    op.target = Target("Export", export_id)
    row = op.session.execute(
        select(ExportArchive).where(
            ExportArchive.id == export_id, ExportArchive.space_id == space.id
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound("no such export", code="unknown_export")
    return row


def export_status(op: Operation, export_id: str) -> dict[str, Any]:
    """The status resource of an export: pending -> ready (with its expiry) | failed | expired."""
    row = _row(op, export_id)
    status = row.status
    if status == "ready" and (row.blob is None or as_utc(row.expires_at) <= op.now):
        status = "expired"
    out: dict[str, Any] = {
        "id": row.id,
        "status": status,
        "requested_at": as_utc(row.created_at).isoformat(),
        "ready_at": as_utc(row.ready_at).isoformat() if row.ready_at else None,
        "expires_at": as_utc(row.expires_at).isoformat() if status != "pending" else None,
    }
    if status == "ready":
        out.update(size=row.size, documents=row.documents, resources=row.resources)
    return out


def open_export(op: Operation, export_id: str, key: str) -> bytes:
    """Decrypt a ready export of this space with the key of its link.

    Raises ``export_not_ready`` / ``export_failed`` (409), ``export_expired`` (410), and
    ``unknown_export`` (404) for a wrong key, as for a missing export.
    """
    row = _row(op, export_id)
    if row.status == "pending":
        raise Conflict("the export is being prepared", code="export_not_ready")
    if row.status == "failed":
        raise Conflict("the export could not be prepared: ask again", code="export_failed")
    if row.blob is None or as_utc(row.expires_at) <= op.now:
        raise ExportExpired("the download link has expired")
    raw_key = _unb64(key)
    if not hmac.compare_digest(hashlib.sha256(raw_key).hexdigest(), row.key_hash):
        raise NotFound("no such export", code="unknown_export")
    try:
        plain = unseal(row.blob, raw_key, _aad(row.id, row.space_id))
    except (InvalidTag, ValueError) as exc:
        raise NotFound("no such export", code="unknown_export") from exc
    row.downloads += 1
    return plain


def expire_exports(espace: Espace) -> int:
    """Delete the archives whose link expired (scheduled job, one traced operation each)."""
    now = espace.clock.now()
    with espace.session_factory() as session:
        due = session.execute(
            select(ExportArchive.id, ExportArchive.space_id).where(
                ExportArchive.expires_at <= now, ExportArchive.blob.is_not(None)
            )
        ).all()
    for export_id, space_id in due:
        with job_operation(
            espace, "export_expiry", space_id, event_type="export.expire", source=Source(face="job")
        ) as op:
            row = op.session.get(ExportArchive, export_id)
            if row is not None:
                row.blob, row.status = None, "expired"
            op.target = Target("Export", export_id)
    return len(due)
