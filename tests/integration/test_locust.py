"""Locust users spread over processes (harness/load/locust_users.py): the embedded reference
agents, their target file, a Locust master and two workers on loopback, each a process of its
own (benchmarks/locust_ci.py). Messages sent on one worker are read on the other, and the
master's merged verdict still holds every accepted message to account; with the agents losing
mail after the 250, it names HANDOFF-RESPONSIBILITY and nothing else."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from benchmarks.locust_ci import run_locust, write_target_file
from mailharness.embedded import embedded_target

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("locust") is None,
                       reason="Locust is not installed (pip install 'mailharness[load]')"),
    pytest.mark.timeout(120),
]


def test_a_master_and_two_workers_merge_one_verdict(tmp_path: Path) -> None:
    with embedded_target(prefix="mailharness-locust-test-") as target:
        write_target_file(target, tmp_path / "target.toml")
        run = run_locust(tmp_path / "target.toml", tmp_path, workers=2, users=6, run_time=6)
    assert run.results is not None, run.tail()
    data, counts = run.results, run.results["counts"]
    assert counts["accepted"] > 0 and counts["delivered"] == counts["accepted"], run.tail()
    assert counts["violations"] == 0 and data["violations"] == [], data["violations"][:3]
    assert counts["duplicates"] == 0 and counts["refused"] == 0
    workers = data["workers"]
    assert data["distributed"]["workers"] == 2 and len(workers) == 2
    assert all(w["accepted"] + w["found"] > 0 for w in workers.values()), workers
    assert sum(w["accepted"] for w in workers.values()) == counts["accepted"]
    assert sorted(w["index"] for w in workers.values()) == [0, 1]
    assert data["distributed"]["crossed"] > 0  # read on another worker than the sender's
    assert data["latency"]["delivery"]["count"] == counts["accepted"]
    assert data["histograms"]["imap"]["count"] > 0
    assert run.returncodes == {"master": 0 if not counts["errors"] else 1,
                               "worker 1": 0, "worker 2": 0}, run.tail()
    assert "load: no invariant violated" in run.logs["master"]


def test_mail_lost_after_the_250_is_named_across_workers(tmp_path: Path) -> None:
    with embedded_target(quirks=["mta_lose_after_accept"],
                         prefix="mailharness-locust-test-") as target:
        write_target_file(target, tmp_path / "target.toml")
        run = run_locust(tmp_path / "target.toml", tmp_path, workers=2, users=6, run_time=4,
                         delivery_timeout=2)
    assert run.results is not None, run.tail()
    data, counts = run.results, run.results["counts"]
    assert counts["accepted"] > 0 and counts["delivered"] == 0, run.tail()
    assert set(data["violation_counts"]) == {"HANDOFF-RESPONSIBILITY"}
    assert data["violation_counts"]["HANDOFF-RESPONSIBILITY"] == counts["accepted"]
    assert {v["requirement"] for v in data["violations"]} == {"HANDOFF-RESPONSIBILITY"}
    assert len(data["workers"]) == 2
    assert run.returncodes["master"] == 1, run.tail()  # the verdict is the master's status
    assert "VIOLATION HANDOFF-RESPONSIBILITY" in run.logs["master"]
