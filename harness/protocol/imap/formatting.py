"""IMAP response formatting for servers (RFC 9051 §7): strings, status lines, FETCH data, MIME."""

from __future__ import annotations

import binascii
import email.utils
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import TypeAlias

from harness.protocol.imap import mutf7
from harness.protocol.imap.chars import ASTRING_CHAR, DATE_MONTHS
from harness.protocol.imap.command_values import Section
from harness.protocol.imap.seqset import SequenceSet

CRLF = b"\r\n"
_MAX_QUOTED = 1024
_MAX_MIME_DEPTH = 32


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


def format_status_response(mailbox: str, items: Sequence[tuple[str, int]], *,
                           utf8: bool = False) -> bytes:
    body = " ".join(f"{k} {v}" for k, v in items).encode("ascii")
    return b"* STATUS " + format_mailbox(mailbox, utf8=utf8) + b" (" + body + b")" + CRLF


def format_search_response(numbers: Iterable[int], *, modseq: int | None = None) -> bytes:
    """``* SEARCH 1 2`` CRLF; with *modseq*, RFC 7162's ``(MODSEQ n)`` after the numbers."""
    text = " ".join(str(n) for n in numbers)
    if text and modseq is not None:
        text += f" (MODSEQ {modseq})"
    return b"* SEARCH" + (b" " + text.encode("ascii") if text else b"") + CRLF


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


# ---------------------------------------------------------------------------------------------
# Message structure: header, sections, ENVELOPE, BODYSTRUCTURE
# ---------------------------------------------------------------------------------------------


def split_message(data: bytes) -> tuple[bytes, bytes]:
    """(header including the blank line that ends it, body). A message without a blank line is
    all header (RFC 5322 §2.1: the body is optional)."""
    if data.startswith(b"\r\n"):
        return b"\r\n", data[2:]
    if data.startswith(b"\n"):
        return b"\n", data[1:]
    idx = data.find(b"\r\n\r\n")
    lf = data.find(b"\n\n")
    if idx >= 0 and (lf < 0 or idx + 1 <= lf):
        return data[: idx + 4], data[idx + 4:]
    if lf >= 0:
        return data[: lf + 2], data[lf + 2:]
    return data, b""


def _header_fields(header: bytes) -> list[tuple[str, bytes]]:
    """Split a header block into (lower-cased name, raw field bytes with its line ends)."""
    fields: list[tuple[str, bytes]] = []
    for line in header.splitlines(keepends=True):
        if line in (b"\r\n", b"\n"):
            break
        if line[:1] in (b" ", b"\t") and fields:
            name, raw = fields[-1]
            fields[-1] = (name, raw + line)
        else:
            name = line.split(b":", 1)[0].strip().decode("ascii", "replace").lower()
            fields.append((name, line))
    return fields


def header_fields(header: bytes, names: Iterable[str], *, exclude: bool = False) -> bytes:
    """BODY[HEADER.FIELDS (...)] / [HEADER.FIELDS.NOT (...)]: the matching fields exactly as
    stored, followed by the blank line (RFC 9051 §6.4.5)."""
    wanted = {n.lower() for n in names}
    picked = [raw for name, raw in _header_fields(header) if (name in wanted) != exclude]
    return b"".join(picked) + CRLF


def apply_partial(data: bytes, partial: tuple[int, int] | None) -> bytes:
    """``<origin.length>``: RFC 9051 §6.4.5 "If the origin is larger than the size of the
    section, an empty string is returned"; the result is cut at the section's end."""
    if partial is None:
        return data
    origin, length = partial
    return data[origin: origin + length]


@dataclass(frozen=True, slots=True)
class MimePart:
    """One entity of a message, byte-exact: its header and body as stored."""

    header: bytes
    body: bytes
    maintype: str  # lower-case
    subtype: str  # lower-case
    params: tuple[tuple[str, str], ...]
    children: tuple[MimePart, ...] = ()
    encapsulated: MimePart | None = None  # for message/rfc822

    @property
    def is_multipart(self) -> bool:
        return self.maintype == "multipart"


def _parse_header(header: bytes) -> Message:
    return BytesHeaderParser(policy=compat32).parsebytes(header)


def _params(msg: Message) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    raw = msg.get_params(header="content-type") or []
    for key, value in raw[1:]:
        if isinstance(value, tuple):
            value = email.utils.collapse_rfc2231_value(value)
        out.append((key.upper(), str(value)))
    return tuple(out)


