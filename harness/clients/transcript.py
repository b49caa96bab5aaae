"""Transcripts: every byte a client sent and received, with direction and time, and their rendering."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

CLIENT = "C"
SERVER = "S"
NOTE = "*"

#: Entries longer than this are shortened by render() and to_dict() unless told otherwise.
DEFAULT_MAX_ENTRY = 4096

_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_AUTH_RE = re.compile(r"(?i)^(AUTH(?:ENTICATE)?\s+\S+)(\s.*)?$")


@dataclass(frozen=True, slots=True)
class TranscriptEntry:
    """One chunk on the wire (``"C"`` client to server, ``"S"`` server to client) or a note
    (``"*"``: TLS started, connection closed, timeout). ``timestamp`` is time.time()."""

    direction: str
    timestamp: float
    data: bytes


def _escape(text: str) -> str:
    return _CONTROL_RE.sub(lambda m: f"\\x{ord(m[0]):02x}", text)


def _shorten(data: bytes, max_bytes: int | None) -> tuple[bytes, int]:
    if max_bytes is None or len(data) <= max_bytes:
        return data, 0
    return data[:max_bytes], len(data) - max_bytes


class Transcript:
    """An append-only record of one connection (or one test's connections)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.entries: list[TranscriptEntry] = []

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return f"Transcript({self.name!r}) <{len(self.entries)} entries>"

    def _add(self, direction: str, data: bytes) -> None:
        self.entries.append(TranscriptEntry(direction, time.time(), bytes(data)))

    def client(self, data: bytes) -> None:
        """Bytes the client sent."""
        self._add(CLIENT, data)

    def server(self, data: bytes) -> None:
        """Bytes the client received."""
        self._add(SERVER, data)

    def note(self, text: str) -> None:
        """An event that is not data: connected, TLS started, closed, timed out."""
        self._add(NOTE, text.encode("utf-8"))

    def sent(self) -> bytes:
        """Everything the client sent, concatenated."""
        return b"".join(e.data for e in self.entries if e.direction == CLIENT)

    def received(self) -> bytes:
        """Everything the client received, concatenated."""
        return b"".join(e.data for e in self.entries if e.direction == SERVER)

    def to_dict(self, max_bytes: int | None = DEFAULT_MAX_ENTRY) -> dict[str, Any]:
        """JSON-ready form: {"name", "entries": [{"dir", "t", "data"}]}; data decoded as UTF-8
        with backslash escapes; entries over *max_bytes* are cut (None: never) and carry
        "omitted": the number of octets left out."""
        entries: list[dict[str, Any]] = []
        for entry in self.entries:
            data, omitted = _shorten(entry.data, max_bytes)
            item: dict[str, Any] = {
                "dir": entry.direction,
                "t": entry.timestamp,
                "data": data.decode("utf-8", errors="backslashreplace"),
            }
            if omitted:
                item["data"] += f"... [{omitted} more octets]"
                item["omitted"] = omitted
            entries.append(item)
        return {"name": self.name, "entries": entries}

    def render(
        self,
        max_bytes: int | None = DEFAULT_MAX_ENTRY,
        *,
        mask_auth: bool = False,
        timestamps: bool = False,
    ) -> str:
        """Human-readable, one line per wire line: ``C: EHLO x`` / ``S: 250 ok`` / ``* note``.

        Line ends are CRLF unless marked: a bare LF shows as ``[LF]``, a stray CR as ``\\r``,
        other control characters as ``\\xNN``.  *mask_auth* hides SASL credentials (the
        arguments after ``AUTH mechanism`` and client lines answering 334)."""
        out: list[str] = []
        in_auth = False
        start = self.entries[0].timestamp if self.entries else 0.0
        for entry in self.entries:
            stamp = f"[{entry.timestamp - start:8.3f}] " if timestamps else ""
            if entry.direction == NOTE:
                out.append(f"{stamp}* {entry.data.decode('utf-8', errors='backslashreplace')}")
                continue
            data, omitted = _shorten(entry.data, max_bytes)
            for raw_line in _wire_lines(data):
                text, ending = _split_line(raw_line)
                if mask_auth:
                    text, in_auth = _mask(entry.direction, text, in_auth)
                out.append(f"{stamp}{entry.direction}: {_escape(text.replace(chr(13), chr(92) + 'r'))}{ending}")
            if omitted:
                out.append(f"{stamp}{entry.direction}: ... [{omitted} more octets]")
        return "\n".join(out) + ("\n" if out else "")


def _wire_lines(data: bytes) -> list[bytes]:
    """*data* cut after every LF (CR alone does not end a line on the wire)."""
    lines = data.split(b"\n")
    out = [line + b"\n" for line in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1])
    return out


def _split_line(raw: bytes) -> tuple[str, str]:
    """(text, marker for a non-CRLF line end)."""
    if raw.endswith(b"\r\n"):
        body, ending = raw[:-2], ""
    elif raw.endswith(b"\n"):
        body, ending = raw[:-1], " [LF]"
    else:
        body, ending = raw, ""
    return body.decode("utf-8", errors="backslashreplace"), ending


def _mask(direction: str, text: str, in_auth: bool) -> tuple[str, bool]:
    if direction == CLIENT:
        m = _AUTH_RE.match(text)
        if m is not None:
            return (m[1] + (" ****" if m[2] else "")), True
        if in_auth:
            return "****", True
        return text, False
    if in_auth and not text.startswith("334"):
        return text, False
    return text, in_auth
