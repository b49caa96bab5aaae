"""Measuring the reference agents beside Postfix and Dovecot in one run, with one driver.

A benchmark here runs each workload in *worker* processes, one per server: the reference
agents' worker starts ``mailharness serve`` on this host; the independent servers' worker runs
inside the network namespace of ``servers/netns.sh``, where ``servers/run_independent.py``
starts Postfix and Dovecot as ``.ci/independent`` does. The driver asks the workers in turn,
one round each, so the noise of a shared machine falls on both alike, and prints the ratio.

The protocol between driver and worker is one JSON object per line: the worker says
``{"ready": ...}`` once set up, then answers each request line (a JSON object naming the
workload) with the figures it measured, and ends at ``quit`` or end of input.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent
LOCK = Path("/tmp/mailharness-independent.lock")
NETNS = REPO / "servers" / "netns.sh"
INDEPENDENT = REPO / "servers" / "run_independent.py"


def reply(value: dict[str, Any]) -> None:
    """A worker's answer: one JSON line on stdout."""
    print(json.dumps(value), flush=True)


def requests() -> Iterator[dict[str, Any]]:
    """A worker's requests, one JSON line each, until ``quit`` or end of input."""
    for line in sys.stdin:
        line = line.strip()
        if not line or line == "quit":
            return
        value = json.loads(line)
        if not isinstance(value, dict):
            raise ValueError(f"a request is a JSON object, not {line!r}")
        yield value


class Worker:
    """One worker process (*command*), spoken to over its pipes."""

    def __init__(self, label: str, command: list[str]) -> None:
        self.label = label
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, cwd=REPO)

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.label}: the worker ended (exit {self.process.wait()})")
        value = json.loads(line)
        if not isinstance(value, dict):
            raise RuntimeError(f"{self.label}: not a JSON object: {line!r}")
        return value

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self.read()

    def finish(self) -> None:
        with contextlib.suppress(BrokenPipeError, ValueError):
            assert self.process.stdin is not None
            self.process.stdin.write("quit\n")
            self.process.stdin.close()
        try:
            self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()  # our own child, by its pid
            self.process.wait()


def independent_missing() -> str:
    """Why Postfix and Dovecot cannot be measured here ("" when they can)."""
    if os.geteuid() != 0:
        return "not root (the network namespace needs it)"
    for tool in ("dovecot", "postconf", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (.ci/independent installs the packages)"
    return ""


@contextlib.contextmanager
def independent_servers() -> Iterator[Path]:
    """The namespace and the independent servers, as .ci/independent makes them; yields the
    target file; stops what it started. Holds LOCK meanwhile: one user of the namespace at a
    time."""
    work = Path(tempfile.mkdtemp(prefix="mailharness-bench-independent-"))
    lock: IO[str] = LOCK.open("a")
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        subprocess.run([str(NETNS), "up"], check=True, stdout=subprocess.DEVNULL)
        try:
            subprocess.run([str(NETNS), "exec", sys.executable, str(INDEPENDENT), "start",
                            str(work)], check=True, stdout=subprocess.DEVNULL)
            try:
                yield work / "target.toml"
            finally:
                subprocess.run([str(NETNS), "exec", sys.executable, str(INDEPENDENT), "stop",
                                str(work)], check=False, stdout=subprocess.DEVNULL)
        finally:
            subprocess.run([str(NETNS), "down"], check=False, stdout=subprocess.DEVNULL)
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()
        shutil.rmtree(work, ignore_errors=True)


def start_worker(label: str, script: Path, arguments: list[str], *,
                 target_file: Path | None = None) -> tuple[Worker, dict[str, Any]]:
    """Start *script* ``worker ARGUMENTS`` (in the namespace, against *target_file*, when
    given); wait for its ``ready`` line and return it with the worker."""
    prefix = [str(NETNS), "exec"] if target_file is not None else []
    extra = ["--target", str(target_file)] if target_file is not None else []
    worker = Worker(label, [*prefix, sys.executable, str(script), "worker", *arguments, *extra])
    return worker, worker.read()