def parse_mime(data: bytes, *, default_type: str = "text/plain", _depth: int = 0) -> MimePart:
    """The MIME tree of *data* (RFC 2045, RFC 2046), kept as byte slices of the original."""
    header, body = split_message(data)
    msg = _parse_header(header)
    if msg.get("content-type") is None:
        ctype = default_type
    else:
        ctype = msg.get_content_type()
    maintype, _, subtype = ctype.partition("/")
    params = _params(msg) if msg.get("content-type") is not None else ()
    if _depth >= _MAX_MIME_DEPTH:
        return MimePart(header, body, maintype, subtype, params)
    if maintype == "multipart":
        boundary = msg.get_boundary()
        if boundary:
            child_default = "message/rfc822" if subtype == "digest" else "text/plain"
            children = tuple(parse_mime(chunk, default_type=child_default, _depth=_depth + 1)
                             for chunk in _split_multipart(body, boundary.encode("utf-8", "replace")))
            return MimePart(header, body, maintype, subtype, params, children)
        # RFC 2046 §5.1.1: a multipart without a boundary is broken; treat it as text.
        return MimePart(header, body, "text", "plain", params)
    if (maintype, subtype) == ("message", "rfc822"):
        inner = parse_mime(body, _depth=_depth + 1)
        return MimePart(header, body, maintype, subtype, params, encapsulated=inner)
    return MimePart(header, body, maintype, subtype, params)


def _split_multipart(body: bytes, boundary: bytes) -> list[bytes]:
    # RFC 2046 §5.1.1: "The boundary delimiter MUST occur at the beginning of a line", and
    # "the CRLF preceding the boundary delimiter line is conceptually attached to the boundary".
    delimiter = re.compile(rb"(?:\A|\r?\n)--" + re.escape(boundary) + rb"(--)?[ \t]*(?:\r?\n|\Z)")
    parts: list[bytes] = []
    start: int | None = None
    for m in delimiter.finditer(body):
        if start is not None:
            parts.append(body[start: m.start()])
        if m.group(1):
            return parts
        start = m.end()
    if start is not None:
        parts.append(body[start:])
    return parts


def _find_part(root: MimePart, path: Sequence[int]) -> MimePart | None:
    cur = root
    for i, n in enumerate(path):
        if i > 0 and cur.encapsulated is not None:
            cur = cur.encapsulated
            if not cur.is_multipart:
                if n != 1:
                    return None
                continue
        if cur.is_multipart:
            if not 1 <= n <= len(cur.children):
                return None
            cur = cur.children[n - 1]
        elif n != 1:
            return None
    return cur


def section_bytes(message: bytes, section: Section) -> bytes | None:
    """The octets of BODY[section] (RFC 9051 §6.4.5), or None when the part does not exist."""
    if not section.part:
        header, body = split_message(message)
        target_header, target_body, whole = header, body, message
    else:
        root = parse_mime(message)
        part = _find_part(root, section.part)
        if part is None:
            return None
        if section.text is None:
            return part.body
        if section.text == "MIME":
            return part.header
        if part.encapsulated is None:
            # HEADER, TEXT and HEADER.FIELDS after a part number need a message/rfc822 part.
            return None
        inner = part.encapsulated
        target_header, target_body, whole = inner.header, inner.body, part.body
    if section.text is None:
        return whole
    if section.text == "HEADER":
        return target_header
    if section.text == "TEXT":
        return target_body
    if section.text == "HEADER.FIELDS":
        return header_fields(target_header, section.fields)
    if section.text == "HEADER.FIELDS.NOT":
        return header_fields(target_header, section.fields, exclude=True)
    return None


class UnknownTransferEncoding(ValueError):
    """A part's Content-Transfer-Encoding the server cannot decode (RFC 9051 UNKNOWN-CTE)."""


_IDENTITY_CTES = frozenset({"7bit", "8bit", "binary"})


def decode_transfer_encoding(encoding: str, body: bytes, *, textual: bool) -> bytes:
    """*body* with the Content-Transfer-Encoding *encoding* removed (RFC 2045 §6). Textual
    parts come out with CRLF line ends (RFC 9051 §7.5.2 BINARY: "servers MUST ensure that
    textual line-oriented sections are always transmitted using the IMAP CRLF line termination
    syntax"). Raises UnknownTransferEncoding for an encoding it does not know."""
    encoding = encoding.strip().lower()
    if encoding in _IDENTITY_CTES:
        decoded = body
    elif encoding == "base64":
        try:
            decoded = binascii.a2b_base64(b"".join(body.split()))
        except binascii.Error as exc:
            raise UnknownTransferEncoding(f"undecodable base64: {exc}") from exc
    elif encoding == "quoted-printable":
        decoded = binascii.a2b_qp(body)
    else:
        raise UnknownTransferEncoding(encoding)
    if textual:
        decoded = re.sub(rb"\r?\n", b"\r\n", decoded)
    return decoded


def binary_section(message: bytes, part: Sequence[int]) -> bytes | None:
    """The octets of BINARY[part] (RFC 9051 §6.4.5): the leaf part's body with its
    Content-Transfer-Encoding removed; BINARY[] is the whole message as stored. None when the
    part does not exist or is not a leaf (multipart/*, message/rfc822). Raises
    UnknownTransferEncoding."""
    if not part:
        return message
    found = _find_part(parse_mime(message), part)
    if found is None or found.is_multipart or found.encapsulated is not None:
        return None
    encoding = _parse_header(found.header).get("content-transfer-encoding") or "7bit"
    return decode_transfer_encoding(str(encoding), found.body, textual=found.maintype == "text")


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n(?=[ \t])", "", value).strip()


