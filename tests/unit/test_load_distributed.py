"""The merge of a distributed load run, without Locust or a server: workers' ledgers batch their
events, the master's merged ledger gives the verdict a single ledger would, whichever worker
sent or read a message and in whatever order the batches come."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
from typing import Any, cast

from harness.clients.blocking import Ring
from harness.load.distributed import (
    MergedLedger,
    WorkerLedger,
    histogram_delta,
    histogram_of,
)
from harness.load.imapview import MailboxFacts, SessionView
from harness.load.ledger import Histogram, Ledger
from harness.load.users import Manager
from harness.targets import Account

BOB, CAROL = "bob@example.net", "carol@example.org"


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def worker(name: str, clock: Clock, index: int = 0) -> WorkerLedger:
    return WorkerLedger(name, index=index, clock=clock, wall=clock)


def test_a_message_sent_on_one_worker_and_read_on_another_is_delivered() -> None:
    clock = Clock()
    master = MergedLedger(clock.now)
    sender, reader = worker("w1", clock, 0), worker("w2", clock, 1)
    clock.now += 0.1
    sender.accepted("t1", BOB, 0.02)
    sender.accepted("t2", CAROL, 0.03)
    clock.now += 0.4
    reader.found("t1", BOB, 1, True)
    reader.found("t2", CAROL, 1, True)
    clock.now += 0.5
    # The reader's batch first: what it found waits for the sender's word.
    master.add(reader.take_batch())
    assert master.outstanding() == 0 and master.ledger.counts()["delivered"] == 0
    master.add(sender.take_batch())
    assert master.outstanding() == 0
    result = master.judge(now=clock.now, load_seconds=1.0, waited_out=True)
    counts = result.ledger.counts()
    assert result.ok, result.summary()
    assert (counts["accepted"], counts["delivered"], counts["violations"]) == (2, 2, 0)
    assert master.crossed == 2 and master.unknown_found == 0
    delivery = result.ledger.latency["delivery"]
    assert delivery.count == 2 and 0.3 < delivery.maximum < 0.5  # the workers' times, not arrival
    assert master.workers["w1"].accepted == 2 and master.workers["w2"].found == 2


def test_the_merged_verdict_is_the_single_ledgers() -> None:
    """The same events, once into one Ledger and once split over two workers whose batches
    come in turn: the same counts and the same requirements, with the same ids."""
    clock = Clock()
    single = Ledger(clock=clock)
    master = MergedLedger(clock.now)
    w1, w2 = worker("w1", clock, 0), worker("w2", clock, 1)
    script: list[tuple[str, WorkerLedger, tuple[object, ...]]] = [
        ("accepted", w1, ("lost", BOB, 0.01)),
        ("accepted", w1, ("twice", BOB, 0.01)),
        ("accepted", w2, ("damaged", CAROL, 0.01)),
        ("accepted", w2, ("astray", CAROL, 0.01)),
        ("accepted", w1, ("fine", CAROL, 0.01)),
        ("refused", w2, ("refused",)),
        ("found", w2, ("twice", BOB, 1, True)),
        ("found", w1, ("twice", BOB, 1, True)),  # read again, on the other worker: nothing new
        ("found", w1, ("twice", BOB, 2, True)),  # a second copy
        ("found", w1, ("damaged", CAROL, 3, False)),
        ("found", w2, ("astray", BOB, 4, True)),  # the wrong mailbox
        ("found", w2, ("refused", BOB, 5, True)),
        ("found", w1, ("fine", CAROL, 6, True)),
        ("found", w2, ("elsewhere", BOB, 7, True)),  # another run's mail
        ("error", w1, ("sender: OSError",)),
    ]
    for step, (method, ledger, args) in enumerate(script):
        clock.now += 0.1
        getattr(single, method)(*args)
        getattr(ledger, method)(*args)
        if step % 4 == 3:
            master.add(w2.take_batch())
            master.add(w1.take_batch())
    master.add(w1.take_batch(final=True))
    master.add(w2.take_batch(final=True))
    clock.now += 1
    single.finish()
    result = master.judge(now=clock.now, load_seconds=1.5, waited_out=True)
    assert result.ledger.counts() == single.counts()
    assert result.ledger.violation_counts == single.violation_counts
    assert set(single.violation_counts) == {"HANDOFF-RESPONSIBILITY", "DELIVER-ONCE",
                                            "DELIVER-INTACT"}
    assert sorted((v.requirement, v.token) for v in result.ledger.violations) == \
        sorted((v.requirement, v.token) for v in single.violations)
    assert dict(result.ledger.errors) == {"sender: OSError": 1}
    assert master.unknown_found == 1


def test_a_cut_short_delivery_phase_reports_no_loss() -> None:
    clock = Clock()
    master = MergedLedger(clock.now)
    w1 = worker("w1", clock)
    w1.accepted("t1", BOB, 0.01)
    master.add(w1.take_batch())
    assert master.outstanding() == 1
    result = master.judge(now=clock.now + 1, load_seconds=1, waited_out=False, interrupted=True)
    assert result.ok and result.interrupted and result.ledger.counts()["delivered"] == 0


def test_events_wait_for_every_sending_worker_and_late_ones_are_not_counted() -> None:
    clock = Clock()
    master = MergedLedger(clock.now)
    w1, w2 = worker("w1", clock, 0), worker("w2", clock, 1)
    master.add(w2.take_batch())  # w2 has said nothing yet, up to now
    clock.now += 1
    w1.accepted("t1", BOB, 0.01)
    clock.now += 1
    master.add(w1.take_batch())
    # w1's acceptance is later than w2's last word: it waits, but counts as outstanding.
    assert master.ledger.counts()["accepted"] == 0 and master.outstanding() == 1
    master.add(w2.take_batch(drained=True))
    assert master.ledger.counts()["accepted"] == 1
    assert not master.drained() and master.drained(["w2"]) is False
    master.add(w1.take_batch(drained=True))
    assert master.drained()
    master.judge(now=clock.now, load_seconds=2, waited_out=True)
    w2.found("t1", BOB, 1, True)
    master.add(w2.take_batch(final=True))
    assert master.late_events == 1 and master.ledger.counts()["delivered"] == 0


def test_imap_latencies_come_as_histogram_deltas() -> None:
    clock = Clock()
    master = MergedLedger(clock.now)
    w1, w2 = worker("w1", clock, 0), worker("w2", clock, 1)
    expected = Histogram()
    for n, ledger in enumerate((w1, w2, w1, w1)):
        ledger.imap_command(0.001 * (n + 1))
        expected.add(0.001 * (n + 1))
    batch = w1.take_batch()
    assert batch["imap"]["count"] == 3 and len(batch["imap"]["counts"]) < len(expected.counts)
    master.add(batch)
    master.add(w2.take_batch())
    assert w1.take_batch()["imap"]["count"] == 0  # a delta: the next batch starts again
    merged = master.ledger.latency["imap"]
    assert merged.counts == expected.counts and merged.count == 4
    assert merged.maximum == expected.maximum
    assert histogram_of(histogram_delta(expected)).counts == expected.counts
    result = master.judge(now=clock.now + 1, load_seconds=1, waited_out=True)
    assert sum(p["imap"] for p in result.to_json()["timeline"]["points"]) == 4
    assert master.workers["w1"].imap_commands == 3


def test_a_users_own_violation_is_sent_with_its_transcript_and_the_ledgers_are_not() -> None:
    clock = Clock()
    master = MergedLedger(clock.now)
    w1 = worker("w1", clock)
    ring = Ring("manager 1")
    ring.record("S:", b"* 3 EXPUNGE\r\n")
    w1.violate("IMAP-EXPUNGE-ANNOUNCE", "INBOX", "an expunge not announced", [ring, None])
    w1.accepted("t1", BOB, 0.01)
    w1.found("t1", BOB, 1, True)
    w1.found("t1", BOB, 2, False, ring)  # the ledger's own: a duplicate and a damaged body
    batch = w1.take_batch()
    assert [e[0] for e in batch["events"]] == ["v", "a", "f", "f"]
    assert batch["events"][0][6] == ""  # no role told
    assert batch["events"][3][6] == [["manager 1", list(ring.snapshot())]]
    assert json.loads(json.dumps(batch)) == batch  # lists, strings and numbers only
    master.add(batch)
    result = master.judge(now=clock.now, load_seconds=1, waited_out=True)
    assert dict(result.ledger.violation_counts) == {
        "IMAP-EXPUNGE-ANNOUNCE": 1, "DELIVER-ONCE": 1, "DELIVER-INTACT": 1}
    kept = {v.requirement: v for v in result.ledger.violations}
    assert kept["IMAP-EXPUNGE-ANNOUNCE"].sessions == ("manager 1",)
    assert kept["IMAP-EXPUNGE-ANNOUNCE"].transcripts[0][1] == ring.snapshot()
    assert kept["DELIVER-INTACT"].sessions == ("manager 1",)


def test_the_results_have_the_shape_of_a_single_runs_and_name_the_workers() -> None:
    clock = Clock()
    master = MergedLedger(clock.now)
    w1, w2 = worker("host-a_1", clock, 0), worker("host-b_2", clock, 1)
    w1.accepted("t1", BOB, 0.01)
    w2.found("t1", BOB, 1, True)
    master.add(w1.take_batch())
    master.add(w2.take_batch())
    result = master.judge(now=clock.now + 2, load_seconds=2, waited_out=True)
    data = json.loads(json.dumps(master.to_json(result)))
    assert set(result.to_json()) <= set(data)
    assert data["distributed"]["workers"] == 2 and data["distributed"]["crossed"] == 1
    assert data["workers"]["host-a_1"]["accepted"] == 1
    assert data["workers"]["host-b_2"] == {
        "index": 1, "batches": 1, "accepted": 0, "refused": 0, "found": 1, "errors": 0,
        "violations": 0, "imap_commands": 0, "imap_by_role": {}, "sessions": {},
        "violation_counts": {}, "violations_by_role": {}, "drained": False, "final": False}
    assert data["distributed"]["roles"] == {}
    lines = master.summary(result).splitlines()
    assert lines[-1] == "load: no invariant violated"
    assert any(line.startswith("  worker 1 host-b_2: 0 accepted, 1 found") for line in lines)


def test_manager_activity_and_violations_by_role_reach_the_master() -> None:
    """IMAP commands and the violations users report, by the role of the user (a reader or a
    manager), per worker and over all; the sessions each worker runs, as of its last batch."""
    clock = Clock()
    master = MergedLedger(clock.now)
    roles = {"w1": "manager", "w2": "manager"}
    w1 = WorkerLedger("w1", index=0, clock=clock, wall=clock, role=lambda: roles["w1"])
    w2 = WorkerLedger("w2", index=1, clock=clock, wall=clock, role=lambda: roles["w2"])
    w1.sessions.update(manager=4, reader=2)
    w2.sessions.update(manager=4)
    for _ in range(3):
        w1.imap_command(0.01, "UID STORE")
    w2.imap_command(0.01, "NOOP")
    roles["w1"] = "reader"
    w1.imap_command(0.01, "IDLE")
    ring = Ring("manager 1.0 7")
    w2.violate("IMAP-SESSIONS-AGREE", "bob INBOX", "manager 1.0: UID 3 ...", [ring])
    w2.violate("IMAP-SESSIONS-AGREE", "bob INBOX", "manager 1.1: UID 5 ...", [])
    roles["w1"] = "manager"
    w1.violate("IMAP-NO-EXPUNGE-DURING-FETCH", "bob INBOX", "manager 0.0: ...", [])
    batch = w2.take_batch()
    assert batch["imap_roles"] == {"manager": 1} and batch["sessions"] == {"manager": 4}
    assert batch["events"][0][6] == "manager"
    master.add(batch)
    master.add(w1.take_batch())
    result = master.judge(now=clock.now + 1, load_seconds=1, waited_out=True)
    assert dict(result.ledger.violation_counts) == {"IMAP-SESSIONS-AGREE": 2,
                                                    "IMAP-NO-EXPUNGE-DURING-FETCH": 1}
    data = json.loads(json.dumps(master.to_json(result)))
    assert data["distributed"]["roles"] == {
        "manager": {"sessions": 8, "imap_commands": 4, "violation_counts": {
            "IMAP-SESSIONS-AGREE": 2, "IMAP-NO-EXPUNGE-DURING-FETCH": 1}},
        "reader": {"sessions": 2, "imap_commands": 1, "violation_counts": {}}}
    assert data["workers"]["w1"]["imap_by_role"] == {"manager": 3, "reader": 1}
    assert data["workers"]["w2"]["violation_counts"] == {"IMAP-SESSIONS-AGREE": 2}
    assert data["workers"]["w2"]["violations_by_role"] == {
        "manager": {"IMAP-SESSIONS-AGREE": 2}}
    summary = master.summary(result).splitlines()
    assert ("  managers: 8 sessions, 4 IMAP commands, violations IMAP-NO-EXPUNGE-DURING-FETCH 1, "
            "IMAP-SESSIONS-AGREE 2") in summary
    assert "  readers: 2 sessions, 1 IMAP commands, no violation" in summary
    assert any(line.startswith("  worker 0 w1: ") and "4 IMAP commands (3 manager, 1 reader)"
               in line and line.endswith("IMAP-NO-EXPUNGE-DURING-FETCH 1") for line in summary)


def test_a_managers_own_appended_message_is_not_sent_unless_damaged() -> None:
    clock = Clock()
    w1 = worker("w1", clock)
    w1.found("m" + "0" * 23, BOB, 1, True)  # users.Manager's APPEND: no sender's mail
    w1.found("m" + "1" * 23, BOB, 2, False)  # damaged all the same: the master must know
    w1.found("a" * 24, BOB, 3, True)  # a sender's token (hex digits)
    events = w1.take_batch()["events"]
    assert [(e[2], e[5]) for e in events] == [("m" + "1" * 23, False), ("a" * 24, True)]
    master = MergedLedger(clock.now)
    master.add({"worker": "w1", "index": 0, "seq": 1, "until": clock.now, "events": events,
                "imap": {}, "final": True})
    result = master.judge(now=clock.now, load_seconds=1, waited_out=True)
    assert dict(result.ledger.violation_counts) == {"DELIVER-INTACT": 1}


def _manager(index: int, of: int, **kwargs: Any) -> Manager:
    facts = MailboxFacts("bob INBOX")
    manager = Manager(cast(Any, None), Ledger(), threading.Event(),
                      account=Account("bob", "pw", BOB), imaps=cast(Any, None), facts=facts,
                      index=index, of=of, rng=random.Random(1), **kwargs)
    manager.view = SessionView(facts, lambda *_: None, None)
    manager.view.seq = list(range(1, 17))
    manager.tokens = {uid: f"t{uid}" for uid in range(1, 17)}
    return manager


def test_managers_on_two_workers_share_no_keyword_and_no_message() -> None:
    """As locust_users gives them out: worker w's managers have the keywords $LoadW<w>M<i>
    and the UIDs modulo workers x managers in the worker's part; one process alone keeps the
    original $Load<i> and UID modulo its managers."""
    alone = _manager(1, 2)
    assert (alone.keyword, alone.keywords) == ("$Load1", ["$Load0", "$Load1"])
    assert alone._mine() == [u for u in range(1, 17) if u % 2 == 1]
    workers = [[_manager(i, 2, keyword_prefix=f"$LoadW{w}M", share=(w * 2 + i, 4))
                for i in range(2)] for w in range(2)]
    keywords = [m.keyword for managers in workers for m in managers]
    assert keywords == ["$LoadW0M0", "$LoadW0M1", "$LoadW1M0", "$LoadW1M1"]
    assert workers[1][0].keywords == ["$LoadW1M0", "$LoadW1M1"]  # its own worker's peers
    shares = [m._mine() for managers in workers for m in managers]
    assert sorted(u for share in shares for u in share) == list(range(1, 17))
    assert shares[3] == [3, 7, 11, 15]


def test_requests_are_told_for_locusts_statistics() -> None:
    told: list[tuple[str, float, str | None]] = []
    clock = Clock()
    w1 = WorkerLedger("w1", on_request=lambda *args: told.append(args), clock=clock, wall=clock)
    w1.accepted("t1", BOB, 0.25)
    w1.imap_command(0.5)
    w1.error("reader: BlockingClientError")
    w1.refused("t2")
    w1.found("t1", BOB, 1, True)
    assert told == [("accepted", 0.25, None), ("imap", 0.5, None),
                    ("error", 0.0, "reader: BlockingClientError")]


def test_the_locust_users_without_locust_say_what_to_install() -> None:
    # In a process of its own: Locust, when it is there, patches the interpreter for gevent.
    done = subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['locust'] = None\n"
         "try:\n import harness.load.locust_users\nexcept ImportError as e:\n print(e)"],
        capture_output=True, text=True, timeout=60)
    assert "needs Locust: pip install 'mailharness[load]'" in done.stdout, done.stderr
