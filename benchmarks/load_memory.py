"""The memory of a long `mailharness load` run: is it flat?

The reference agents run in a process of their own (`mailharness serve`, benchmarks/served.py)
and the load generator in another (`mailharness load --target`), so that the generator's memory
is measured alone. Its resident set size (VmRSS) is sampled every few seconds; the result gives
the samples, the mean of the first and of the last minute, and the growth over the second half
of the run in MB per minute (a least-squares slope), beside the run's own figures.

    .venv/bin/python benchmarks/load_memory.py --duration 600 --json load-memory.json

What may grow, and what may not: a message is held from its 250 until it is found, then for
harness/load/ledger.DUPLICATE_WINDOW seconds (300) to see a second copy; everything else a
session or the run keeps is bounded (transcript rings, histograms, the per-mailbox UID and
mod-sequence tables). So after the first five minutes the generator's memory must stay flat."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.served import serve_process  # noqa: E402
from harness.targets import dump_target  # noqa: E402


def rss_mb(pid: int) -> float | None:
    """The resident set size of *pid* in MB (None once it has gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) points, in MB per minute."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_m = sum(m for _, m in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if not var:
        return 0.0
    return 60 * sum((t - mean_t) * (m - mean_m) for t, m in points) / var


def measure(duration: float, every: float, load_args: list[str]) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="mailharness-load-memory-"))
    target_file, results = work / "target.toml", work / "load.json"
    with serve_process(prefix="mailharness-load-memory-serve-") as (_, target):
        target_file.write_text(dump_target(target), encoding="utf-8")
        process = subprocess.Popen(
            [sys.executable, "-m", "mailharness.cli", "load", "--target", str(target_file),
             "--duration", str(duration), "--max-messages", "10000000", "--json", str(results),
             "--report", str(work / "load.html"), *load_args],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        started = time.monotonic()
        samples: list[tuple[float, float]] = []
        try:
            while process.poll() is None:
                mb = rss_mb(process.pid)
                if mb is not None:
                    samples.append((round(time.monotonic() - started, 1), round(mb, 2)))
                time.sleep(every)
            out = process.stdout.read() if process.stdout else ""
        finally:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGINT)
                process.wait(timeout=60)
    data = json.loads(results.read_text(encoding="utf-8")) if results.exists() else {}
    load_phase = [(t, m) for t, m in samples if t <= duration]
    first = [m for t, m in load_phase if t <= 60]
    last = [m for t, m in load_phase if t >= duration - 60]
    half = [(t, m) for t, m in load_phase if t >= duration / 2]
    return {
        "duration": duration,
        "exit_status": process.returncode,
        "summary": out.strip().splitlines(),
        "counts": data.get("counts", {}),
        "rss_mb": {
            "first_minute_mean": round(sum(first) / len(first), 2) if first else None,
            "last_minute_mean": round(sum(last) / len(last), 2) if last else None,
            "max": max((m for _, m in samples), default=None),
            "second_half_slope_mb_per_min": round(slope(half), 3),
        },
        "samples": samples,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("load_args", nargs="*", help="more `mailharness load` options, after --")
    args = parser.parse_args(argv)
    figures = measure(args.duration, args.every, args.load_args)
    text = json.dumps(figures, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    shown = {k: v for k, v in figures.items() if k != "samples"}
    print(json.dumps(shown, indent=2))
    return 0 if figures["exit_status"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
