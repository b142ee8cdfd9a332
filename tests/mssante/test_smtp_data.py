"""The relay's chunked DATA reader (``MesSMTP.smtp_DATA``) against RFC 5321.

§4.1.1.4 (end of data ``CRLF.CRLF``), §4.5.2 (dot-stuffing), §4.5.3.1.6 (line length, ``500``),
RFC 1870 (``552`` past the size limit), RFC 2920 (commands pipelined after the data). The
reader is checked against a line-by-line reference (aiosmtpd's algorithm) on data split at
every possible place, then end to end over a socket.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.smtp import Envelope, Session

from mssante.smtp_server import DataTooLarge, MesSMTP


def _reference(stream: bytes) -> bytes:
    """aiosmtpd's reading: CRLF lines until a line ``.``; stuffed dots kept."""
    out = []
    for line in stream.split(b"\r\n"):
        if line == b".":
            return b"".join(out)
        out.append(line + b"\r\n")
    raise AssertionError("no end of data")


async def _read(pieces: list[bytes], *, limit: int, size_limit: int | None = None) -> bytes:
    reader = asyncio.StreamReader(limit=limit)
    for piece in pieces:
        reader.feed_data(piece)
    reader.feed_eof()
    smtp = MesSMTP.__new__(MesSMTP)
    smtp._reader = reader
    return await smtp._read_data(size_limit)


STREAMS = [
    b".\r\n",
    b"a\r\n.\r\n",
    b"\r\n\r\n.\r\n",
    b"..\r\n.\r\n",
    b"..x\r\n\r\n..\r\n.y\r\nz.\r\n .\r\n.\r\nQUIT\r\n",
    b"\r.\r\n\r\n.\r\n",
    b"\r\r\n.\r\n",
    b".\r\r\n.\r\n",
    b"\r\r\r\n\r\n.\r\n",
    b"abc\r\n.\r\nMAIL FROM:<a@b>\r\n",
    b"x" * 300 + b"\r\n\r\n.\r\n",
]


@pytest.mark.parametrize("stream", STREAMS)
def test_reader_matches_the_line_reference_at_every_split(stream: bytes) -> None:
    expected = _reference(stream)
    for cut in range(len(stream) + 1):
        pieces = [stream[:cut], stream[cut:]]
        assert asyncio.run(_read(pieces, limit=4)) == expected, cut
        assert asyncio.run(_read(pieces, limit=64 * 1024)) == expected, cut


def test_reader_on_a_large_random_message_in_random_pieces() -> None:
    rng = random.Random(8)
    lines = [
        rng.choice([b"", b".", b"..", b".x", b"\r", b"\r.", b"a" * rng.randrange(1, 999)])
        for _ in range(3000)
    ]
    stream = b"".join(line + b"\r\n" for line in lines) + b".\r\nQUIT\r\n"
    cuts = sorted(rng.sample(range(1, len(stream)), 200))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    for limit in (5, 100, 64 * 1024):
        assert asyncio.run(_read(pieces, limit=limit)) == _reference(stream)


def test_reader_refuses_past_the_size_limit_after_reading_to_the_end() -> None:
    stream = b"a" * 50 + b"\r\n" + b"b" * 50 + b"\r\n.\r\n"
    assert asyncio.run(_read([stream], limit=16, size_limit=104)) == stream[:-3]
    with pytest.raises(DataTooLarge):
        asyncio.run(_read([stream], limit=16, size_limit=103))


@dataclass
class _Recorder:
    contents: list[bytes] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.contents.append(envelope.content)
        return "250 2.0.0 stored"


@pytest.fixture
def server() -> Iterator[tuple[int, _Recorder]]:
    recorder = _Recorder()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: list[asyncio.Server] = []

    def factory() -> MesSMTP:
        return MesSMTP(
            recorder,
            implicit_tls=False,
            data_size_limit=200_000,
            decode_data=False,
            loop=loop,
        )

    def run() -> None:
        asyncio.set_event_loop(loop)
        holder.append(loop.run_until_complete(loop.create_server(factory, "127.0.0.1", 0)))
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    port = holder[0].sockets[0].getsockname()[1]
    yield port, recorder

    async def close() -> None:
        holder[0].close()
        await holder[0].wait_closed()

    asyncio.run_coroutine_threadsafe(close(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def _session(port: int, script: bytes) -> list[str]:
    """Send ``script`` in one write (pipelined) and return the reply lines until QUIT's."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(script)
        received = b""
        while not received.rstrip().endswith(b"Bye") and b"\r\n221" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    return [line for line in received.decode().split("\r\n") if line]


def _envelope(data: bytes) -> bytes:
    return b"HELO t\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n" + data


def test_pipelined_session_stores_the_unstuffed_message(server: tuple[int, _Recorder]) -> None:
    port, recorder = server
    body = os.urandom(60_000).hex().encode()
    lines = [
        b"Subject: t",
        b"",
        b"..leading dot",
        b"..",
        *(body[i : i + 76] for i in range(0, len(body), 76)),
    ]
    data = b"".join(line + b"\r\n" for line in lines)
    replies = _session(port, _envelope(data + b".\r\n") + _envelope(b".\r\n") + b"QUIT\r\n")
    codes = [r[:3] for r in replies]
    assert codes == [
        "220",
        "250",
        "250",
        "250",
        "354",
        "250",
        "250",
        "250",
        "250",
        "354",
        "250",
        "221",
    ]
    assert recorder.contents[0] == data.replace(b"\r\n..", b"\r\n.")
    assert recorder.contents[1] == b""


def test_too_much_data_gets_552_and_the_session_goes_on(server: tuple[int, _Recorder]) -> None:
    port, recorder = server
    big = (b"x" * 998 + b"\r\n") * 250
    replies = _session(port, _envelope(big + b".\r\n") + _envelope(b"ok\r\n.\r\n") + b"QUIT\r\n")
    codes = [r[:3] for r in replies]
    assert "552" in codes and codes[-2:] == ["250", "221"]
    assert recorder.contents == [b"ok\r\n"]


def test_a_line_over_1000_octets_gets_500(server: tuple[int, _Recorder]) -> None:
    port, recorder = server
    replies = _session(port, _envelope(b"y" * 1000 + b"\r\n.\r\n") + b"QUIT\r\n")
    assert any(r.startswith("500") for r in replies)
    assert recorder.contents == []
    replies = _session(port, _envelope(b"y" * 999 + b"\r\n.\r\n") + b"QUIT\r\n")
    assert recorder.contents == [b"y" * 999 + b"\r\n"]
