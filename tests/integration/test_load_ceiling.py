"""benchmarks/load_ceiling.py runs, and its generator gets messages through the sink."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "load_ceiling.py"


def test_the_ceiling_benchmark_reports_a_rate_and_the_generators_cpu() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--seconds", "1", "--sessions", "2"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    match = re.search(r"2 sessions:\s+([\d.]+) msg/s, generator CPU ([\d.]+) ms/msg", done.stdout)
    assert match is not None, done.stdout
    assert float(match.group(1)) > 10 and float(match.group(2)) > 0
    assert "errors" not in done.stdout
