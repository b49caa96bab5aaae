"""Message structure, sans-IO: what an IMAP server reports about a stored message.

- RFC 5322 header fields: unfolding (§2.2.3), the lexical tokens of structured fields (atoms,
  quoted strings, comments, domain literals; §3.2), and address lists with groups (§3.4).
- RFC 2045 / RFC 2046 MIME: Content-Type and its parameters (with RFC 2231 continuations and
  charsets), the part tree of multiparts and message/rfc822 parts.
- The IMAP views of it (RFC 9051 §6.4.5 and §7.5.2, RFC 3501 §7.4.2): ENVELOPE,
  BODY / BODYSTRUCTURE with sizes and line counts, BODY[section] and BINARY[part].

Everything works on the stored octets and never raises on a malformed message: a header
without a blank line, bare LF line ends, a missing closing boundary, 8-bit header octets and
deep nesting (cut at ``MAX_DEPTH``) all get an answer in time linear in the message size."""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from harness.protocol.imap.command_values import Section
from harness.protocol.imap.formatting import CRLF, nstring, quote
from harness.protocol.imap.headers import (
    Address,
    Field,
    Token,
    field_value,
    is_special,
    parse_addresses,
    parse_fields,
    tokens_5322,
)

#: Nesting below this depth is reported as an opaque part (bounded time and memory).
MAX_DEPTH = 32

# --------------------------------------------------------------------------- header fields


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


def header_fields(header: bytes, names: Iterable[str], *, exclude: bool = False) -> bytes:
    """BODY[HEADER.FIELDS (...)] / [HEADER.FIELDS.NOT (...)]: the fields whose name matches
    one of *names* (case-insensitively; a name given twice is one name), exactly as stored and
    in their order, followed by the blank line (RFC 9051 §6.4.5)."""
    wanted = {n.lower() for n in names}
    picked = [f.raw for f in parse_fields(header) if f.name and (f.name in wanted) != exclude]
    # RFC 9051 §6.4.5: "the blank line is included in all header fetches, except in the case
    # of a message that has no body and no blank line."
    ends_blank = header.endswith((b"\r\n\r\n", b"\n\n")) or header in (b"\r\n", b"\n")
    return b"".join(picked) + (CRLF if ends_blank else b"")


def apply_partial(data: bytes, partial: tuple[int, int] | None) -> bytes:
    """``<origin.length>``: RFC 9051 §6.4.5 "If the origin is larger than the size of the
    section, an empty string is returned"; the result is cut at the section's end."""
    if partial is None:
        return data
    origin, length = partial
    return data[origin: origin + length]


def _address_field(fields: Sequence[Field], name: str) -> list[Address]:
    found: list[Address] = []
    for f in fields:
        if f.name == name.lower():
            found += parse_addresses(f.value)
    return found


def _address_list(addresses: Sequence[Address]) -> bytes:
    return b"(" + b"".join(a.format() for a in addresses) + b")" if addresses else b"NIL"


def envelope(header: bytes) -> bytes:
    """The ENVELOPE structure (RFC 9051 §7.5.2, RFC 3501 §7.4.2) of a message header: Date,
    Subject, In-Reply-To and Message-ID as unfolded strings, the address fields parsed."""
    fields = parse_fields(header)
    from_ = _address_field(fields, "from")
    # RFC 9051 §7.5.2: "If the Sender or Reply-To header lines are absent in the [RFC5322]
    # header, or are present but empty, the server sets the corresponding member of the
    # envelope to be the same value as the from member".
    sender = _address_field(fields, "sender") or from_
    reply_to = _address_field(fields, "reply-to") or from_
    parts = [
        nstring(field_value(fields, "date")), nstring(field_value(fields, "subject")),
        _address_list(from_), _address_list(sender), _address_list(reply_to),
        _address_list(_address_field(fields, "to")), _address_list(_address_field(fields, "cc")),
        _address_list(_address_field(fields, "bcc")),
        nstring(field_value(fields, "in-reply-to")), nstring(field_value(fields, "message-id")),
    ]
    return b"(" + b" ".join(parts) + b")"


# --------------------------------------------------------------------------- MIME parameters

#: RFC 2045 §5.1 tspecials.
_TSPECIALS = b'()<>@,;:\\"/[]?='


