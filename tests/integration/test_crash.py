"""SIGKILL during mail flow and IMAP work (benchmarks/crash.py, 10 rounds here; the benchmark
runs 100): nothing acknowledged is lost or corrupted, no acknowledged EXPUNGE is undone,
UIDVALIDITY holds, and duplicates come only from the one window SMTP leaves open (a next hop's
250 not yet recorded when the process dies): a kill can catch at most the relay transactions in
flight (the outbound worker's concurrency), and over the run they stay well under 2 % of the
acknowledged messages, on a machine the other tests load too. `benchmarks/crash.py`, on a quiet
machine, holds them under 0.5 %."""

from __future__ import annotations

from pathlib import Path

from benchmarks.crash import run
from reference_agents.outbound import DEFAULT_CONCURRENCY

ROUNDS = 10


def test_sigkill_loses_nothing_acknowledged(tmp_path: Path) -> None:
    figures, ledger, validity_held = run(ROUNDS, seed=7, senders=3, work=tmp_path)
    total = {k: sum(getattr(f, k) for f in figures)
             for k in ("acknowledged", "appended", "lost", "duplicated", "corrupt", "resurrected")}
    shown = f"{total}; {ledger.problems[:10]}"
    assert total["acknowledged"] > 5 * ROUNDS and total["appended"] > ROUNDS, shown
    assert total["lost"] == 0 and total["corrupt"] == 0 and total["resurrected"] == 0, shown
    assert validity_held, shown
    assert all(f.duplicated <= DEFAULT_CONCURRENCY for f in figures), shown
    assert total["duplicated"] <= 0.02 * total["acknowledged"], shown
    assert all(p.startswith("duplicated:") for p in ledger.problems), shown
