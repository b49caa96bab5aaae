"""RFC 5322 header fields, sans-IO: unfolding (§2.2.3), the lexical tokens of structured field
bodies (atoms, quoted strings, comments, domain literals; §3.2), and address lists with groups
(§3.4), as ENVELOPE reports them (RFC 3501 §7.4.2). Used by the message-structure code
(mime.py) and by SEARCH in the reference server."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from harness.protocol.imap.formatting import nstring


@dataclass(frozen=True, slots=True)
class Field:
    """One header field: its name in lower case, its octets as stored (with the line ends),
    and its unfolded body (RFC 5322 §2.2.3), without the leading and trailing white space."""

    name: str
    raw: bytes
    value: bytes


_FOLD = re.compile(rb"\r?\n(?=[ \t])")


def unfold(raw: bytes) -> bytes:
    """RFC 5322 §2.2.3: "Unfolding is accomplished by simply removing any CRLF that is
    immediately followed by WSP" (a bare LF too, for stored messages that have them)."""
    return _FOLD.sub(b"", raw)


def parse_fields(header: bytes) -> list[Field]:
    """The fields of a header block, in order. A line that is neither a field nor a
    continuation (no colon) is kept as a field with an empty name, so nothing is lost."""
    fields: list[Field] = []
    raw_lines: list[bytes] = []

    def flush() -> None:
        if not raw_lines:
            return
        raw = b"".join(raw_lines)
        name, colon, rest = raw.partition(b":")
        value = unfold(rest).strip(b" \t\r\n") if colon else b""
        fields.append(Field(name.strip().decode("ascii", "replace").lower() if colon else "",
                            raw, value))
        raw_lines.clear()

    for line in header.splitlines(keepends=True):
        if line in (b"\r\n", b"\n"):
            break
        if line[:1] in (b" ", b"\t") and raw_lines:
            raw_lines.append(line)
            continue
        flush()
        raw_lines.append(line)
    flush()
    return fields


def field_value(fields: Sequence[Field], name: str) -> bytes | None:
    """The first field called *name* (case-insensitive), unfolded, or None."""
    name = name.lower()
    return next((f.value for f in fields if f.name == name), None)



# --------------------------------------------------------------------------- RFC 5322 tokens


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "atom", "quoted", "literal" (a domain literal) or "special"
    text: bytes  # an atom's octets, a quoted string's content, "[...]", or the special
    space: bool  # white space or a comment came before it


_SPECIALS_5322 = b'()<>[]:;@\\,."'
_WSP = b" \t\r\n"


def _skip_comment(data: bytes, i: int) -> int:
    """*i* is at "("; the index after the matching ")" (RFC 5322 §3.2.2: comments nest and
    may hold quoted-pairs); the end of *data* when it never closes."""
    depth = 0
    n = len(data)
    while i < n:
        c = data[i]
        if c == 0x5C:  # quoted-pair
            i += 2
            continue
        if c == 0x28:
            depth += 1
        elif c == 0x29:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return n


def _quoted(data: bytes, i: int) -> tuple[bytes, int]:
    """*i* is at DQUOTE; the content with quoted-pairs resolved, and the index after it."""
    out = bytearray()
    i += 1
    n = len(data)
    while i < n:
        c = data[i]
        if c == 0x5C and i + 1 < n:
            out.append(data[i + 1])
            i += 2
            continue
        if c == 0x22:
            return bytes(out), i + 1
        out.append(c)
        i += 1
    return bytes(out), n


def tokens_5322(value: bytes, specials: bytes = _SPECIALS_5322) -> list[Token]:
    """The lexical tokens of a structured field body (RFC 5322 §3.2), comments dropped."""
    out: list[Token] = []
    i, n, space = 0, len(value), False
    while i < n:
        c = value[i]
        if c in _WSP:
            space = True
            i += 1
        elif c == 0x28:
            i = _skip_comment(value, i)
            space = True
        elif c == 0x22:
            text, i = _quoted(value, i)
            out.append(Token("quoted", text, space))
            space = False
        elif c == 0x5B and 0x5B in specials:
            end = value.find(b"]", i)
            end = n if end < 0 else end + 1
            out.append(Token("literal", value[i:end], space))
            i, space = end, False
        elif c in specials:
            out.append(Token("special", bytes([c]), space))
            i, space = i + 1, False
        else:
            start = i
            while i < n and value[i] not in _WSP and value[i] not in specials:
                i += 1
            out.append(Token("atom", value[start:i], space))
            space = False
    return out