def _header_value(msg: Message, name: str) -> str | None:
    value = msg.get(name)
    if value is None:
        return None
    return _unfold(str(value))


def _address_list(msg: Message, name: str) -> bytes | None:
    values = msg.get_all(name)
    if not values:
        return None
    out: list[bytes] = []
    for display, addr in email.utils.getaddresses([_unfold(str(v)) for v in values]):
        if not addr and not display:
            continue
        mailbox, at, host = addr.rpartition("@")
        if not at:
            mailbox, host = addr, ""
        out.append(b"(" + nstring(display or None) + b" NIL " + nstring(mailbox or None) + b" "
                   + nstring(host or None) + b")")
    return b"(" + b"".join(out) + b")" if out else None


def envelope(header: bytes) -> bytes:
    """The ENVELOPE structure (RFC 9051 §7.5.2) of a message header, strings as stored."""
    msg = _parse_header(header)

    def ns(name: str) -> bytes:
        return nstring(_header_value(msg, name))

    def addresses(name: str) -> bytes:
        value = _address_list(msg, name)
        return b"NIL" if value is None else value

    from_ = addresses("From")
    # RFC 9051 §7.5.2: "If the Sender or Reply-To header lines are absent in the [RFC5322]
    # header, or are present but empty, the server sets the corresponding member of the
    # envelope to be the same value as the from member".
    sender = _address_list(msg, "Sender")
    reply_to = _address_list(msg, "Reply-To")
    fields = [
        ns("Date"), ns("Subject"), from_,
        from_ if sender is None else sender,
        from_ if reply_to is None else reply_to,
        addresses("To"), addresses("Cc"), addresses("Bcc"),
        ns("In-Reply-To"), ns("Message-ID"),
    ]
    return b"(" + b" ".join(fields) + b")"


def _count_lines(body: bytes) -> int:
    if not body:
        return 0
    return body.count(b"\n") + (0 if body.endswith(b"\n") else 1)


def _param_list(params: Sequence[tuple[str, str]]) -> bytes:
    if not params:
        return b"NIL"
    return b"(" + b" ".join(quote(k) + b" " + quote(v) for k, v in params) + b")"


def _disposition(msg: Message) -> bytes:
    value = msg.get("content-disposition")
    if value is None:
        return b"NIL"
    kind = str(value).split(";", 1)[0].strip()
    if not kind:
        return b"NIL"
    params: list[tuple[str, str]] = []
    for key, val in (msg.get_params(header="content-disposition") or [])[1:]:
        if isinstance(val, tuple):
            val = email.utils.collapse_rfc2231_value(val)
        params.append((key.upper(), str(val)))
    return b"(" + quote(kind.upper()) + b" " + _param_list(params) + b")"


def _structure(part: MimePart, extensible: bool) -> bytes:
    msg = _parse_header(part.header)
    if part.is_multipart:
        children = b"".join(_structure(c, extensible) for c in part.children)
        if not children:
            # body-type-mpart needs at least one body; RFC 2046 §5.1.1 requires a part.
            children = b'("TEXT" "PLAIN" NIL NIL NIL "7BIT" 0 0)'
        out = children + b" " + quote(part.subtype.upper())
        if extensible:
            out += (b" " + _param_list(part.params) + b" " + _disposition(msg) + b" "
                    + nstring(_header_value(msg, "Content-Language")) + b" "
                    + nstring(_header_value(msg, "Content-Location")))
        return b"(" + out + b")"
    params = list(part.params)
    if part.maintype == "text" and not any(k == "CHARSET" for k, _ in params):
        params.insert(0, ("CHARSET", "US-ASCII"))
    encoding = _header_value(msg, "Content-Transfer-Encoding") or "7BIT"
    fields = [
        quote(part.maintype.upper()), quote(part.subtype.upper()), _param_list(params),
        nstring(_header_value(msg, "Content-ID")),
        nstring(_header_value(msg, "Content-Description")),
        quote(encoding.upper()), str(len(part.body)).encode("ascii"),
    ]
    if part.encapsulated is not None:
        fields += [envelope(part.encapsulated.header),
                   _structure(part.encapsulated, extensible),
                   str(_count_lines(part.body)).encode("ascii")]
    elif part.maintype == "text":
        fields.append(str(_count_lines(part.body)).encode("ascii"))
    if extensible:
        fields += [nstring(_header_value(msg, "Content-MD5")), _disposition(msg),
                   nstring(_header_value(msg, "Content-Language")),
                   nstring(_header_value(msg, "Content-Location"))]
    return b"(" + b" ".join(fields) + b")"


def bodystructure(message: bytes, *, extensible: bool = True) -> bytes:
    """BODYSTRUCTURE (``extensible``) or BODY (RFC 9051 §7.5.2) of a message."""
    root = parse_mime(message)
    # The top-level message is not an encapsulated part: describe its own content.
    return _structure(root, extensible)
