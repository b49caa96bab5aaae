"""The reference agents in a process of their own (`mailharness serve`), for benchmarks.

A benchmark that ran the servers on a thread of its own process would share one interpreter
lock with the load it generates and measure both at once."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from harness.targets import Target, load_target

START_TIMEOUT = 60.0


class ServeProcess:
    """`mailharness serve` on free ports over the data directory ``work/data``, started and
    stopped (or killed) by its pid, as often as asked: the data directory outlives each run."""

    def __init__(self, work: Path, extra_config: str = "") -> None:
        self.work = work
        self.config = work / "serve.toml"
        self.config.write_text('standard_ports = false\ndns_port = 0\ndata_dir = "data"\n'
                               + extra_config)
        self.target_file = work / "target.toml"
        #: Its standard error, appended to over every run (a pipe nobody reads would block it
        #: once full).
        self.log_file = work / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self.work / "data"

    def start(self) -> Target:
        """Start it and wait for its target file (written once every listener is up)."""
        self.target_file.unlink(missing_ok=True)
        with self.log_file.open("ab") as log:
            start = log.tell()
            self.process = subprocess.Popen(
                # The server log at warning: the benchmarks measure the agents, not their log
                # (one line per session event at info), as they did before serve had one.
                [sys.executable, "-m", "mailharness.cli", "serve", "--config", str(self.config),
                 "--target-file", str(self.target_file), "--log-level", "warning"],
                stdout=subprocess.DEVNULL, stderr=log,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not self.target_file.exists():
            if self.process.poll() is not None:
                with self.log_file.open("rb") as log:
                    log.seek(start)
                    error = log.read().decode("utf-8", "replace").strip()
                raise RuntimeError(f"mailharness serve exited: {error}")
            if time.monotonic() > deadline:
                raise TimeoutError("mailharness serve did not start in time")
            time.sleep(0.05)
        return load_target(self.target_file)

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind, as a crash or a power cut would leave it."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._forget()

    def stop(self) -> None:
        """SIGINT, as Ctrl-C: a clean shutdown (SIGKILL after 30 s)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._forget()

    def _forget(self) -> None:
        self.process = None


@contextlib.contextmanager
def serve_process(extra_config: str = "", prefix: str = "mailharness-bench-"
                  ) -> Iterator[tuple[ServeProcess, Target]]:
    """Start `mailharness serve` on free ports in a fresh work directory (with *extra_config*
    lines in its TOML); yield it and its target; stop it (by its pid) and remove the directory."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    served = ServeProcess(work, extra_config)
    try:
        yield served, served.start()
    finally:
        served.stop()
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def served_topology() -> Iterator[Target]:
    """Start `mailharness serve` on free ports; yield its target; stop it (by its pid)."""
    with serve_process() as (_, target):
        yield target
