"""The server log of the reference agents: one line per session event, for a person debugging a
client against `mailharness serve`.

Four loggers, one per area:

- ``mailharness.smtp``: connect, TLS, AUTH (the mechanism and the account, never a secret),
  each refused MAIL or RCPT, each transaction's envelope and outcome, disconnect;
- ``mailharness.queue``: queued, attempt, deferred with the reason, delivered, bounced;
- ``mailharness.mda``: each local delivery with its mailbox and spam verdict;
- ``mailharness.imap``: connect, TLS, logins, mailbox selections, disconnect.

At ``debug`` each SMTP and IMAP command is logged too (with its reply's code or status; AUTH,
LOGIN and AUTHENTICATE arguments left out). Nothing is configured unless `configure` is called
(`serve` does; the pytest plugin does not), so the agents embedded in a test run stay quiet and
cost only the logging module's level check.

A client that goes away mid-handshake or resets the connection is one line: an exception of
those kinds is never printed as a traceback (`OneLineFormatter`); an exception of any other kind
is a fault of the agents, and keeps its traceback."""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import ssl
import sys
import threading
from pathlib import Path
from typing import IO

SMTP_LOG = logging.getLogger("mailharness.smtp")
QUEUE_LOG = logging.getLogger("mailharness.queue")
MDA_LOG = logging.getLogger("mailharness.mda")
IMAP_LOG = logging.getLogger("mailharness.imap")

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR}
#: How `serve` hands its log settings to the agents' child processes: "LEVEL" or "LEVEL:FILE".
ENVIRONMENT = "MAILHARNESS_LOG"
#: Loggers the handler is attached to: the four above, the agents' own (errors, process
#: supervision) and asyncio's.
_ROOTS = ("mailharness", "reference_agents", "asyncio")
#: Exceptions that a client causes by going away: one line, no traceback.
CLIENT_ABORTS: tuple[type[BaseException], ...] = (ssl.SSLError, ConnectionError, TimeoutError,
                                                 EOFError)


class OneLineFormatter(logging.Formatter):
    """``2026-12-05 10:00:00.123 smtp  message``; a client-abort exception joins the line."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s.%(msecs)03d %(area)-5s %(message)s", "%Y-%m-%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        name = record.name
        record.area = name.removeprefix("mailharness.") if name.startswith("mailharness.") else (
            "error" if record.levelno >= logging.ERROR else name.split(".")[-1])
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, CLIENT_ABORTS):
            record = logging.makeLogRecord(record.__dict__)
            record.msg = f"{record.getMessage()}: {describe(exc)}"
            record.args = None
            record.exc_info = record.exc_text = None
        return super().format(record)


def describe(exc: BaseException) -> str:
    """One line for a client abort: its kind and reason (``TLS: CERTIFICATE_UNKNOWN``)."""
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {getattr(exc, 'reason', None) or exc.strerror or exc}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


class BackgroundHandler(logging.Handler):
    """Formats a record in the thread that logs it and hands the line to a writer thread
    through a bounded queue, so that a slow or blocked reader of the log (a terminal scrolled
    back, a pipe nobody drains) never stalls the agents: past *capacity* lines waiting, a line
    is dropped and counted, and the count is written once the writer catches up."""

    def __init__(self, stream: IO[str], capacity: int = 10_000, *, owns_stream: bool = False
                 ) -> None:
        super().__init__()
        self._stream, self._owns_stream, self._closed = stream, owns_stream, False
        self._lines: queue.Queue[str | None] = queue.Queue(capacity)
        self._dropped = 0
        self._lock = threading.Lock()
        self._writer = threading.Thread(target=self._write, name="mailharness-log", daemon=True)
        self._writer.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # noqa: BLE001 - a record that does not format is not worth a crash
            self.handleError(record)
            return
        try:
            self._lines.put_nowait(line)
        except queue.Full:
            with self._lock:
                self._dropped += 1

    def _write(self) -> None:
        while (line := self._lines.get()) is not None:
            with self._lock:
                dropped, self._dropped = self._dropped, 0
            try:
                if dropped:
                    self._stream.write(f"... {dropped} log lines dropped: the log was not read "
                                       "fast enough\n")
                self._stream.write(line + "\n")
                self._stream.flush()
            except (OSError, ValueError):
                return  # the log's file or pipe is gone: nothing more can be said

    def close(self) -> None:
        """Write what is queued, waiting a second at most (a reader that stopped reading must
        not hold the process at exit)."""
        with contextlib.suppress(queue.Full):
            self._lines.put(None, timeout=1.0)
        self._writer.join(timeout=1.0)
        super().close()


def configure(level: str = "info", file: Path | None = None) -> None:
    """Send the agents' log to *file* (appended) or standard error at *level*, in this process
    and (through the environment) in the child processes it starts."""
    if level not in LEVELS:
        raise ValueError(f"log level {level!r}: expected one of {', '.join(LEVELS)}")
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        # Line buffered and appending: lines of several processes interleave whole.
        stream: IO[str] = open(file, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
    else:
        stream = sys.stderr
    handler = BackgroundHandler(stream, owns_stream=file is not None)
    handler.setFormatter(OneLineFormatter())
    for name in _ROOTS:
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            if getattr(old, "_mailharness", False):
                logger.removeHandler(old)
                old.close()
        setattr(handler, "_mailharness", True)  # noqa: B010 - a mark on a stdlib object
        logger.addHandler(handler)
        logger.propagate = False
        # asyncio's own warnings (slow callbacks in debug mode...) only from "warning" up.
        logger.setLevel(max(LEVELS[level], logging.WARNING) if name == "asyncio" else LEVELS[level])
    os.environ[ENVIRONMENT] = level if file is None else f"{level}:{file.resolve()}"


def configure_from_environment() -> None:
    """In a child process: the log settings of the `serve` that started it, if any."""
    value = os.environ.get(ENVIRONMENT)
    if not value:
        return
    level, _, file = value.partition(":")
    try:
        configure(level, Path(file) if file else None)
    except (ValueError, OSError):
        configure("info")


def peer_text(peer: object) -> str:
    """``127.0.0.1:40000`` for a socket's peer address (``?`` when unknown)."""
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return "?"


def tls_text(ssl_object: object) -> str:
    """``TLSv1.3 TLS_AES_256_GCM_SHA384`` for an established TLS connection."""
    if isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        cipher = ssl_object.cipher()
        return f"{ssl_object.version()} {cipher[0] if cipher else '?'}"
    return "TLS"
