"""benchmarks/load_ceiling.py runs: its generator gets messages through the sink, and commands
through the trivial IMAP responder, and the JSON has every figure."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "load_ceiling.py"


def test_the_ceiling_benchmark_reports_a_rate_and_the_generators_cpu() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--smtp", "--seconds", "1",
                           "--sessions", "2"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    match = re.search(r"2 sessions:\s+([\d.]+) msg/s, generator CPU ([\d.]+) ms/msg", done.stdout)
    assert match is not None, done.stdout
    assert float(match.group(1)) > 10 and float(match.group(2)) > 0
    assert "errors" not in done.stdout and "IMAP" not in done.stdout


def test_the_imap_ceiling_reports_commands_per_second_for_each_driver(tmp_path: Path) -> None:
    results = tmp_path / "ceiling.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--imap", "--seconds", "1",
                           "--imap-sessions", "1", "2", "--json", str(results)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "errors" not in done.stdout, done.stdout
    data = json.loads(results.read_text())
    assert "smtp" not in data and data["benchmark"] == "load_ceiling"
    assert {(r["driver"], r["sessions"]) for r in data["imap"]} == {
        ("client", 1), ("client", 2), ("reader", 1), ("reader", 2)}
    for figures in data["imap"]:
        assert set(figures) >= {"commands", "seconds", "commands_per_second",
                                "generator_cpu_ms_per_command", "generator_core_percent",
                                "server_core_percent", "errors"}
        assert figures["commands"] > 0 and figures["commands_per_second"] > 0
        assert figures["generator_cpu_ms_per_command"] > 0 and figures["errors"] == {}
    assert not any(r["violations"] for r in data["imap"] if r["driver"] == "reader")
    assert re.search(r"client\s+2 sessions:\s+[\d.]+ commands/s, generator CPU [\d.]+ ms/command",
                     done.stdout), done.stdout
