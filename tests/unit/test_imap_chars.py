"""The IMAP character classes (RFC 9051 §9) and the cursor the command and response sides share."""

from __future__ import annotations

import re

import pytest

from harness.protocol.imap import chars
from harness.protocol.imap.chars import Cursor


def test_classes_are_the_rfc_sets() -> None:
    # atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials / resp-specials
    assert chars.ATOM_SPECIALS == frozenset(b'(){ %*"\\]') | frozenset(range(0x20)) | {0x7F}
    assert chars.ATOM_CHAR == frozenset(range(0x21, 0x7F)) - frozenset(b'(){%*"\\]')
    assert chars.ASTRING_CHAR - chars.ATOM_CHAR == {ord("]")}
    assert chars.ASTRING_CHAR - chars.TAG_CHAR == {ord("+")}
    assert chars.LIST_CHAR - chars.ASTRING_CHAR == frozenset(b"%*")
    assert chars.TEXT_CHAR == frozenset(range(1, 0x80)) - {0x0A, 0x0D}
    assert 0 not in chars.CHAR8 and 0xFF in chars.CHAR8
    assert not chars.QUOTED_CHAR & chars.QUOTED_SPECIALS


@pytest.mark.parametrize("name", ["ATOM_CHAR", "ASTRING_CHAR", "TAG_CHAR", "LIST_CHAR", "CTL"])
def test_byte_class_matches_exactly_the_set(name: str) -> None:
    members = getattr(chars, name)
    pattern = re.compile(chars.byte_class(members))
    assert {b for b in range(256) if pattern.fullmatch(bytes([b]))} == members


def test_is_run_of() -> None:
    assert chars.is_run_of("INBOX", chars.ATOM_CHAR)
    assert not chars.is_run_of("", chars.ATOM_CHAR)
    assert not chars.is_run_of("a b", chars.ATOM_CHAR)
    assert not chars.is_run_of("é", chars.ATOM_CHAR)


def test_cursor_stops_at_its_stop() -> None:
    cur = Cursor(b"AB CD\r\n", stop=5)
    assert cur.run(chars.ATOM_CHAR) == b"AB"
    cur.expect(b" ")
    assert cur.peek_bytes(10) == b"CD"
    assert not cur.accept(b"CD\r")
    assert cur.run(chars.ATOM_CHAR) == b"CD"
    assert cur.at_end() and cur.peek() == -1
    with pytest.raises(ValueError, match="expected 'x' at octet 5"):
        cur.expect(b"x")
