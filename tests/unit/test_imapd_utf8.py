"""The reference IMAP server's UTF8=ACCEPT (RFC 6855) and COMPRESS=DEFLATE (RFC 4978), over real
sockets with zlib and hand-written octets; the surrogate header of a legacy session."""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterator

import pytest

from reference_agents.config import ProviderConfig
from reference_agents.imapd.utf8 import downgrade_header, has_8bit_header
from reference_agents.tls import TLSMaterial
from tests.unit.test_imapd import Running, _raw_login, serving
from tests.unit.test_imapd import base_config as imapd_config  # noqa: F401 - the fixture


@pytest.fixture
def srv(imapd_config: tuple[ProviderConfig, TLSMaterial]) -> Iterator[Running]:  # noqa: F811
    with serving(imapd_config) as running:
        yield running


UTF8_MESSAGE = ("From: Jörg <joerg@example.org>\r\nSubject: Grüße\r\n\r\nbody\r\n").encode()


def _ask_status(c: object, tag: bytes, command: bytes) -> list[bytes]:
    assert hasattr(c, "send") and hasattr(c, "until_tagged")
    c.send(tag + b" " + command + b"\r\n")
    lines: list[bytes] = c.until_tagged(tag)
    return lines


def test_enable_utf8_accept_and_utf8_names(srv: Running) -> None:
    c = _raw_login(srv)
    lines = _ask_status(c, b"e", b"ENABLE UTF8=ACCEPT")
    assert b"* ENABLED UTF8=ACCEPT" in lines and lines[-1].startswith(b"e OK")
    assert _ask_status(c, b"f", 'CREATE "Grüße"'.encode())[-1].startswith(b"f OK")
    listed = _ask_status(c, b"g", b'LIST "" "Gr*"')
    assert any(line.endswith('"Grüße"'.encode()) or line.endswith("Grüße".encode()) for line in listed)
    # Malformed UTF-8 in a quoted string: BAD (RFC 6855 §3), and the session goes on.
    assert _ask_status(c, b"h", b'CREATE "x\xc3("')[-1].startswith(b"h BAD")
    # A CHARSET after ENABLE UTF8=ACCEPT: BAD (RFC 6855 §3).
    _ask_status(c, b"i", b"SELECT INBOX")
    assert _ask_status(c, b"j", b"SEARCH CHARSET UTF-8 ALL")[-1].startswith(b"j BAD")
    c.close()


def test_legacy_session_sees_mutf7_and_may_not_append_8bit_headers(srv: Running) -> None:
    srv.store.create_mailbox("alice", "Grüße")
    c = _raw_login(srv)
    listed = _ask_status(c, b"e", b'LIST "" "Gr*"')
    assert any(line.endswith(b"Gr&APwA3w-e") for line in listed), listed
    c.send(b"f APPEND INBOX {%d}\r\n" % len(UTF8_MESSAGE))
    assert c.line().startswith(b"+")
    c.send(UTF8_MESSAGE + b"\r\n")
    assert c.until_tagged(b"f")[-1].startswith(b"f NO")
    c.close()


def test_utf8_append_and_legacy_envelope(srv: Running) -> None:
    c = _raw_login(srv)
    _ask_status(c, b"e", b"ENABLE UTF8=ACCEPT")
    c.send(b"f APPEND INBOX UTF8 (~{%d}\r\n" % len(UTF8_MESSAGE))
    assert c.line().startswith(b"+")
    c.send(UTF8_MESSAGE + b")\r\n")
    assert c.until_tagged(b"f")[-1].startswith(b"f OK")
    c.close()
    legacy = _raw_login(srv)
    _ask_status(legacy, b"g", b"SELECT INBOX")
    legacy.send(b"h FETCH 2 (ENVELOPE)\r\n")
    lines = legacy.until_tagged(b"h")
    joined = b"\r\n".join(lines)
    assert all(b < 0x80 for b in joined), joined
    assert b'"=?UTF-8?B?' + base64.b64encode("Grüße".encode()) + b'?="' in joined
    legacy.close()


def test_compress_deflate_over_a_socket(srv: Running) -> None:
    c = _raw_login(srv)
    lines = _ask_status(c, b"e", b"COMPRESS DEFLATE")
    assert lines[-1].startswith(b"e OK")
    assert c.buf == b""
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    inflate = zlib.decompressobj(-15)
    c.send(deflate.compress(b"f NOOP\r\ng COMPRESS DEFLATE\r\nh COMPRESS X\r\n")
           + deflate.flush(zlib.Z_SYNC_FLUSH))
    text = b""
    while text.count(b"\r\n") < 3:
        chunk = c.sock.recv(65536)
        assert chunk
        text += inflate.decompress(chunk)
    assert text.startswith(b"f OK")
    assert b"g NO [COMPRESSIONACTIVE]" in text
    assert b"h BAD" in text
    c.close()


@pytest.mark.parametrize(("header", "expected"), [
    (b"Subject: plain\r\n", b"Subject: plain\r\n"),
    ("Subject: Grüße aus Köln\r\n".encode(),
     b"Subject: =?UTF-8?B?R3LDvMOfZQ==?= aus =?UTF-8?B?S8O2bG4=?=\r\n"),
    ('From: "Jörg Müller" <j@example.org>\r\n'.encode(),
     b"From: =?UTF-8?B?SsO2cmcgTcO8bGxlcg==?= <j@example.org>\r\n"),
    ("To: Jörg <jö@example.org>\r\n".encode(),
     b"To: =?UTF-8?B?SsO2cmc=?= <=?UTF-8?B?asO2?=@example.org>\r\n"),
    (b"Subject: caf\xe9\r\n", b"Subject: =?UNKNOWN-8BIT?B?Y2Fm6Q==?=\r\n"),
    # A folded field keeps its folding.
    ("Subject: a\r\n Grüße\r\n".encode(), b"Subject: a\r\n =?UTF-8?B?R3LDvMOfZQ==?=\r\n"),
])
def test_downgrade_header(header: bytes, expected: bytes) -> None:
    assert downgrade_header(header) == expected


def test_downgrade_header_cuts_long_runs_into_short_encoded_words() -> None:
    out = downgrade_header(("Subject: " + "ü" * 100 + "\r\n").encode())
    words = out[len(b"Subject: "):-2].split(b" ")
    assert len(words) > 1 and all(len(w) <= 75 for w in words)
    assert b"".join(base64.b64decode(w[10:-2]) for w in words) == ("ü" * 100).encode()


def test_has_8bit_header_looks_at_the_header_only() -> None:
    assert has_8bit_header(UTF8_MESSAGE)
    assert not has_8bit_header(b"Subject: x\r\n\r\nGr\xc3\xbc\xc3\x9fe\r\n")
