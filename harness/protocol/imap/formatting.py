"""IMAP response formatting for servers (RFC 9051 §7): strings, status lines, FETCH data. The
structure of messages (ENVELOPE, BODYSTRUCTURE, sections) is in mime.py."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

from harness.protocol.imap import mutf7
from harness.protocol.imap.chars import ASTRING_CHAR, DATE_MONTHS
from harness.protocol.imap.response_values import ThreadNode
from harness.protocol.imap.seqset import SequenceSet

CRLF = b"\r\n"
_MAX_QUOTED = 1024


@dataclass(frozen=True, slots=True)
class Raw:
    """Already-formatted response data, inserted verbatim (a parenthesised list, a date)."""

    data: bytes


FetchValue: TypeAlias = int | bytes | str | None | Raw

# ---------------------------------------------------------------------------------------------
# Strings
# ---------------------------------------------------------------------------------------------


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value


def quote(value: str | bytes) -> bytes:
    """A string (RFC 9051 §4.3): quoted when it is short printable ASCII, a literal otherwise."""
    data = _as_bytes(value)
    if len(data) <= _MAX_QUOTED and all(0x20 <= b <= 0x7E for b in data):
        return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return literal(data)


def literal(value: str | bytes) -> bytes:
    data = _as_bytes(value)
    return b"{%d}\r\n" % len(data) + data


def message_literal(value: bytes) -> bytes:
    """Message content (BODY[...], RFC822...) in a literal. A literal holds CHAR8, which
    excludes NUL (RFC 9051 §9: "The ASCII NUL character, %x00, MUST NOT be used anywhere, with
    the exception of the OCTET production"), and "unencoded binary strings are not permitted,
    unless returned in a <literal8> in response to BINARY" (§4.3); so each NUL octet is sent
    as 0x80, which keeps every size and offset. BINARY[...] returns the octets exactly."""
    return literal(value.replace(b"\x00", b"\x80"))


def literal8(value: bytes) -> bytes:
    """RFC 3516 / RFC 9051 §9 ``literal8``: ``~{N}`` CRLF and N octets, NUL allowed."""
    return b"~{%d}\r\n" % len(value) + value


def binary_value(value: bytes) -> bytes:
    """A BINARY[...] fetch value: a literal8 only when the octets include NUL (RFC 9051 §7.5.2:
    otherwise the server "SHOULD return the data in a <string>")."""
    return literal8(value) if b"\x00" in value else literal(value)


def nstring(value: str | bytes | None) -> bytes:
    return b"NIL" if value is None else quote(value)


def astring(value: str | bytes) -> bytes:
    """An atom when every octet is an ASTRING-CHAR (and it is not NIL), else a string."""
    data = _as_bytes(value)
    if data and data.upper() != b"NIL" and all(b in ASTRING_CHAR for b in data):
        return data
    return quote(data)


def format_mailbox(name: str, *, utf8: bool = False) -> bytes:
    """A mailbox name on the wire, as an astring: modified UTF-7 (RFC 3501 §5.1.3), or with
    *utf8* (IMAP4rev2 enabled, RFC 9051 §5.1) UTF-8 as is."""
    return astring(name.encode("utf-8") if utf8 else mutf7.encode(name))


def _safe_text(text: str) -> bytes:
    # resp-text = text: TEXT-CHAR excludes CR and LF; never let a reason break the line.
    return text.replace("\r", " ").replace("\n", " ").encode("utf-8", "replace")


# ---------------------------------------------------------------------------------------------
# Status and data responses
# ---------------------------------------------------------------------------------------------


def format_tagged(tag: str, status: str, text: str, code: str | None = None) -> bytes:
    """``tag OK|NO|BAD [code] text`` CRLF (RFC 9051 §7.1)."""
    if status not in ("OK", "NO", "BAD"):
        raise ValueError(f"bad tagged status {status!r}")
    return _status_line(tag.encode("ascii"), status, text, code)


def format_untagged(keyword: str, text: str = "", code: str | None = None) -> bytes:
    """``* keyword [code] text`` CRLF: status (OK, NO, BAD, BYE, PREAUTH) or data (``3 EXISTS``)."""
    return _status_line(b"*", keyword, text, code)


def _status_line(prefix: bytes, keyword: str, text: str, code: str | None) -> bytes:
    out = prefix + b" " + keyword.encode("ascii")
    if code:
        out += b" [" + _safe_text(code) + b"]"
    if text:
        out += b" " + _safe_text(text)
    elif code or keyword in ("OK", "NO", "BAD", "BYE", "PREAUTH"):
        # resp-text = ["[" resp-text-code "]" SP] [text]: keep at least one text character.
        out += b" " + keyword.encode("ascii").lower()
    return out + CRLF


def format_continuation(text: str = "Ready") -> bytes:
    return b"+ " + _safe_text(text) + CRLF


def format_capability(capabilities: Iterable[str]) -> bytes:
    return b"* CAPABILITY " + " ".join(capabilities).encode("ascii") + CRLF


_SYSTEM_FLAG_ORDER = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "\\Recent")


def format_flags(flags: Iterable[str]) -> bytes:
    """A flag list ``(\\Seen \\Deleted $Junk)``: system flags first, then keywords sorted."""
    items = set(flags)

    def order(flag: str) -> tuple[int, str]:
        try:
            return (_SYSTEM_FLAG_ORDER.index(flag), flag)
        except ValueError:
            return (len(_SYSTEM_FLAG_ORDER), flag)

    return b"(" + " ".join(sorted(items, key=order)).encode("utf-8") + b")"


def format_internaldate(when: datetime) -> bytes:
    """RFC 9051 §9 date-time: ``"dd-Mon-yyyy hh:mm:ss +zzzz"`` (day padded with a space)."""
    if when.tzinfo is None:
        raise ValueError("INTERNALDATE needs an aware datetime")
    offset = when.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    text = (f"{when.day:2d}-{DATE_MONTHS[when.month - 1]}-{when.year:04d} "
            f"{when.hour:02d}:{when.minute:02d}:{when.second:02d} "
            f"{sign}{minutes // 60:02d}{minutes % 60:02d}")
    return b'"' + text.encode("ascii") + b'"'


def _format_value(value: FetchValue) -> bytes:
    if value is None:
        return b"NIL"
    if isinstance(value, Raw):
        return value.data
    if isinstance(value, bool):
        raise TypeError("booleans are not IMAP values")
    if isinstance(value, int):
        return str(value).encode("ascii")
    return quote(value)


def format_fetch_response(seq: int, items: Sequence[tuple[str, FetchValue]]) -> bytes:
    """``* seq FETCH (name value ...)`` CRLF (RFC 9051 §7.5.2). ``int`` is a number, ``bytes``
    or ``str`` a string (quoted or literal), ``None`` NIL, :class:`Raw` is verbatim."""
    parts = [name.encode("ascii") + b" " + _format_value(value) for name, value in items]
    return b"* %d FETCH (" % seq + b" ".join(parts) + b")" + CRLF


def format_list_response(kind: str, attributes: Iterable[str], delimiter: str | None,
                         name: str, *, utf8: bool = False, childinfo: Sequence[str] = ()) -> bytes:
    """``* LIST (\\HasNoChildren) "/" name`` CRLF (RFC 9051 §7.3.1); ``kind`` LIST or LSUB.
    *childinfo* adds the extended item ``("CHILDINFO" ("SUBSCRIBED"))`` (RFC 5258 §3.5)."""
    delim = b"NIL" if delimiter is None else quote(delimiter)
    extended = b""
    if childinfo:
        extended = (b' ("CHILDINFO" (' + b" ".join(quote(c) for c in childinfo) + b"))")
    return (b"* " + kind.encode("ascii") + b" (" + " ".join(attributes).encode("ascii") + b") "
            + delim + b" " + format_mailbox(name, utf8=utf8) + extended + CRLF)


def format_status_response(mailbox: str, items: Sequence[tuple[str, int | str]], *,
                           utf8: bool = False) -> bytes:
    body = " ".join(f"{k} {v}" for k, v in items).encode("ascii")
    return b"* STATUS " + format_mailbox(mailbox, utf8=utf8) + b" (" + body + b")" + CRLF


def format_search_response(numbers: Iterable[int], *, modseq: int | None = None,
                           keyword: bytes = b"SEARCH") -> bytes:
    """``* SEARCH 1 2`` CRLF; with *modseq*, RFC 7162's ``(MODSEQ n)`` after the numbers."""
    text = " ".join(str(n) for n in numbers)
    if text and modseq is not None:
        text += f" (MODSEQ {modseq})"
    return b"* " + keyword + (b" " + text.encode("ascii") if text else b"") + CRLF


def format_vanished(uids: Iterable[int], *, earlier: bool) -> bytes:
    """``* VANISHED [(EARLIER) ]uid-set`` (RFC 7162 §3.2.10); *uids* must not be empty."""
    prefix = b"* VANISHED (EARLIER) " if earlier else b"* VANISHED "
    return prefix + SequenceSet.from_ints(uids).format().encode("ascii") + b"\r\n"


def format_esearch_response(tag: str, uid: bool, data: Sequence[tuple[str, str]]) -> bytes:
    """``* ESEARCH (TAG "a") UID MIN 3 ...`` CRLF (RFC 9051 §7.3.4)."""
    out = b'* ESEARCH (TAG ' + quote(tag) + b")"
    if uid:
        out += b" UID"
    for key, value in data:
        out += b" " + key.encode("ascii") + b" " + value.encode("ascii")
    return out + CRLF


def format_sort_response(numbers: Iterable[int], *, modseq: int | None = None) -> bytes:
    """``* SORT 2 3 6`` CRLF (RFC 5256 §4); with *modseq*, RFC 7162 §3.1.9's ``(MODSEQ n)``
    after the numbers."""
    return format_search_response(numbers, modseq=modseq, keyword=b"SORT")


def _thread_members(number: int | None, children: Sequence[ThreadNode]) -> bytes:
    # thread-members = nz-number *(SP nz-number) [SP thread-nested]; thread-nested = 2*thread-list
    if number is None:
        return b"".join(b"(" + _thread_members(c.number, c.children) + b")" for c in children)
    out = b"%d" % number
    if len(children) == 1:
        return out + b" " + _thread_members(children[0].number, children[0].children)
    if children:
        out += b" " + _thread_members(None, children)
    return out


def format_thread_response(threads: Sequence[ThreadNode]) -> bytes:
    """``* THREAD (2)(3 6 (4 23)(44 7 96))`` CRLF (RFC 5256 §4) from thread trees."""
    return (b"* THREAD" + (b" " if threads else b"")
            + _thread_members(None, threads) + CRLF)
