"""The server log's handler: a reader that stops reading never stalls the agents (lines past the
queue's capacity are dropped and counted, and exit is not held up), and a client abort is one
line where a fault of the agents keeps its traceback."""

from __future__ import annotations

import io
import logging
import re
import ssl
import threading
import time

from reference_agents.serverlog import BackgroundHandler, OneLineFormatter


class Stuck(io.StringIO):
    """A stream whose writes block until released (a pipe nobody drains)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def write(self, text: str) -> int:
        self.release.wait()
        return super().write(text)


def _record(message: str, exc: BaseException | None = None) -> logging.LogRecord:
    info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("mailharness.smtp", logging.INFO, __file__, 1, message, None, info)


def test_a_stuck_reader_never_blocks_the_logger_and_drops_are_counted() -> None:
    stream = Stuck()
    handler = BackgroundHandler(stream, capacity=10)
    handler.setFormatter(OneLineFormatter())
    started = time.monotonic()
    for i in range(1000):
        handler.emit(_record(f"line {i}"))
    assert time.monotonic() - started < 1.0
    stream.release.set()
    deadline = time.monotonic() + 5
    while "line 9\n" not in stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    handler.emit(_record("after"))
    while "after" not in stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    text = stream.getvalue()
    assert "after" in text
    kept = [line for line in text.splitlines() if " smtp  line " in line]
    dropped = sum(int(m) for m in re.findall(r"^\.\.\. (\d+) log lines dropped", text, re.M))
    assert len(kept) + dropped == 1000 and dropped >= 900, text[:500]
    handler.close()


def test_close_does_not_wait_for_a_reader_that_never_reads() -> None:
    handler = BackgroundHandler(Stuck(), capacity=5)
    for i in range(20):
        handler.emit(_record(f"line {i}"))
    started = time.monotonic()
    handler.close()
    assert time.monotonic() - started < 3.0


def test_client_aborts_are_one_line_and_faults_keep_their_traceback() -> None:
    formatter = OneLineFormatter()
    try:
        raise ssl.SSLError(1, "[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca")
    except ssl.SSLError as exc:
        abort = formatter.format(_record("example.org submission 127.0.0.1:1 disconnect", exc))
    assert "\n" not in abort and abort.endswith("disconnect: TLS: [SSL: TLSV1_ALERT_UNKNOWN_CA] "
                                                "tlsv1 alert unknown ca")
    try:
        raise KeyError("a bug")
    except KeyError as exc:
        fault = formatter.format(_record("internal error", exc))
    assert "Traceback" in fault and "KeyError" in fault
