"""benchmarks/profile_serve.py: py-spy's raw stacks are counted by self time, per kind of
process."""

from __future__ import annotations

from pathlib import Path

from benchmarks.profile_serve import top_frames

MAIN = 'process 10:"python -m mailharness.cli serve"'
DELIVERY = 'process 11:"python -c from reference_agents.delivery import main"'
IMAP = 'process 12:"python -c from reference_agents.imapd.workers import main"'


def test_self_time_is_counted_per_kind_of_process(tmp_path: Path) -> None:
    raw = tmp_path / "profile.txt"
    raw.write_text("\n".join([
        f"{MAIN};run (a.py:1);fsync (d.py:27) 6",
        f"{MAIN};run (a.py:1) 2",
        f"{MAIN};{DELIVERY};loop (b.py:3);handshake (ssl.py:979) 3",
        f"{MAIN};{IMAP};receive (c.py:75) 1",
        "",
    ]))
    lines = top_frames(raw, 1).splitlines()
    assert lines[0] == "12 samples"
    assert lines[1] == "main: 8 samples (67 %)"
    assert lines[2].split() == ["6", "75.0", "%", "fsync", "(d.py:27)"]
    assert lines[3] == "delivery: 3 samples (25 %)"
    assert lines[4].split()[:2] == ["3", "100.0"] and "handshake" in lines[4]
    assert lines[5] == "imap: 1 samples (8 %)"
    assert len(lines) == 7  # --top 1: one frame per kind


def test_cpu_of_this_process_and_its_children_is_read_per_kind() -> None:
    """cpu_by_kind reads /proc: a child that burns CPU shows up under "main" (its command line
    names neither child module), and the report gives ms per message and the total."""
    import os
    import subprocess
    import sys

    from benchmarks.profile_serve import cpu_by_kind, cpu_report

    before = cpu_by_kind(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "import time\nt=time.process_time()\n"
                              "while time.process_time() - t < 0.3: pass\ninput()"],
                             stdin=subprocess.PIPE)
    try:
        import time

        deadline = time.monotonic() + 10
        while cpu_by_kind(os.getpid())["main"][0] - before["main"][0] < 0.25:
            assert time.monotonic() < deadline, "the child's CPU never showed"
            time.sleep(0.05)
        after = cpu_by_kind(os.getpid())
    finally:
        child.communicate(b"\n", timeout=10)
    report = cpu_report(before, after, (0.1, 0.0), 100,
                        {"accepted_seconds": 1.0, "visible_seconds": 2.0}).splitlines()
    assert report[0].startswith("100.0 msg/s accepted, 50.0 msg/s end to end")
    rows = {line.split()[0]: line.split() for line in report[2:]}
    assert set(rows) == {"main", "driver", "all"}
    assert float(rows["driver"][2]) == 1.0  # 0.1 CPU s over 100 messages
    assert float(rows["all"][1]) >= 0.35
