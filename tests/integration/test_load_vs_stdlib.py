"""benchmarks/load_vs_stdlib.py runs: a round of each driver against the embedded reference
agents, and the JSON has every figure (the ratio is the benchmark's to judge, not a test's)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "load_vs_stdlib.py"


def test_one_round_of_each_driver_gives_positive_figures_and_a_ratio(tmp_path: Path) -> None:
    results = tmp_path / "vs.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--rounds", "1", "--messages", "8",
                           "--sessions", "2", "--imap-sessions", "2", "--imap-seconds", "0.5",
                           "--mailbox-messages", "3", "--json", str(results)],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(results.read_text())
    assert data["benchmark"] == "load_vs_stdlib" and data["agents"] == "embedded"
    for workload, unit in (("submission", "messages_per_second"),
                           ("imap", "commands_per_second")):
        figures = data[workload]
        assert set(figures) >= {"rounds", "ours_median", "stdlib_median", "ratio",
                                "within_10_percent", "sessions"}
        item = unit.split("_")[0][:-1]
        for driver in ("ours", "stdlib"):
            (one,) = figures["rounds"][driver]  # the warm-up round is not counted
            assert one["round"] == 1 and one[unit] > 0 and one["seconds"] > 0
            assert one[f"cpu_ms_per_{item}"] > 0
        assert set(figures[unit]) == {"ours_median", "stdlib_median", "ratio"}
        assert figures[f"cpu_ms_per_{item}"]["ratio"] > 0
        assert figures["ours_median"] > 0 and figures["stdlib_median"] > 0
        assert figures["ratio"] > 0 and isinstance(figures["within_10_percent"], bool)
    assert [r["messages"] for d in ("ours", "stdlib")
            for r in data["submission"]["rounds"][d]] == [8, 8]
    assert data["imap"]["mailbox_messages"] == 3
    assert "ratio ours/stdlib" in done.stdout
