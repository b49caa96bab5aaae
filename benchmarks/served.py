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


@contextlib.contextmanager
def served_topology() -> Iterator[Target]:
    """Start `mailharness serve` on free ports; yield its target; stop it (by its pid)."""
    work = Path(tempfile.mkdtemp(prefix="mailharness-bench-"))
    config = work / "serve.toml"
    config.write_text('standard_ports = false\ndns_port = 0\ndata_dir = "data"\n')
    target_file = work / "target.toml"
    process = subprocess.Popen(
        [sys.executable, "-m", "mailharness.cli", "serve", "--config", str(config),
         "--target-file", str(target_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not target_file.exists():
            if process.poll() is not None:
                raise RuntimeError(f"mailharness serve exited: {process.stderr.read() if process.stderr else ''}")
            if time.monotonic() > deadline:
                raise TimeoutError("mailharness serve did not start in time")
            time.sleep(0.05)
        yield load_target(target_file)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
        if process.stderr is not None:
            process.stderr.close()
        shutil.rmtree(work, ignore_errors=True)
