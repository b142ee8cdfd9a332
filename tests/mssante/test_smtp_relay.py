"""The relay's transport and envelope rules: STARTTLS, client certificates, trust space,
recipients, size, malformed or foreign content, idempotent delivery (real SMTP on loopback)."""

from __future__ import annotations

import smtplib
import ssl
import warnings
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from mailkit import (
    CSE_MDE,
    OTHER_INS,
    PATIENT_ADDRESS,
    PATIENT_INS,
    SENDER,
    SENDER_ID,
    build_message,
    cda,
    client_context,
    send,
    xdm_message,
    xdm_zip,
)
from sqlalchemy import func, select, update

from espace.admin import link_professional
from espace.mailbox import MailAttachment, MailMessage
from espace.models import NotificationOutbox, PatientSpace, TraceRecord
from espace.service import Espace
from mes.pki import CertificateProfile, issue_test_certificate


def stored(espace: Espace) -> int:
    with espace.session_factory() as session:
        return int(session.execute(select(func.count(MailMessage.id))).scalar_one())


def test_delivery_is_stored_traced_and_notified(relay: Any, pki: Any, espace: Espace) -> None:
    assert send(relay.port, pki, xdm_message()) == {}
    with espace.session_factory() as session:
        row = session.execute(select(MailMessage)).scalar_one()
        assert row.x_mss == {"X-MSS-CODECDA": "11490-0", "X-MSS-INS": "O", "X-MSS-NIL": "DEV935997"}
        trace = session.execute(
            select(TraceRecord).where(TraceRecord.event_type == "smtp.deliver")
        ).scalar_one()
        assert (trace.decision, trace.rule_id, trace.actor_id) == (
            "permit",
            "mail_delivery",
            SENDER_ID,
        )
        categories = set(session.execute(select(NotificationOutbox.category)).scalars())
    assert "new_message" in categories


def test_the_message_is_stored_once_as_its_decoded_parts(
    relay: Any, pki: Any, espace: Espace
) -> None:
    """Data minimisation: the body and the attachments are kept (encrypted), not a second copy
    of the whole message as received."""
    raw = xdm_message()
    assert send(relay.port, pki, raw) == {}
    with espace.session_factory() as session:
        row = session.execute(select(MailMessage)).scalar_one()
        attachments = list(session.execute(select(MailAttachment)).scalars())
    assert row.raw_encrypted is None
    assert row.size >= len(raw) - 10  # the size received is kept
    assert [a.filename for a in attachments] == ["IHE_XDM.ZIP"]
    stored = len(row.body_encrypted or b"") + sum(len(a.encrypted) for a in attachments)
    assert stored < 1.1 * len(raw)  # was ~2x: the raw copy and the decoded attachments


def test_starttls_is_required_before_mail(relay: Any) -> None:
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        code, _ = client.mail(SENDER)
    assert code == 530


def test_size_is_announced_and_enforced(
    relay: Any, pki: Any, mail_settings: dict[str, Any], espace: Espace
) -> None:
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=10) as client:
        client.starttls(context=client_context(pki))
        client.ehlo()
        assert int(client.esmtp_features["size"]) == mail_settings.get(
            "MAIL_MAX_MESSAGE_BYTES", 20 * 1024 * 1024
        )
        code, _ = client.mail(SENDER, ["SIZE=999999999"])
    assert code == 552
    assert stored(espace) == 0


def test_client_certificate_is_required(relay: Any, pki: Any) -> None:
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=10) as client:
        client.starttls(context=client_context(pki, cert=False))
        client.ehlo()
        code, message = client.mail(SENDER)
    assert code == 530 and b"5.7.1" in message


def test_certificate_of_another_ca_fails_the_handshake(
    relay: Any, pki: Any, espace: Espace
) -> None:
    ctx = client_context(
        pki, cert_path=pki.untrusted_signing_cert, key_path=pki.untrusted_signing_key
    )
    with pytest.raises((ssl.SSLError, smtplib.SMTPServerDisconnected, ConnectionError)):
        send(relay.port, pki, build_message(), ctx=ctx)
    assert stored(espace) == 0


