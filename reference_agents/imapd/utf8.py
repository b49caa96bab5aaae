"""UTF8=ACCEPT (RFC 6855) in the server: which sessions may see UTF-8, the APPEND rule for the
others, and the surrogate ENVELOPE a session that did not enable UTF-8 gets of a message whose
header fields hold raw UTF-8 (RFC 6532)."""

from __future__ import annotations

import base64
import re

from harness.protocol.imap.mime import envelope, split_message
from reference_agents.imapd.context import HandlerContext

#: Header fields whose value is an address list (RFC 5322 §3.6.2, §3.6.3, §3.6.6).
_ADDRESS_FIELDS = frozenset({b"from", b"sender", b"reply-to", b"to", b"cc", b"bcc",
                             b"resent-from", b"resent-sender", b"resent-to", b"resent-cc",
                             b"resent-bcc"})
#: A run of words with 8-bit octets, and the spaces between them (unstructured text).
_TEXT_RUN = re.compile(rb"\S*[\x80-\xff]\S*(?:[ \t]+\S*[\x80-\xff]\S*)*")
#: The same in an address list, where a word ends at the specials (RFC 5322 §3.2.3).
_WORD = rb'[^\s"<>,;:@()\[\]\\]*[\x80-\xff][^\s"<>,;:@()\[\]\\]*'
_ADDRESS_RUN = re.compile(_WORD + rb"(?:[ \t]+" + _WORD + rb")*")
#: A quoted string holding 8-bit octets (RFC 5322 §3.2.4), replaced whole.
_QUOTED_8BIT = re.compile(rb'"((?:[^"\\]|\\.)*[\x80-\xff](?:[^"\\]|\\.)*)"')
#: RFC 2047 §2: "An 'encoded-word' may not be more than 75 characters long"; 45 octets of text
#: make 60 of base64, and "=?UTF-8?B?" "?=" 12 more.
_CHUNK = 45


def utf8_allowed(s: HandlerContext) -> bool:
    """The session may be sent UTF-8: it enabled UTF8=ACCEPT (RFC 6855 §3), or IMAP4rev2 (RFC
    9051 Appendix D: a server that also offers IMAP4rev1 "MUST NOT generate UTF-8-quoted
    strings unless the client has issued "ENABLE IMAP4rev2"")."""
    return s.utf8 or s.rev2


def has_8bit_header(message: bytes) -> bool:
    """Any octet above 0x7F in the message's header fields."""
    header = split_message(message)[0]
    return any(b > 0x7F for b in header)


def _encoded_words(text: bytes) -> bytes:
    """*text* as RFC 2047 encoded-words ("B" encoding), cut only between characters; the
    space between adjacent encoded-words is dropped when they are decoded (RFC 2047 §6.2)."""
    try:
        chars = text.decode("utf-8")
        charset = b"UTF-8"
        pieces: list[bytes] = []
        current = b""
        for ch in chars:
            octets = ch.encode("utf-8")
            if len(current) + len(octets) > _CHUNK:
                pieces.append(current)
                current = b""
            current += octets
        pieces.append(current)
    except UnicodeDecodeError:
        # RFC 1428: octets of no known charset.
        charset = b"UNKNOWN-8BIT"
        pieces = [text[i:i + _CHUNK] for i in range(0, len(text), _CHUNK)]
    return b" ".join(b"=?" + charset + b"?B?" + base64.b64encode(p) + b"?=" for p in pieces)


def downgrade_header(header: bytes) -> bytes:
    """A surrogate of *header* in US-ASCII (RFC 6855 §7: a server may "create a surrogate of
    the message"): every run of words with 8-bit octets becomes RFC 2047 encoded-words, a
    quoted phrase as a whole; address fields are cut at their specials, so an address with
    UTF-8 in it stays recognisably one (though it cannot be replied to)."""
    out: list[bytes] = []
    field = b""
    for line in header.splitlines(keepends=True):
        if line[:1] not in (b" ", b"\t"):
            field = line.split(b":", 1)[0].strip().lower()
        if not any(b > 0x7F for b in line):
            out.append(line)
            continue
        name, sep, value = line.partition(b":") if line[:1] not in (b" ", b"\t") else (b"", b"", line)
        if field in _ADDRESS_FIELDS:
            value = _QUOTED_8BIT.sub(lambda m: _encoded_words(m.group(1)), value)
            value = _ADDRESS_RUN.sub(lambda m: _encoded_words(m.group(0)), value)
        else:
            value = _TEXT_RUN.sub(lambda m: _encoded_words(m.group(0)), value)
        out.append(name + sep + value)
    return b"".join(out)


def legacy_envelope(s: HandlerContext, header: bytes) -> bytes:
    """The ENVELOPE of *header* for a session that did not enable UTF-8.

    RFC 6855 §3: "The IMAP server MUST NOT send UTF-8 in quoted-strings to the client unless
    the client has indicated support for that syntax by using the "ENABLE UTF8=ACCEPT"
    command" (the formatter already sends 8-bit strings as literals); and RFC 6855 §7 leaves a
    server "hiding the problematic message(s), ... or somehow trying to create a surrogate of
    the message": this one gives a surrogate, with the UTF-8 in encoded-words."""
    if s.config.has_quirk("imap_utf8_quoted_to_legacy"):
        # quirk: raw UTF-8 in quoted strings to a client that did not enable UTF-8
        return _literals_quoted(envelope(header))
    if s.config.has_quirk("imap_utf8_raw_envelope_to_legacy"):
        return envelope(header)  # quirk: raw UTF-8 (in literals) to a legacy client
    return envelope(downgrade_header(header))


def _literals_quoted(data: bytes) -> bytes:
    """Quirk imap_utf8_quoted_to_legacy: each short literal of *data* as a quoted string."""
    out = bytearray()
    pos = 0
    for m in re.finditer(rb"\{(\d+)\}\r\n", data):
        if m.start() < pos:
            continue
        size = int(m.group(1))
        body = data[m.end():m.end() + size]
        out += data[pos:m.start()]
        if any(c in body for c in b'"\\\r\n'):
            out += data[m.start():m.end() + size]
        else:
            out += b'"' + body + b'"'
        pos = m.end() + size
    return bytes(out + data[pos:])