def is_special(token: Token, special: bytes) -> bool:
    return token.kind == "special" and token.text == special


def _phrase(tokens: Sequence[Token]) -> bytes | None:
    """A display name (RFC 5322 §3.2.5 phrase, obs-phrase with "."): the words with one space
    where the field had white space or a comment, quoted strings unquoted. Encoded words
    (RFC 2047) are kept as they are."""
    out = bytearray()
    for t in tokens:
        if out and t.space:
            out += b" "
        out += t.text
    return bytes(out) if out else None


def _joined(tokens: Sequence[Token]) -> bytes:
    """A local part or a domain without its CFWS: atoms and dots as they are, a quoted local
    part with its quotes (the mailbox is reported as written)."""
    out = bytearray()
    for t in tokens:
        if t.kind == "quoted":
            out += b'"' + t.text.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
        else:
            out += t.text
    return bytes(out)


# --------------------------------------------------------------------------- addresses


@dataclass(frozen=True, slots=True)
class Address:
    """One entry of an ENVELOPE address list (RFC 3501 §7.4.2): personal name, source route
    (at-domain-list), mailbox and host. A group start has mailbox = the group's name and host
    None; a group end has both None."""

    name: bytes | None
    adl: bytes | None
    mailbox: bytes | None
    host: bytes | None

    def format(self) -> bytes:
        return (b"(" + nstring(self.name) + b" " + nstring(self.adl) + b" "
                + nstring(self.mailbox) + b" " + nstring(self.host) + b")")


def _mailbox(tokens: Sequence[Token]) -> Address | None:
    """One mailbox (RFC 5322 §3.4 name-addr or addr-spec, with obs-route), or None when the
    tokens hold nothing."""
    if not tokens:
        return None
    lt = next((i for i, t in enumerate(tokens) if is_special(t, b"<")), None)
    if lt is not None:
        name = _phrase(tokens[:lt])
        gt = next((i for i in range(lt + 1, len(tokens)) if is_special(tokens[i], b">")), len(tokens))
        inner = list(tokens[lt + 1: gt])
    else:
        name, inner = None, list(tokens)
    adl = None
    if inner and is_special(inner[0], b"@"):
        # obs-route = obs-domain-list ":" (RFC 5322 §4.4), kept as "@a,@b".
        colon = next((i for i, t in enumerate(inner) if is_special(t, b":")), None)
        if colon is not None:
            adl = _joined(inner[:colon]) or None
            inner = inner[colon + 1:]
    at = max((i for i, t in enumerate(inner) if is_special(t, b"@")), default=None)
    if at is None:
        # No "@": a mailbox without a host. The host is an empty string, never NIL, which
        # would read as a group marker (RFC 3501 §7.4.2).
        local, host = _joined(inner), b""
    else:
        local, host = _joined(inner[:at]), _joined(inner[at + 1:])
    if lt is None and not local and not host:
        return None
    return Address(name, adl, local, host)


def _end_of_address(tokens: Sequence[Token], i: int, stops: tuple[bytes, ...]) -> int:
    """The index of the first of *stops* at or after *i* outside angle brackets (or the end)."""
    depth = 0
    for j in range(i, len(tokens)):
        t = tokens[j]
        if is_special(t, b"<"):
            depth += 1
        elif is_special(t, b">"):
            depth = max(0, depth - 1)
        elif depth == 0 and t.kind == "special" and t.text in stops:
            return j
    return len(tokens)


def parse_addresses(value: bytes) -> list[Address]:
    """An address-list (RFC 5322 §3.4), groups as their start and end markers."""
    tokens = tokens_5322(value)
    out: list[Address] = []
    i, n = 0, len(tokens)
    while i < n:
        # One address runs to a "," outside angle brackets, or is a group "name: ... ;".
        j = _end_of_address(tokens, i, (b",", b":", b";"))
        if j < n and is_special(tokens[j], b":"):
            out.append(Address(None, None, _phrase(tokens[i:j]) or b"", None))
            i = j + 1
            while i < n and not is_special(tokens[i], b";"):
                k = _end_of_address(tokens, i, (b",", b";"))
                member = _mailbox(tokens[i:k])
                if member is not None:
                    out.append(member)
                i = k + 1 if k < n and is_special(tokens[k], b",") else k
            out.append(Address(None, None, None, None))
            i += 1  # the ";"
            continue
        member = _mailbox(tokens[i:j])
        if member is not None:
            out.append(member)
        i = j + 1
    return out
