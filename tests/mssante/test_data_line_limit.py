"""The DATA line-length check (RFC 5321 §4.5.3.1.6) agrees with splitting the message."""

from __future__ import annotations

import base64
import random

import pytest

from mssante.smtp_server import DATA_LINE_LIMIT, has_long_line

LONGEST = DATA_LINE_LIMIT - 2  # bytes before the CRLF (aiosmtpd's limit, RFC 5321 4.5.3.1.6)


def _split_check(data: bytes, max_length: int) -> bool:
    return bool(data) and max(map(len, data.split(b"\r\n"))) > max_length


def test_the_fast_check_agrees_with_the_split_on_random_messages() -> None:
    rng = random.Random(2026)
    for _ in range(5000):
        data = b"".join(
            bytes(rng.choice(b"ab\r\n") for _ in range(rng.choice([0, 1, 3, 9, 40, 90])))
            for _ in range(rng.randint(0, 6))
        )
        for max_length in (1, 2, 3, 4, 7, 10, 33, LONGEST):
            assert has_long_line(data, max_length) == _split_check(data, max_length), (
                data, max_length)


@pytest.mark.parametrize("extra", [0, 1, 500])
def test_a_long_line_anywhere_in_a_large_message_is_found(extra: int) -> None:
    body = base64.encodebytes(bytes(range(256)) * 3000).replace(b"\n", b"\r\n")
    at = len(body) // 2 - (len(body) // 2) % 78  # at a line start
    line = b"x" * (LONGEST + extra)
    data = body[:at] + line + b"\r\n" + body[at:]
    assert has_long_line(data) is (extra > 0)
    assert has_long_line(body + b"y" * (LONGEST + extra)) is (extra > 0)  # the last line
    assert has_long_line(b"y" * (LONGEST + extra) + b"\r\n" + body) is (extra > 0)  # the first
