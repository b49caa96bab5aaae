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
