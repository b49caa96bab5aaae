"""COMPRESS=DEFLATE (RFC 4978) and the UTF8 APPEND data extension (RFC 6855 §4): the codec, the
server connection's bound on inflated input, the command grammar both ways."""

from __future__ import annotations

import asyncio
import zlib

import pytest

from harness.protocol.imap.command_format import format_command
from harness.protocol.imap.commands import (
    Append,
    Command,
    CommandReader,
    Compress,
    InvalidCommand,
    NeedContinuation,
    parse_command,
)
from harness.protocol.imap.deflate import DeflateError, Deflater, Inflater
from reference_agents.imapd import connection
from reference_agents.imapd.connection import Connection


def test_deflater_writes_raw_deflate_readable_by_zlib_alone() -> None:
    deflater = Deflater()
    first = deflater.compress(b"* OK one\r\n")
    second = deflater.compress(b"A1 OK two\r\n")
    # Raw DEFLATE (negative window bits): no zlib header, every piece ends with a full flush
    # (the empty stored block 00 00 ff ff), so each piece inflates on its own.
    assert first[:2] != b"\x78\x9c" and first.endswith(b"\x00\x00\xff\xff")
    z = zlib.decompressobj(-15)
    assert z.decompress(first) == b"* OK one\r\n"
    assert z.decompress(second) == b"A1 OK two\r\n"
    # Full flush: the second piece needs no dictionary from the first.
    assert zlib.decompressobj(-15).decompress(second) == b"A1 OK two\r\n"


def test_inflater_round_trip_fed_byte_by_byte() -> None:
    data = Deflater().compress(b"A1 NOOP\r\n" * 50)
    inflater = Inflater()
    out = bytearray()
    for i in range(len(data)):
        inflater.feed(data[i:i + 1])
        out += inflater.take(1 << 20)
    assert bytes(out) == b"A1 NOOP\r\n" * 50
    assert inflater.pending == 0


def test_inflater_takes_bounded_pieces_of_a_bomb() -> None:
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = bomb.compress(b"\0" * 20_000_000) + bomb.flush(zlib.Z_SYNC_FLUSH)
    assert len(data) < 100_000
    inflater = Inflater()
    inflater.feed(data)
    piece = inflater.take(4096)
    assert len(piece) == 4096
    assert inflater.pending > 0


@pytest.mark.parametrize("wrapped", [
    zlib.compressobj(6, zlib.DEFLATED, 15),   # zlib header (RFC 1950)
    zlib.compressobj(6, zlib.DEFLATED, 31),   # gzip header (RFC 1952)
])
def test_inflater_refuses_a_wrapped_stream(wrapped: object) -> None:
    assert hasattr(wrapped, "compress") and hasattr(wrapped, "flush")
    data = wrapped.compress(b"A1 NOOP\r\n") + wrapped.flush(zlib.Z_SYNC_FLUSH)  # type: ignore[attr-defined]
    inflater = Inflater()
    inflater.feed(data)
    with pytest.raises(DeflateError):
        inflater.take(1024)


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.paused = False
        self.written = bytearray()

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default


def _connection() -> tuple[Connection, _Transport]:
    conn = Connection(lambda c: None)
    transport = _Transport()
    conn.connection_made(transport)
    return conn, transport


def test_server_connection_inflates_at_most_its_high_water_per_read() -> None:
    async def scenario() -> None:
        conn, transport = _connection()
        conn.start_compression()
        bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
        conn.data_received(bomb.compress(b"x" * 5_000_000) + bomb.flush(zlib.Z_SYNC_FLUSH))
        limit = connection._HIGH_WATER + 1
        assert len(conn._inbox) <= limit
        assert transport.paused
        total = 0
        for _ in range(3):
            piece = conn.take()
            assert 0 < len(piece) <= limit
            total += len(piece)
        assert total <= 3 * limit

    asyncio.run(scenario())


def test_server_connection_compresses_after_start_and_reads_compressed() -> None:
    async def scenario() -> None:
        conn, transport = _connection()
        conn.write(b"A1 OK DEFLATE active\r\n")
        conn.start_compression()
        conn.write(b"* OK compressed\r\n")
        assert transport.written.startswith(b"A1 OK DEFLATE active\r\n")
        tail = bytes(transport.written[len(b"A1 OK DEFLATE active\r\n"):])
        assert zlib.decompressobj(-15).decompress(tail) == b"* OK compressed\r\n"
        conn.data_received(Deflater().compress(b"A2 NOOP\r\n"))
        assert conn.take() == b"A2 NOOP\r\n"

    asyncio.run(scenario())


def test_server_connection_ends_on_data_that_is_not_deflate() -> None:
    async def scenario() -> None:
        conn, _ = _connection()
        conn.start_compression()
        conn.abort = lambda: None  # type: ignore[method-assign]
        conn.data_received(b"A2 NOOP\r\n")
        assert conn.eof and conn.take() == b""

    asyncio.run(scenario())


@pytest.mark.parametrize(("wire", "command"), [
    (b"A1 COMPRESS DEFLATE\r\n", Command("A1", "COMPRESS", Compress("DEFLATE"))),
    (b"A1 compress deflate\r\n", Command("A1", "COMPRESS", Compress("DEFLATE"))),
    (b"A1 COMPRESS X-NONE\r\n", Command("A1", "COMPRESS", Compress("X-NONE"))),
    (b"A2 APPEND INBOX UTF8 (~{5}\r\nab\xc3\xa9c)\r\n",
     Command("A2", "APPEND", Append("INBOX", (), None, b"ab\xc3\xa9c", utf8=True))),
    (b"A2 APPEND INBOX (\\Seen) utf8 (~{2}\r\nab)\r\n",
     Command("A2", "APPEND", Append("INBOX", ("\\Seen",), None, b"ab", utf8=True))),
])
def test_commands_parse_and_format_back(wire: bytes, command: Command) -> None:
    assert parse_command(wire) == command
    assert parse_command(b"".join(format_command(command))) == command


@pytest.mark.parametrize("wire", [
    b"A1 COMPRESS\r\n",
    b"A2 APPEND INBOX UTF8 ({2}\r\nab)\r\n",    # RFC 6855 §4: a literal8, not a literal
    b"A2 APPEND INBOX UTF8 (~{2}\r\nab\r\n",    # no closing parenthesis
    b"A2 APPEND INBOX UTF8 ~{2}\r\nab\r\n",     # no parenthesis at all
])
def test_malformed_commands_are_invalid(wire: bytes) -> None:
    assert isinstance(parse_command(wire), InvalidCommand)


def test_reader_asks_for_the_utf8_literal8() -> None:
    reader = CommandReader()
    reader.feed(b"A3 APPEND x UTF8 (~{3}\r\n")
    assert reader.next_event() == NeedContinuation(3)
    reader.feed(b"abc)\r\n")
    assert reader.next_event() == Command("A3", "APPEND", Append("x", (), None, b"abc", utf8=True))