def test_operator_certificate_outside_trust_space_is_refused(
    relay: Any, pki: Any, tmp_path: Any
) -> None:
    cert, key = issue_test_certificate(
        pki.ca_cert.read_bytes(),
        pki.ca_key.read_bytes(),
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relay.example.org")]),
        profile=CertificateProfile.TLS_CLIENT,
        dns_names=("relay.example.org",),
    )
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "k.pem").write_bytes(key)
    ctx = client_context(pki, cert_path=tmp_path / "c.pem", key_path=tmp_path / "k.pem")
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        send(relay.port, pki, build_message(), ctx=ctx)
    assert refused.value.smtp_code == 550


def test_tls_below_1_2_and_non_ecdhe_suites_are_refused(relay: Any, pki: Any) -> None:
    old = client_context(pki)
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    rsa_kx = client_context(pki)
    rsa_kx.maximum_version = ssl.TLSVersion.TLSv1_2
    rsa_kx.set_ciphers("AES256-GCM-SHA384:AES128-GCM-SHA256")  # RSA key exchange, no ECDHE
    for ctx in (old, rsa_kx):
        with smtplib.SMTP("127.0.0.1", relay.port, timeout=10) as client:
            with pytest.raises((ssl.SSLError, smtplib.SMTPServerDisconnected, ConnectionError)):
                client.starttls(context=ctx)


@pytest.mark.parametrize(
    ("rcpt", "code", "enhanced"),
    [
        (f"{OTHER_INS}@patient.mssante.fr", 550, b"5.1.1"),  # no space for this INS
        ("12345@patient.mssante.fr", 553, b"5.1.3"),  # not a matricule INS
        (f"{PATIENT_INS}@example.org", 550, b"5.7.1"),  # not ours: no relaying
    ],
)
def test_bad_recipients_are_refused(
    relay: Any, pki: Any, espace: Espace, rcpt: str, code: int, enhanced: bytes
) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send(relay.port, pki, build_message(to=rcpt), rcpts=[rcpt])
    got_code, got_text = refused.value.recipients[rcpt]
    assert got_code == code and got_text.startswith(enhanced)
    assert stored(espace) == 0


@pytest.mark.parametrize("status", ["opposed", "closed"])
def test_opposed_or_closed_space_is_refused(
    relay: Any, pki: Any, espace: Espace, status: str
) -> None:
    with espace.session_factory() as session:
        session.execute(update(PatientSpace).values(status=status))
        session.commit()
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send(relay.port, pki, build_message())
    assert refused.value.recipients[PATIENT_ADDRESS][0] == 550
    assert refused.value.recipients[PATIENT_ADDRESS][1].startswith(b"5.2.1")
    with espace.session_factory() as session:
        traced = session.execute(select(TraceRecord.error_code, TraceRecord.actor_id)).all()
    assert ("space_not_active", SENDER) in traced
    assert stored(espace) == 0


def test_one_bad_recipient_does_not_stop_the_good_one(relay: Any, pki: Any, espace: Espace) -> None:
    bad = f"{OTHER_INS}@patient.mssante.fr"
    refused = send(relay.port, pki, build_message(), rcpts=[PATIENT_ADDRESS, bad])
    assert set(refused) == {bad}
    assert stored(espace) == 1


def test_professional_blocked_by_the_patient_cannot_deliver(
    relay: Any, pki: Any, espace: Espace
) -> None:
    with espace.session_factory() as session:
        space = session.execute(select(PatientSpace)).scalar_one()
        link_professional(
            session, space, SENDER_ID, "blocked", declared_by=PATIENT_INS, now=espace.clock.now()
        )
        session.commit()
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(relay.port, pki, build_message())
    assert refused.value.smtp_code == 550 and b"blocked_professional" in refused.value.smtp_error
    assert stored(espace) == 0


def test_from_header_outside_trust_space_is_refused(relay: Any, pki: Any, espace: Espace) -> None:
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(relay.port, pki, build_message(sender="doctor@gmail.com"))
    assert refused.value.smtp_code == 550
    assert stored(espace) == 0


@pytest.mark.parametrize(
    ("raw_factory", "problem"),
    [
        (lambda: build_message(headers={"X-MSS-MES": "STOP"}), b"mime_bad_x_mss_header"),
        (lambda: xdm_message(archive=b"PK\x03\x04 not a zip"), b"xdm_not_a_zip"),
        (lambda: xdm_message(archive=xdm_zip(meta={"hash": "0" * 40})), b"xdm_hash_mismatch"),
        (lambda: xdm_message(archive=xdm_zip(meta={"size": "12"})), b"xdm_size_mismatch"),
    ],
)
def test_malformed_content_gets_5xx_and_nothing_is_stored(
    relay: Any, pki: Any, espace: Espace, raw_factory: Any, problem: bytes
) -> None:
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(relay.port, pki, raw_factory())
    assert refused.value.smtp_code == 554 and problem in refused.value.smtp_error
    assert stored(espace) == 0
    with espace.session_factory() as session:
        codes = set(session.execute(select(TraceRecord.error_code)).scalars())
    assert problem.decode() in codes