def _percent_decode(text: bytes) -> bytes:
    return re.sub(rb"%([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), text)


def _rfc2231(params: list[tuple[str, bytes, bool]]) -> list[tuple[str, bytes]]:
    """Join RFC 2231 continuations (``name*0``, ``name*1*``...) and decode ``name*`` values
    (charset'language'%XX) to UTF-8. *params* are (name, value, was-quoted). RFC 9051 §7.5.2:
    "parameters "baz*0", "baz*1", and "baz*2", the server should decode them per [RFC2231],
    concatenate, and return the resulting value as a parameter "baz".  Similarly, if the
    message contains parameters "foo*0*" and "foo*1*", the server should decode them per
    [RFC2231], convert to UTF-8, concatenate, and return the resulting value as a parameter
    "foo*"."""
    plain: list[tuple[str, bytes]] = []
    pieces: dict[str, list[tuple[int, bytes, bool]]] = {}
    order: list[str] = []
    for name, value, quoted in params:
        m = re.fullmatch(r"([^*]+)\*(?:(\d+)\*?|)(\*?)", name)
        if m is None or "*" not in name:
            plain.append((name, value))
            continue
        base = m.group(1)
        index = int(m.group(2)) if m.group(2) is not None else 0
        extended = name.endswith("*") and not quoted
        if base not in pieces:
            order.append(base)
        pieces.setdefault(base, []).append((index, value, extended))
    for base in order:
        segments = sorted(pieces[base], key=lambda s: s[0])
        encoded = any(extended for _, _, extended in segments)
        charset = ""
        data = bytearray()
        for pos, (_, value, extended) in enumerate(segments):
            if extended:
                if pos == 0 and value.count(b"'") >= 2:
                    cs, _, rest = value.partition(b"'")
                    _, _, value = rest.partition(b"'")
                    charset = cs.decode("ascii", "replace")
                data += _percent_decode(value)
            else:
                data += value
        try:
            text = bytes(data).decode(charset or "utf-8", "replace")
        except LookupError:
            text = bytes(data).decode("utf-8", "replace")
        plain.append((base + "*" if encoded else base, text.encode("utf-8")))
    return plain


def parse_content_type(value: bytes | None, default: str = "text/plain") -> tuple[str, str, list[tuple[str, bytes]]]:
    """(type, subtype, parameters) of a Content-Type body (RFC 2045 §5.1): type and subtype in
    lower case, parameter names in upper case, values unquoted. A missing or malformed type is
    *default* (RFC 2045 §5.2: "default to plain US-ASCII text")."""
    main, _, sub = default.partition("/")
    if value is None:
        return main, sub, []
    tokens = tokens_5322(value, _TSPECIALS)
    params_at = next((i for i, t in enumerate(tokens) if is_special(t, b";")), len(tokens))
    head = tokens[:params_at]
    if (len(head) == 3 and head[0].kind == "atom" and is_special(head[1], b"/")
            and head[2].kind == "atom"):
        main = head[0].text.decode("ascii", "replace").lower()
        sub = head[2].text.decode("ascii", "replace").lower()
    return main, sub, _parameters(tokens[params_at:])


def _parameters(tokens: Sequence[Token]) -> list[tuple[str, bytes]]:
    """``*(";" attribute "=" value)`` (RFC 2045 §5.1); a malformed parameter is skipped."""
    found: list[tuple[str, bytes, bool]] = []
    i, n = 0, len(tokens)
    while i < n:
        if is_special(tokens[i], b";"):
            i += 1
            continue
        if (i + 2 < n and tokens[i].kind == "atom" and is_special(tokens[i + 1], b"=")
                and tokens[i + 2].kind in ("atom", "quoted")):
            found.append((tokens[i].text.decode("ascii", "replace").upper(), tokens[i + 2].text,
                          tokens[i + 2].kind == "quoted"))
            i += 3
            continue
        while i < n and not is_special(tokens[i], b";"):
            i += 1
    return _rfc2231(found)


def _disposition(value: bytes | None) -> bytes:
    """body-fld-dsp (RFC 3501 §9): "(" string SP body-fld-param ")" / nil."""
    if value is None:
        return b"NIL"
    tokens = tokens_5322(value, _TSPECIALS)
    if not tokens or tokens[0].kind != "atom":
        return b"NIL"
    kind = tokens[0].text.upper()
    return b"(" + quote(kind) + b" " + _param_list(_parameters(tokens[1:])) + b")"


def _param_list(params: Sequence[tuple[str, bytes]]) -> bytes:
    if not params:
        return b"NIL"
    return b"(" + b" ".join(quote(k) + b" " + quote(v) for k, v in params) + b")"


# --------------------------------------------------------------------------- the part tree


@dataclass(frozen=True, slots=True)
class MimePart:
    """One entity of a message, byte-exact: its header and body as stored."""

    header: bytes
    body: bytes
    maintype: str  # lower-case
    subtype: str  # lower-case
    params: tuple[tuple[str, bytes], ...]
    children: tuple[MimePart, ...] = ()
    encapsulated: MimePart | None = None  # for message/rfc822

    @property
    def is_multipart(self) -> bool:
        return self.maintype == "multipart"

    def fields(self) -> list[Field]:
        return parse_fields(self.header)


def parse_mime(data: bytes, *, default_type: str = "text/plain", _depth: int = 0) -> MimePart:
    """The MIME tree of *data* (RFC 2045, RFC 2046), kept as byte slices of the original."""
    header, body = split_message(data)
    fields = parse_fields(header)
    maintype, subtype, params = parse_content_type(field_value(fields, "content-type"), default_type)
    frozen = tuple(params)
    if _depth >= MAX_DEPTH:
        return MimePart(header, body, maintype, subtype, frozen)
    if maintype == "multipart":
        boundary = dict(params).get("BOUNDARY")
        if boundary:
            child_default = "message/rfc822" if subtype == "digest" else "text/plain"
            children = tuple(parse_mime(chunk, default_type=child_default, _depth=_depth + 1)
                             for chunk in _split_multipart(body, boundary))
            return MimePart(header, body, maintype, subtype, frozen, children)
        # RFC 2046 §5.1.1: a multipart without a boundary is broken; treat it as text.
        return MimePart(header, body, "text", "plain", frozen)
    if (maintype, subtype) == ("message", "rfc822"):
        inner = parse_mime(body, _depth=_depth + 1)
        return MimePart(header, body, maintype, subtype, frozen, encapsulated=inner)
    return MimePart(header, body, maintype, subtype, frozen)


def _split_multipart(body: bytes, boundary: bytes) -> list[bytes]:
    delimiter = _delimiter_pattern(boundary)
    parts: list[bytes] = []
    start: int | None = None
    for m in delimiter.finditer(body):
        if start is not None:
            parts.append(body[start: m.start()])
        if m.group(1):
            return parts
        start = m.end()
    if start is not None:
        # RFC 2046 §5.1.1 wants a close delimiter; without one the last part runs to the end.
        parts.append(body[start:])
    return parts


def find_part(root: MimePart, path: Sequence[int]) -> MimePart | None:
    """The part numbered *path* (RFC 9051 §6.4.5: parts of a message/rfc822 part are numbered
    within it; a non-multipart message has one part, number 1)."""
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
        part = find_part(parse_mime(message), section.part)
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


# --------------------------------------------------------------------------- transfer encodings


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


def _encoding(fields: Sequence[Field]) -> str:
    value = field_value(fields, "content-transfer-encoding")
    tokens = tokens_5322(value, _TSPECIALS) if value is not None else []
    return tokens[0].text.decode("ascii", "replace") if tokens and tokens[0].kind == "atom" else "7bit"


def binary_section(message: bytes, part: Sequence[int]) -> bytes | None:
    """The octets of BINARY[part] (RFC 9051 §6.4.5): the leaf part's body with its
    Content-Transfer-Encoding removed; BINARY[] is the whole message as stored. None when the
    part does not exist or is not a leaf (multipart/*, message/rfc822). Raises
    UnknownTransferEncoding."""
    if not part:
        return message
    found = find_part(parse_mime(message), part)
    if found is None or found.is_multipart or found.encapsulated is not None:
        return None
    return decode_transfer_encoding(_encoding(found.fields()), found.body,
                                    textual=found.maintype == "text")


def _delimiter_pattern(boundary: bytes) -> re.Pattern[bytes]:
    # RFC 2046 §5.1.1: "The boundary delimiter MUST occur at the beginning of a line", and
    # "the CRLF preceding the boundary delimiter line is conceptually attached to the boundary".
    return re.compile(rb"(?:\A|\r?\n)--" + re.escape(boundary) + rb"(--)?[ \t]*(?:\r?\n|\Z)")


def encode_binary_parts(data: bytes, *, _depth: int = 0) -> bytes:
    """*data* with every leaf part that holds a NUL octet put into base64 (and its
    Content-Transfer-Encoding field saying so); everything else byte for byte. For APPEND
    with literal8: RFC 3516 §4.4 "The server MAY modify the CTE of the appended data, however
    any such transformation MUST NOT result in a loss of data", and §6 "the server MUST issue
    BODYSTRUCTURE responses that describe the message as though the binary-encoded sections
    are encoded in a CTE acceptable to the IMAP4 base specification". BINARY[part] decodes it
    back to the octets appended."""
    if b"\x00" not in data:
        return data
    header, body = split_message(data)
    fields = parse_fields(header)
    maintype, subtype, params = parse_content_type(field_value(fields, "content-type"))
    if _depth >= MAX_DEPTH:
        return data
    if maintype == "multipart":
        boundary = dict(params).get("BOUNDARY")
        if not boundary:
            return data
        out, pos, inside, closed = [header], 0, False, False
        for m in _delimiter_pattern(boundary).finditer(body):
            chunk = body[pos: m.start()]
            # Before the first delimiter is the preamble, which stays as it is.
            out.append(encode_binary_parts(chunk, _depth=_depth + 1) if inside else chunk)
            out.append(m.group(0))
            pos, inside = m.end(), True
            if m.group(1):
                closed = True
                break
        tail = body[pos:]
        # After the close delimiter is the epilogue; without one the last part runs to the end.
        out.append(encode_binary_parts(tail, _depth=_depth + 1) if inside and not closed else tail)
        return b"".join(out)
    if (maintype, subtype) == ("message", "rfc822"):
        return header + encode_binary_parts(body, _depth=_depth + 1)
    if b"\x00" not in body or _encoding(fields).lower() not in _IDENTITY_CTES:
        return data
    eol = b"\n" if header.endswith(b"\n") and not header.endswith(b"\r\n") else CRLF
    kept = b"".join(f.raw for f in fields if f.name != "content-transfer-encoding")
    encoded = binascii.b2a_base64(body, newline=False)
    lines = eol.join(encoded[i: i + 76] for i in range(0, len(encoded), 76))
    return kept + b"Content-Transfer-Encoding: base64" + eol + eol + lines


# --------------------------------------------------------------------------- BODYSTRUCTURE


def count_lines(body: bytes) -> int:
    """body-fld-lines (RFC 3501 §7.4.2: "the size of the body in text lines"): the line ends,
    plus one for a last line without one."""
    if not body:
        return 0
    return body.count(b"\n") + (0 if body.endswith(b"\n") else 1)


def _structure(part: MimePart, extensible: bool) -> bytes:
    fields = part.fields()
    if part.is_multipart:
        children = b"".join(_structure(c, extensible) for c in part.children)
        if not children:
            # body-type-mpart needs at least one body; RFC 2046 §5.1.1 requires a part.
            children = b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 0 0)'
        out = children + b" " + quote(part.subtype.upper())
        if extensible:
            out += (b" " + _param_list(part.params) + b" "
                    + _disposition(field_value(fields, "content-disposition")) + b" "
                    + nstring(field_value(fields, "content-language")) + b" "
                    + nstring(field_value(fields, "content-location")))
        return b"(" + out + b")"
    params = list(part.params)
    if part.maintype == "text" and not any(k == "CHARSET" for k, _ in params):
        # RFC 2045 §5.2: no charset means US-ASCII.
        params.insert(0, ("CHARSET", b"US-ASCII"))
    items = [
        quote(part.maintype.upper()), quote(part.subtype.upper()), _param_list(params),
        nstring(field_value(fields, "content-id")),
        nstring(field_value(fields, "content-description")),
        quote(_encoding(fields).upper()), str(len(part.body)).encode("ascii"),
    ]
    if part.encapsulated is not None:
        items += [envelope(part.encapsulated.header), _structure(part.encapsulated, extensible),
                  str(count_lines(part.body)).encode("ascii")]
    elif part.maintype == "text":
        items.append(str(count_lines(part.body)).encode("ascii"))
    if extensible:
        items += [nstring(field_value(fields, "content-md5")),
                  _disposition(field_value(fields, "content-disposition")),
                  nstring(field_value(fields, "content-language")),
                  nstring(field_value(fields, "content-location"))]
    return b"(" + b" ".join(items) + b")"


def bodystructure(message: bytes, *, extensible: bool = True) -> bytes:
    """BODYSTRUCTURE (``extensible``) or BODY (RFC 9051 §7.5.2) of a message."""
    # The top-level message is not an encapsulated part: describe its own content.
    return _structure(parse_mime(message), extensible)
