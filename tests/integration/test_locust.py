"""Locust users spread over processes (harness/load/locust_users.py): the embedded reference
agents, their target file, a Locust master and two workers on loopback, each a process of its
own (benchmarks/locust_ci.py). Messages sent on one worker are read on the other, each worker's
IMAP managers change the same mailboxes as the other's (their own keywords, their own share of
the messages), and the master's merged verdict still holds every accepted message to account;
with the agents losing mail after the 250, it names HANDOFF-RESPONSIBILITY and nothing else;
with an IMAP fault that sessions meet, it names that fault's requirement and nothing else, as
the managers reported it from the workers."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from benchmarks.locust_ci import run_locust, write_target_file
from mailharness.embedded import embedded_target

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("locust") is None,
                       reason="Locust is not installed (pip install 'mailharness[load]')"),
    pytest.mark.timeout(60),  # each run takes 10-20 s
]

#: The recipients' mailboxes of the embedded target (harness/load/runner.py: mailboxes).
MAILBOXES = 2
#: The managers per mailbox on each worker (--mailharness-managers's default).
MANAGERS = 2


def _manager_sessions(data: dict[str, Any]) -> dict[int, int]:
    return {w["index"]: w["sessions"].get("manager", 0) for w in data["workers"].values()}


def test_a_master_and_two_workers_merge_one_verdict(tmp_path: Path) -> None:
    with embedded_target(prefix="mailharness-locust-test-") as target:
        write_target_file(target, tmp_path / "target.toml")
        # 8 users: a ManagerUser on each worker, and the 6 others by weight.
        run = run_locust(tmp_path / "target.toml", tmp_path, workers=2, users=8, run_time=6)
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
    # The managers: every worker's, on every mailbox, busy, and with nothing to report.
    assert _manager_sessions(data) == {0: MAILBOXES * MANAGERS, 1: MAILBOXES * MANAGERS}
    managers = data["distributed"]["roles"]["manager"]
    assert managers["sessions"] == 2 * MAILBOXES * MANAGERS
    assert managers["violation_counts"] == {}
    assert all(w["imap_by_role"].get("manager", 0) > 10 for w in workers.values()), workers
    assert managers["imap_commands"] == sum(w["imap_by_role"]["manager"]
                                            for w in workers.values())
    assert run.returncodes == {"master": 0 if not counts["errors"] else 1,
                               "worker 1": 0, "worker 2": 0}, run.tail()
    assert "load: no invariant violated" in run.logs["master"]
    assert f"managers: {2 * MAILBOXES * MANAGERS} sessions" in run.logs["master"]
    # Each worker's keywords and share of the messages are its own.
    for index in (0, 1):
        assert any(f"keywords $LoadW{index}M<i>, UIDs modulo 4 in {2 * index}..{2 * index + 1}"
                   in log for log in run.logs.values()), run.tail()


def test_mail_lost_after_the_250_is_named_across_workers(tmp_path: Path) -> None:
    with embedded_target(quirks=["mta_lose_after_accept"],
                         prefix="mailharness-locust-test-") as target:
        write_target_file(target, tmp_path / "target.toml")
        # No managers here (--mailharness-managers 0): the run is about the 250.
        run = run_locust(tmp_path / "target.toml", tmp_path, workers=2, users=6, run_time=4,
                         delivery_timeout=2, managers=0)
    assert run.results is not None, run.tail()
    data, counts = run.results, run.results["counts"]
    assert counts["accepted"] > 0 and counts["delivered"] == 0, run.tail()
    assert set(data["violation_counts"]) == {"HANDOFF-RESPONSIBILITY"}
    assert data["violation_counts"]["HANDOFF-RESPONSIBILITY"] == counts["accepted"]
    assert {v["requirement"] for v in data["violations"]} == {"HANDOFF-RESPONSIBILITY"}
    assert len(data["workers"]) == 2
    assert _manager_sessions(data) == {0: 0, 1: 0}
    assert "manager" not in data["distributed"]["roles"]
    assert run.returncodes["master"] == 1, run.tail()  # the verdict is the master's status
    assert "VIOLATION HANDOFF-RESPONSIBILITY" in run.logs["master"]


#: IMAP faults two sessions meet (reference_agents/quirks/imap.py) -> the requirement named.
#: A STORE never reported to another session is caught by the managers of one worker, which
#: check each other's keywords; an EXPUNGE sent during FETCH, by any manager that FETCHes
#: 1:* while another session, on its worker or the other, expunged.
IMAP_FAULTS = {"imap_flags_not_shared": "IMAP-SESSIONS-AGREE",
               "imap_expunge_during_fetch": "IMAP-NO-EXPUNGE-DURING-FETCH"}


@pytest.mark.parametrize("quirk", sorted(IMAP_FAULTS))
def test_an_imap_fault_the_managers_meet_is_named_across_workers(quirk: str,
                                                                 tmp_path: Path) -> None:
    requirement = IMAP_FAULTS[quirk]
    with embedded_target(quirks=[quirk], prefix="mailharness-locust-test-") as target:
        write_target_file(target, tmp_path / "target.toml")
        run = run_locust(tmp_path / "target.toml", tmp_path, workers=2, users=8, run_time=6)
    assert run.results is not None, run.tail()
    data, counts = run.results, run.results["counts"]
    assert set(data["violation_counts"]) == {requirement}, data["violation_counts"]
    assert {v["requirement"] for v in data["violations"]} == {requirement}
    # The mail itself is fine: every message arrived, once.
    assert counts["accepted"] > 0 and counts["delivered"] == counts["accepted"], run.tail()
    roles = data["distributed"]["roles"]
    assert roles["manager"]["violation_counts"] == data["violation_counts"]
    workers = data["workers"].values()
    assert sum(w["violation_counts"].get(requirement, 0) for w in workers) == \
        data["violation_counts"][requirement]
    assert _manager_sessions(data) == {0: MAILBOXES * MANAGERS, 1: MAILBOXES * MANAGERS}
    first = data["violations"][0]
    assert first["detail"].startswith("manager ") and first["sessions"], first
    assert all(lines for lines in first["transcripts"].values()), first
    assert run.returncodes["master"] == 1, run.tail()
    assert f"VIOLATION {requirement}" in run.logs["master"]
    assert f"managers: {2 * MAILBOXES * MANAGERS} sessions" in run.logs["master"]
    assert f"violations {requirement}" in run.logs["master"]