def test_xdm_of_another_patient_is_refused_with_ans_904(
    relay: Any, pki: Any, espace: Espace
) -> None:
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(relay.port, pki, xdm_message(archive=xdm_zip(patient_ins=OTHER_INS)))
    assert refused.value.smtp_code == 550 and b"[904]" in refused.value.smtp_error
    # the CDA's recordTarget names someone else (the XDM metadata names our patient)
    with pytest.raises(smtplib.SMTPDataError) as refused_cda:
        send(relay.port, pki, xdm_message(archive=xdm_zip(cda(CSE_MDE))))
    assert b"[904]" in refused_cda.value.smtp_error
    assert stored(espace) == 0


def test_a_retried_message_is_not_stored_twice(relay: Any, pki: Any, espace: Espace) -> None:
    raw = build_message(message_id="<retry-1@operateur.test.mssante.fr>")
    assert send(relay.port, pki, raw) == {}
    assert send(relay.port, pki, raw) == {}
    assert stored(espace) == 1


def test_implicit_tls_port(
    espace: Espace, mail_settings: dict[str, Any], space: Any, pki: Any
) -> None:
    from mssante.smtp_server import start_smtp

    handle = start_smtp(espace, {**mail_settings, "SMTP_IMPLICIT_TLS_PORT": 0})
    try:
        assert handle.implicit_tls_port
        with smtplib.SMTP_SSL(
            "127.0.0.1", handle.implicit_tls_port, timeout=10, context=client_context(pki)
        ) as client:
            assert client.sendmail(SENDER, [PATIENT_ADDRESS], build_message()) == {}
    finally:
        handle.stop()
    assert stored(espace) == 1


def test_bare_cda_attachment_of_another_patient_is_refused(
    relay: Any, pki: Any, espace: Espace
) -> None:
    raw = build_message(attachments=[("cse.xml", "text/xml", cda(CSE_MDE))])
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(relay.port, pki, raw)
    assert b"[904]" in refused.value.smtp_error
    assert stored(espace) == 0


def test_partial_failure_is_accepted_with_a_dsn_for_the_other_recipient(
    relay: Any,
    pki: Any,
    espace: Espace,
) -> None:
    from espace.admin import register_space
    from espace.mailbox import MailOutbound, outbound_bytes

    with espace.session_factory() as session:
        register_space(session, ins=OTHER_INS, now=espace.clock.now())
        session.commit()
    other = f"{OTHER_INS}@patient.mssante.fr"
    assert (
        send(
            relay.port,
            pki,
            xdm_message(to=f"{PATIENT_ADDRESS}, {other}"),
            rcpts=[PATIENT_ADDRESS, other],
        )
        == {}
    )
    assert stored(espace) == 1  # the XDM names PATIENT_INS: the other mailbox refused (904)
    with espace.session_factory() as session:
        dsn = session.execute(select(MailOutbound)).scalar_one()
        raw = outbound_bytes(espace.cipher, dsn)
    assert dsn.kind == "dsn" and dsn.rcpt_to == SENDER and dsn.mail_from == ""
    assert b"report-type=delivery-status" in raw and b"Action: failed" in raw
    assert other.encode() in raw and b"904" in raw


def test_a_receipt_for_an_unknown_message_is_accepted_and_dropped(
    relay: Any, pki: Any, espace: Espace
) -> None:
    report = (
        f"From: {SENDER}\r\nTo: {PATIENT_ADDRESS}\r\nSubject: MDN\r\n"
        "Message-ID: <mdn-x@operateur.test.mssante.fr>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=disposition-notification; boundary="b"'
        "\r\n\r\n--b\r\nContent-Type: message/disposition-notification\r\n\r\n"
        "Original-Message-ID: <never-sent@patient.mssante.fr>\r\n"
        "Disposition: manual-action/MDN-sent-manually; displayed\r\n--b--\r\n"
    ).encode()
    assert send(relay.port, pki, report) == {}
    assert stored(espace) == 0
