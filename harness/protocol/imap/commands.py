"""IMAP command grammar, server side (RFC 9051 §6, §9): the incremental command reader, and
the one import point of the typed values, the parser and the formatter."""

from __future__ import annotations

import re

from harness.protocol.imap.command_format import format_command
from harness.protocol.imap.command_parser import (
    COMMAND_NAMES,
    normalise_mailbox,
    parse_command,
    parse_command_body,
)
from harness.protocol.imap.command_values import (
    Append,
    AppendMessage,
    Authenticate,
    CatPart,
    Command,
    CommandArgs,
    Compress,
    Copy,
    Enable,
    Event,
    Fetch,
    FetchItem,
    Id,
    InvalidCommand,
    ListArgs,
    LiteralTooLarge,
    Login,
    MailboxArg,
    NeedContinuation,
    Notify,
    NotifyGroup,
    QResync,
    QuotaRoot,
    Rename,
    Search,
    SearchAll,
    SearchAnd,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchModseq,
    SearchNot,
    SearchObjectId,
    SearchOr,
    SearchSet,
    SearchSize,
    SearchText,
    Section,
    SetQuota,
    Sort,
    Status,
    Store,
    Thread,
    UidExpunge,
)
from harness.protocol.imap.lexer import extract_tag

__all__ = [
    "COMMAND_NAMES", "Append", "AppendMessage", "Authenticate", "CatPart", "Command", "CommandArgs",
    "CommandReader", "Compress", "Copy",
    "Enable", "Event", "Fetch", "FetchItem", "Id", "InvalidCommand", "ListArgs",
    "LiteralTooLarge", "Login", "MailboxArg", "NeedContinuation", "Notify", "NotifyGroup", "QResync", "Rename", "Search",
    "SearchAll", "SearchAnd", "SearchDate", "SearchFlag", "SearchHeader", "SearchKey",
    "SearchModseq", "SearchNot", "SearchObjectId", "SearchOr", "SearchSet", "SearchSize",
    "SearchText", "Section", "QuotaRoot", "SetQuota", "Sort", "Status", "Store", "Thread",
    "UidExpunge", "format_command", "normalise_mailbox", "parse_command",
]

# ---------------------------------------------------------------------------------------------
# Incremental reader
# ---------------------------------------------------------------------------------------------

_LITERAL_AT_END = re.compile(rb"\{(\d{1,20})(\+?)\}\r\n\Z")


