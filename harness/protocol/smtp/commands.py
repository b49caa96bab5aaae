"""SMTP commands formatted (client side), paths (RFC 5321 §4.1.2), dot-stuffing and the mail data reader."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from harness.protocol.errors import LocalProtocolError, RemoteProtocolError
from harness.protocol.smtp.grammar import ADDRESS_LITERAL, SUBDOMAIN
from harness.protocol.smtp.replies import CRLF, Reply

# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------

_VERB_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


def format_command(verb: str, *args: str) -> bytes:
    """``VERB arg arg CRLF``. Refuses CR or LF anywhere (they would smuggle another command)."""
    if not _VERB_RE.fullmatch(verb):
        raise LocalProtocolError(f"not a command verb: {verb!r}")
    for arg in args:
        if "\r" in arg or "\n" in arg:
            raise LocalProtocolError("CR or LF inside a command argument", arg.encode())
    return " ".join((verb, *args)).encode("utf-8") + CRLF


def check_command_line(line: str) -> bytes:
    """*line* (no CRLF) as wire bytes, refusing embedded CR or LF."""
    if "\r" in line or "\n" in line:
        raise LocalProtocolError("CR or LF inside a command line", line.encode())
    return line.encode("utf-8") + CRLF


def command_verb(line: str | bytes) -> str:
    """The upper-cased first word of a command line ("" for an empty line)."""
    if isinstance(line, bytes):
        line = line.decode("ascii", errors="replace")
    return line.strip().split(" ", 1)[0].upper()


def parse_ehlo_keywords(reply: Reply) -> dict[str, str]:
    """Service extensions from an EHLO reply (RFC 5321 §4.1.1.1 ehlo-line): upper-cased
    keyword -> its parameters as one string. The first line (the domain) is skipped."""
    extensions: dict[str, str] = {}
    for line in reply.lines[1:]:
        keyword, _, params = line.strip().partition(" ")
        if keyword:
            extensions[keyword.upper()] = params.strip()
    return extensions


# ---------------------------------------------------------------------------------------------
# Paths (RFC 5321 §4.1.2)
# ---------------------------------------------------------------------------------------------


class PathSyntaxError(RemoteProtocolError, ValueError):
    """A reverse- or forward-path that does not match RFC 5321 §4.1.2."""


_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_ATEXT_UTF8 = r"(?:[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]|[^\x00-\x7f])"
_SUBDOMAIN_UTF8 = r"(?:[A-Za-z0-9]|[^\x00-\x7f])(?:(?:[A-Za-z0-9-]|[^\x00-\x7f])*(?:[A-Za-z0-9]|[^\x00-\x7f]))?"
_QUOTED = r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"'
_QUOTED_UTF8 = r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|[^\x00-\x7f]|\\[\x20-\x7e])*"'


def _path_re(utf8: bool) -> re.Pattern[str]:
    atext = _ATEXT_UTF8 if utf8 else _ATEXT
    sub = _SUBDOMAIN_UTF8 if utf8 else SUBDOMAIN
    quoted = _QUOTED_UTF8 if utf8 else _QUOTED
    domain = rf"{sub}(?:\.{sub})*"
    local = rf"(?:{atext}+(?:\.{atext}+)*|{quoted})"
    mailbox = rf"{local}@(?:{domain}|{ADDRESS_LITERAL})"
    adl = rf"@{domain}(?:,@{domain})*"
    return re.compile(rf"<(?:{adl}:)?({mailbox})>")


_PATH_RE = _path_re(utf8=False)
_PATH_RE_UTF8 = _path_re(utf8=True)


def _check_ipv6_literal(mailbox: str) -> None:
    at = mailbox.rfind("@")
    domain = mailbox[at + 1 :]
    if domain.startswith("[IPv6:"):
        try:
            ipaddress.IPv6Address(domain[6:-1])
        except ValueError as exc:
            raise PathSyntaxError("bad IPv6 address literal", domain.encode()) from exc


def parse_path(text: str, *, utf8: bool = False, allow_null: bool = True) -> str:
    """The mailbox of a ``<...>`` path: "" for the null path ``<>``; a source route
    (A-d-l) is dropped (RFC 5321 §4.1.2 / Appendix C); ``<Postmaster>`` is accepted
    (RFC 5321 §4.1.1.3). *utf8* allows RFC 6531 UTF-8 addresses."""
    if text == "<>":
        if not allow_null:
            raise PathSyntaxError("null path not allowed here", text.encode())
        return ""
    if text.lower() == "<postmaster>":
        return text[1:-1]
    m = (_PATH_RE_UTF8 if utf8 else _PATH_RE).fullmatch(text)
    if m is None:
        raise PathSyntaxError("not a Path (RFC 5321 §4.1.2)", text.encode("utf-8", "replace"))
    mailbox = m[1]
    _check_ipv6_literal(mailbox)
    return mailbox


def format_path(address: str) -> str:
    """``<address>``; the empty string gives the null path ``<>``."""
    if any(c in address for c in "\r\n<>"):
        raise LocalProtocolError("CR, LF or angle bracket inside an address", address.encode())
    return f"<{address}>"


# ---------------------------------------------------------------------------------------------
# Dot-stuffing (RFC 5321 §4.5.2)
# ---------------------------------------------------------------------------------------------

END_OF_DATA = b"\r\n.\r\n"
_BARE_LF_RE = re.compile(rb"(?<!\r)\n")


def normalize_crlf(message: bytes) -> bytes:
    """Every line ends CRLF: bare LF becomes CRLF; a last line without CRLF gets one."""
    # As many LFs as CRLFs: no bare LF, nothing for the (costly) substitution to do.
    out = message if message.count(b"\n") == message.count(CRLF) else _BARE_LF_RE.sub(CRLF, message)
    if out and not out.endswith(CRLF):
        out += b"\n" if out.endswith(b"\r") else CRLF
    return out


def data_payload(message: bytes, *, stuff: bool = True) -> bytes:
    """What follows a 354: the CRLF-normalised message, dot-stuffed unless *stuff* is False
    (a deliberate violation for tests), then the final ``.CRLF``."""
    body = normalize_crlf(message)
    if stuff:
        # RFC 5321 §4.5.2: "Before sending a line of mail text, the SMTP client checks the first
        # character of the line.  If it is a period, one additional period is inserted at the
        # beginning of the line."
        if body.startswith(b"."):
            body = b"." + body
        body = body.replace(b"\r\n.", b"\r\n..")
    return body + b".\r\n"


def dot_stuff(message: bytes) -> bytes:
    """The DATA payload for *message*, including the terminating ``.CRLF`` (so the wire
    carries CRLF.CRLF after the last line)."""
    return data_payload(message, stuff=True)


def dot_unstuff(payload: bytes) -> bytes:
    """Inverse of dot_stuff for a payload without its final ``.CRLF``: one leading period is
    removed from every line (lines end CRLF only)."""
    # RFC 5321 §4.5.2: "If the first character is a period and there are other characters on the
    # line, the first character is deleted."
    out = payload[1:] if payload.startswith(b".") else payload
    return out.replace(b"\r\n.", b"\r\n")


@dataclass(frozen=True, slots=True)
class DataComplete:
    """End of mail data reached. ``message`` is empty when ``overflow`` (more than max_size
    octets arrived; the server should answer 552); ``size`` counts every unstuffed octet;
    ``leftover`` holds bytes after the end marker (pipelined commands)."""

    message: bytes
    size: int
    overflow: bool
    leftover: bytes


class DataReader:
    """Incremental receiver of mail data after 354 (server side).

    Only ``CRLF . CRLF`` ends the data; bare-LF variants are message content.  Memory is
    bounded by *max_size* plus one CR: past the limit the content is discarded while the
    reader keeps looking for the end marker, so the session can continue with 552."""

    def __init__(self, max_size: int | None = None) -> None:
        self._max_size = max_size
        self._out = bytearray()
        self._pending = bytearray()
        self._at_line_start = True
        self._size = 0
        self._overflow = False
        self._done = False

    @property
    def size(self) -> int:
        return self._size

    @property
    def overflow(self) -> bool:
        return self._overflow

    @property
    def done(self) -> bool:
        return self._done

    def _emit(self, chunk: bytes | bytearray) -> None:
        self._size += len(chunk)
        if self._overflow:
            return
        if self._max_size is not None and self._size > self._max_size:
            self._overflow = True
            self._out = bytearray()
            return
        self._out += chunk

    def feed(self, data: bytes) -> DataComplete | None:
        if self._done:
            raise LocalProtocolError("DataReader already saw the end of data", data)
        pending = self._pending
        pending += data
        while pending:
            if self._at_line_start:
                if len(pending) < 3 and b".\r\n".startswith(bytes(pending)):
                    return None
                if pending.startswith(b".\r\n"):
                    self._done = True
                    leftover = bytes(pending[3:])
                    self._pending = bytearray()
                    return DataComplete(
                        b"" if self._overflow else bytes(self._out),
                        self._size,
                        self._overflow,
                        leftover,
                    )
                if pending.startswith(b"."):
                    del pending[:1]
                self._at_line_start = False
                continue
            end = pending.find(CRLF)
            if end >= 0:
                self._emit(pending[: end + 2])
                del pending[: end + 2]
                self._at_line_start = True
                continue
            keep = 1 if pending.endswith(b"\r") else 0
            self._emit(pending[: len(pending) - keep])
            del pending[: len(pending) - keep]
            return None
        return None

