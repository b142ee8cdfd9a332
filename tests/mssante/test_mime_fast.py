"""The fast MIME splitter of ``mssante.mime`` gives what the stdlib feed parser gives.

RFC 2046 §5.1.1 (boundary delimiters, transport padding, preamble and epilogue): every message
here is parsed twice, by the splitter and by ``email.parser.BytesParser`` alone, and the trees
and the resulting :class:`InboundMessage` must be equal.
"""

from __future__ import annotations

import base64
import os
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from typing import Any

import pytest
from mailkit import PATIENT_ADDRESS, SENDER, build_message, xdm_message, xdm_zip

from mssante import mime

DOMAIN = "patient.mssante.fr"


def _stdlib(raw: bytes) -> EmailMessage:
    msg = BytesParser(policy=policy.SMTP).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    return msg


def _shape(msg: Message) -> list[tuple[Any, ...]]:
    shape: list[tuple[Any, ...]] = []
    for part in msg.walk():
        headers = [(k, str(v)) for k, v in part.items()]
        if part.is_multipart():
            shape.append((part.get_content_type(), headers, "multipart"))
        else:
            shape.append((part.get_content_type(), headers, part.get_payload(decode=True)))
    return shape


def _plain(raw: bytes, monkeypatch: pytest.MonkeyPatch) -> Any:
    """parse_message with the splitter switched off (the stdlib parser only)."""

    def irregular(*_: Any, **__: Any) -> Any:
        raise mime._Irregular

    with monkeypatch.context() as m:
        m.setattr(mime, "_entity", irregular)
        return mime.parse_message(raw, domain=DOMAIN)


def _lf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n")


NESTED = (
    b"From: Dr X <" + SENDER.encode() + b">\r\nTo: " + PATIENT_ADDRESS.encode() + b"\r\n"
    b"Subject: nested\r\nMessage-ID: <n1@operateur.test.mssante.fr>\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="outer"\r\n\r\n'
    b"This is the preamble.\r\n"
    b"--outer  \r\n"
    b'Content-Type: multipart/alternative; boundary="inner"\r\n\r\n'
    b"--inner\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
    b"\r\nBonjour \xc3\xa9t\xc3\xa9\r\n--outerX is not a delimiter\r\n\r\n"
    b"--inner\r\nContent-Type: text/html\r\n\r\n<p>Bonjour</p>\r\n"
    b"--inner--\r\ninner epilogue\r\n"
    b"--outer\r\n"
    b'Content-Type: application/pdf; name="a.pdf"\r\n'
    b'Content-Disposition: attachment; filename="a.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\n\r\n"
    + base64.encodebytes(os.urandom(3000)).replace(b"\n", b"\r\n")
    + b"--outer\r\n\r\nno headers in this part\r\n"
    b"--outer--\r\nepilogue\r\n"
)

REGULAR = {
    "xdm": lambda: xdm_message(),
    "xdm_lf": lambda: _lf(xdm_message()),
    "nested": lambda: NESTED,
    "nested_lf": lambda: _lf(NESTED),
    "plain": lambda: build_message(),
    "two_attachments": lambda: build_message(
        attachments=[
            ("a.bin", "application/octet-stream", os.urandom(5000)),
            ("IHE_XDM.ZIP", "application/zip", xdm_zip()),
        ]
    ),
}


@pytest.mark.parametrize("name", sorted(REGULAR))
def test_splitter_tree_equals_the_stdlib_tree(name: str) -> None:
    raw = REGULAR[name]()
    fast, bodies = mime._parse_tree(raw)
    assert bodies, "the regular case must take the fast path"
    assert _shape(fast) == _shape(_stdlib(raw))


@pytest.mark.parametrize("name", sorted(REGULAR))
def test_parse_message_is_the_same_on_both_paths(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = REGULAR[name]()
    assert mime.parse_message(raw, domain=DOMAIN) == _plain(raw, monkeypatch)


def test_base64_attachment_is_decoded_from_the_received_bytes() -> None:
    payload = os.urandom(200_000)
    raw = build_message(attachments=[("a.bin", "application/octet-stream", payload)])
    message = mime.parse_message(raw, domain=DOMAIN)
    assert [a.content for a in message.attachments] == [payload]


IRREGULAR = {
    "no_close_delimiter": NESTED.replace(b"--outer--", b"--outer-x"),
    "lone_cr_before_delimiter": NESTED.replace(b"\r\n--outer\r\n\r\n", b"\r--outer\r\n\r\n"),
    "lone_cr_in_headers": NESTED.replace(b"Subject: nested\r\n", b"Subject: nested\r"),
    "consecutive_delimiters": NESTED.replace(b"--outer  \r\n", b"--outer\r\n--outer\r\n"),
    "no_start_delimiter": NESTED.replace(b"--outer  \r\n", b"--other\r\n").replace(
        b"--outer\r\n", b"--other\r\n"
    ),
    "digest": NESTED.replace(b"multipart/alternative", b"multipart/digest"),
}


@pytest.mark.parametrize("name", sorted(IRREGULAR))
def test_irregular_messages_go_through_the_stdlib_parser(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = IRREGULAR[name]
    tree, bodies = mime._parse_tree(raw)
    assert bodies == {}
    assert _shape(tree) == _shape(_stdlib(raw))
    try:
        expected: Any = _plain(raw, monkeypatch)
    except mime.MimeError as exc:
        with pytest.raises(mime.MimeError) as refused:
            mime.parse_message(raw, domain=DOMAIN)
        assert refused.value.problem == exc.problem
    else:
        assert mime.parse_message(raw, domain=DOMAIN) == expected


def test_reports_keep_their_inner_structure() -> None:
    raw = mime.render_dsn(
        dsn_id="d1@patient.mssante.fr",
        reporting="mailer-daemon@patient.mssante.fr",
        to=SENDER,
        original_id="o1@patient.mssante.fr",
        recipient=PATIENT_ADDRESS,
        status="5.1.1",
        diagnostic="550 5.1.1 unknown",
    )
    fast, bodies = mime._parse_tree(raw)
    assert bodies
    assert _shape(fast) == _shape(_stdlib(raw))
    message = mime.parse_message(raw, domain=DOMAIN)
    assert message.report_type == "delivery-status"
    assert message.report_status == "failed"
    assert message.report_original_message_id == "o1@patient.mssante.fr"