class CommandReader:
    """Cuts the client's byte stream into commands, bounded in memory.

    A line longer than ``max_line`` is answered with :class:`InvalidCommand` as soon as it
    exceeds the limit and is then discarded up to its CRLF without being buffered. A literal
    over ``max_literal`` (or that would take the command over ``max_line + max_literal``) is
    refused with :class:`LiteralTooLarge` before any of its octets are read."""

    def __init__(self, max_line: int = 65536, max_literal: int = 10 * 1024 * 1024) -> None:
        self.max_line = max_line
        #: May be changed between commands (a server allows larger literals once the client
        #: has authenticated).
        self.max_literal = max_literal
        self._buf = bytearray()
        self._cmd = bytearray()  # the command so far (lines and literals)
        self._literal_left = 0  # octets of an accepted literal still to read into _cmd
        self._discard_left = 0  # octets of a refused literal+ still to drop
        self._skip_line = False  # drop input up to the next LF
        self._skip_command = False  # after a refused literal+: drop the rest of the command
        self._non_sync = False  # the command being read has a non-synchronizing literal
        #: Whether the last command returned by :meth:`next_event` had a non-synchronizing
        #: literal (RFC 7888).
        self.last_had_non_sync_literal = False

    @property
    def _max_command(self) -> int:
        return self.max_line + self.max_literal

    @property
    def buffered(self) -> int:
        """Octets received but not yet consumed."""
        return len(self._buf)

    def feed(self, data: bytes) -> None:
        self._buf += data

    def discard_pending(self) -> None:
        """Drop everything received so far (RFC 9051 §6.2.1: after the STARTTLS OK, input
        received before the TLS negotiation must not be treated as a command)."""
        self._buf.clear()
        self._reset()

    def _reset(self) -> None:
        self._cmd.clear()
        self._literal_left = 0
        self._non_sync = False

    def pending_command(self) -> bytes:
        """The octets of a command still being read (lines and literal octets so far)."""
        return bytes(self._cmd)

    def next_line(self) -> bytes | None:
        """One raw line without its CRLF, for IDLE's DONE and AUTHENTICATE responses; None when
        no complete line is buffered. A line over ``max_line`` comes back cut at the limit (the
        rest is discarded)."""
        idx = self._buf.find(b"\n", 0, self.max_line + 2)
        if idx < 0:
            if len(self._buf) > self.max_line:
                line = bytes(self._buf[: self.max_line])
                self._buf.clear()
                self._skip_line = True
                return line
            return None
        line = bytes(self._buf[:idx + 1])
        del self._buf[: idx + 1]
        if self._skip_line:
            self._skip_line = False
            return self.next_line()
        return line.rstrip(b"\r\n")

    def next_event(self) -> Event | None:
        while True:
            if self._discard_left:
                n = min(self._discard_left, len(self._buf))
                del self._buf[:n]
                self._discard_left -= n
                if self._discard_left:
                    return None
                # The rest of the refused command follows the literal: skip it too.
                self._skip_line = True
                self._skip_command = True
                continue
            if self._literal_left:
                n = min(self._literal_left, len(self._buf))
                self._cmd += self._buf[:n]
                del self._buf[:n]
                self._literal_left -= n
                if self._literal_left:
                    return None
                continue
            if self._skip_line:
                idx = self._buf.find(b"\n")
                if idx < 0:
                    self._buf.clear()
                    return None
                line = bytes(self._buf[: idx + 1])
                del self._buf[: idx + 1]
                self._skip_line = False
                if self._skip_command:
                    m = _LITERAL_AT_END.search(line)
                    if m is not None and m.group(2):
                        self._discard_left = int(m.group(1))
                        continue
                    self._skip_command = False
                continue
            idx = self._buf.find(b"\n", 0, self.max_line + 2)
            if idx < 0:
                if len(self._buf) > self.max_line:
                    tag = extract_tag(bytes(self._cmd or self._buf[:256]))
                    self._buf.clear()
                    self._reset()
                    self._skip_line = True
                    return InvalidCommand(tag, "line too long")
                return None
            line = bytes(self._buf[: idx + 1])
            del self._buf[: idx + 1]
            if not line.endswith(b"\r\n"):
                tag = extract_tag(bytes(self._cmd) or line)
                self._reset()
                # RFC 9051 §2.2: "All interactions ... are in the form of lines, that is,
                # strings that end with a CRLF."
                return InvalidCommand(tag, "line must end with CRLF")
            if len(self._cmd) + len(line) > self._max_command:
                tag = extract_tag(bytes(self._cmd))
                self._reset()
                return InvalidCommand(tag, "command too long")
            self._cmd += line
            m = _LITERAL_AT_END.search(line)
            if m is None:
                data = bytes(self._cmd[:-2])
                self.last_had_non_sync_literal = self._non_sync
                self._reset()
                return parse_command_body(data)
            size = int(m.group(1))
            non_sync = bool(m.group(2))
            if size > self.max_literal or len(self._cmd) + size > self._max_command:
                tag = extract_tag(bytes(self._cmd))
                self._reset()
                if non_sync:
                    self._discard_left = size
                    if size == 0:
                        self._skip_line = True
                        self._skip_command = True
                return LiteralTooLarge(tag, size, non_sync)
            self._literal_left = size
            self._non_sync = self._non_sync or non_sync
            if not non_sync:
                return NeedContinuation(size)
