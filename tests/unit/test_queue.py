"""Tests for reference_agents.queue: durability across reopen, crash leftovers, atomic updates."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from reference_agents.queue import MailQueue, QueueEntry


def test_enqueue_then_reopen_has_the_same_entries(tmp_path: Path) -> None:
    queue = MailQueue(tmp_path / "q")
    first = queue.enqueue("a@example.org", ["b@example.net", "c@example.net"], b"one\r\n")
    second = queue.enqueue("", ["a@example.org"], b"\x00binary\xff\r\n")
    entries = queue.entries()
    assert [e.id for e in entries] == [first, second]
    entry = queue.get(first)
    assert entry is not None
    assert entry.recipients == ("b@example.net", "c@example.net")
    assert entry.attempts == 0 and entry.last_error == ""
    assert entry.next_attempt == entry.created

    reopened = MailQueue(tmp_path / "q")
    assert reopened.entries() == entries
    assert reopened.read_data(first) == b"one\r\n"
    assert reopened.read_data(second) == b"\x00binary\xff\r\n"
    assert reopened.get(second) == QueueEntry(
        id=second,
        mail_from="",
        recipients=("a@example.org",),
        created=entries[1].created,
        attempts=0,
        next_attempt=entries[1].next_attempt,
        last_error="",
    )


def test_reschedule_and_remove_survive_reopen(tmp_path: Path) -> None:
    queue = MailQueue(tmp_path)
    entry_id = queue.enqueue("a@example.org", ["b@example.net", "c@example.net"], b"x\r\n")
    queue.reschedule(
        entry_id, recipients=["c@example.net"], attempts=2, next_attempt=123.5, last_error="451 later"
    )
    gone = queue.enqueue("a@example.org", ["d@example.net"], b"y\r\n")
    queue.remove(gone)
    queue.remove(gone)  # idempotent
    reopened = MailQueue(tmp_path)
    entry = reopened.get(entry_id)
    assert entry is not None
    assert (entry.recipients, entry.attempts, entry.next_attempt, entry.last_error) == (
        ("c@example.net",),
        2,
        123.5,
        "451 later",
    )
    assert reopened.get(gone) is None
    assert [e.id for e in reopened.entries()] == [entry_id]
    with pytest.raises(KeyError):
        reopened.read_data(gone)
    with pytest.raises(KeyError):
        reopened.reschedule(gone, recipients=["x@y"], attempts=1, next_attempt=0, last_error="")


def test_half_written_entries_are_invisible_and_cleaned(tmp_path: Path) -> None:
    queue = MailQueue(tmp_path)
    kept = queue.enqueue("a@example.org", ["b@example.net"], b"kept\r\n")
    # A crash while writing temporary files (before any rename) ...
    (tmp_path / "tmp" / "0001-dead.msg.1234").write_bytes(b"partial")
    (tmp_path / "tmp" / "0001-dead.json.1234").write_bytes(b'{"id": ')
    # ... and a crash between the data rename and the metadata rename (the commit point).
    (tmp_path / "0002-dead.msg").write_bytes(b"uncommitted")
    assert [e.id for e in queue.entries()] == [kept]

    reopened = MailQueue(tmp_path)
    assert [e.id for e in reopened.entries()] == [kept]
    assert list((tmp_path / "tmp").iterdir()) == []
    assert not (tmp_path / "0002-dead.msg").exists()
    assert reopened.read_data(kept) == b"kept\r\n"


def test_unreadable_committed_entry_is_quarantined_not_deleted(tmp_path: Path) -> None:
    queue = MailQueue(tmp_path)
    entry_id = queue.enqueue("a@example.org", ["b@example.net"], b"data\r\n")
    (tmp_path / f"{entry_id}.json").write_bytes(b"not json")
    reopened = MailQueue(tmp_path)
    assert reopened.entries() == []
    assert (tmp_path / "corrupt" / f"{entry_id}.json").exists()
    assert (tmp_path / "corrupt" / f"{entry_id}.msg").read_bytes().endswith(b"\ndata\r\n")


def test_a_data_file_whose_envelope_line_is_cut_is_quarantined(tmp_path: Path) -> None:
    (tmp_path / "0-cut.msg").write_bytes(b'MHQ1 {"version": 1, "id": "0-cut"')
    assert MailQueue(tmp_path).entries() == []
    assert (tmp_path / "corrupt" / "0-cut.msg").exists()


def test_listeners_are_called_after_the_entry_is_visible(tmp_path: Path) -> None:
    queue = MailQueue(tmp_path)
    seen: list[int] = []
    queue.add_listener(lambda: seen.append(len(queue.entries())))
    queue.enqueue("a@example.org", ["b@example.net"], b"1\r\n")
    thread = threading.Thread(target=queue.enqueue, args=("a@example.org", ["c@example.net"], b"2"))
    thread.start()
    thread.join(5)
    assert seen == [1, 2]


def test_enqueue_refuses_no_recipients(tmp_path: Path) -> None:
    queue = MailQueue(tmp_path)
    with pytest.raises(ValueError):
        queue.enqueue("a@example.org", [], b"x")
    assert queue.entries() == []
    assert list((tmp_path / "tmp").iterdir()) == []


def test_settles_of_several_entries_share_one_directory_fsync(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    queue = MailQueue(tmp_path / "q")
    first = queue.enqueue("a@example.org", ["b@example.net"], b"1\r\n")
    second = queue.enqueue("a@example.org", ["b@example.net", "c@example.net"], b"2\r\n")
    synced: list[Path] = []
    monkeypatch.setattr("reference_agents.durable.fsync_dir", lambda path: synced.append(path))
    queue.settle_many([(first, ["b@example.net"]), (second, ["c@example.net"]),
                       ("0" * 32, ["x@example.net"])])
    assert synced == [tmp_path / "q"]
    reopened = MailQueue(tmp_path / "q")
    assert reopened.get(first) is None
    remaining = reopened.get(second)
    assert remaining is not None and remaining.recipients == ("b@example.net",)


def test_settled_recipients_leave_the_entry_durably(tmp_path: Path) -> None:
    """settle() records that recipients are done: they are gone after a reopen (the state a
    restart after a crash sees), the others stay with their schedule, and settling the last
    removes the entry. Unknown ids and recipients change nothing."""
    queue = MailQueue(tmp_path / "q")
    entry_id = queue.enqueue("a@example.org", ["b@example.net", "c@example.net", "d@example.com"], b"x\r\n")
    queue.settle(entry_id, ["c@example.net"])
    reopened = MailQueue(tmp_path / "q")
    entry = reopened.get(entry_id)
    assert entry is not None and entry.recipients == ("b@example.net", "d@example.com")
    assert reopened.read_data(entry_id) == b"x\r\n"
    reopened.settle(entry_id, ["nobody@example.net"])
    assert reopened.get(entry_id) == entry
    reopened.settle(entry_id, ["b@example.net", "d@example.com"])
    assert reopened.get(entry_id) is None
    assert MailQueue(tmp_path / "q").get(entry_id) is None


def test_two_processes_share_a_queue_directory(tmp_path: Path) -> None:
    """The SMTP side enqueues and keeps nothing; the delivery side takes entries in with
    refresh, and an entry it removed never comes back."""
    smtp_side = MailQueue(tmp_path, keep_entries=False)
    delivery_side = MailQueue(tmp_path, recover=False)
    first = smtp_side.enqueue("a@example.org", ["b@example.net"], b"1\r\n")
    assert len(smtp_side) == 0 and smtp_side.get(first) is None
    assert delivery_side.get(first) is None
    assert delivery_side.refresh() == 1
    assert delivery_side.read_data(first) == b"1\r\n"
    second = smtp_side.enqueue("a@example.org", ["c@example.net", "d@example.net"], b"2\r\n")
    assert delivery_side.refresh() == 1 and delivery_side.refresh() == 0
    delivery_side.settle(second, ["c@example.net"])
    delivery_side.remove(first)
    assert delivery_side.refresh() == 0
    assert [e.id for e in delivery_side.entries()] == [second]
    assert delivery_side.entries()[0].recipients == ("d@example.net",)
    # A delivery side opened later (after a restart of that process) sees the same.
    assert [e.recipients for e in MailQueue(tmp_path, recover=False).entries()] == [
        ("d@example.net",)]


def test_refresh_leaves_an_unreadable_entry_to_recovery(tmp_path: Path) -> None:
    delivery_side = MailQueue(tmp_path, recover=False)
    (tmp_path / "0-bad.msg").write_bytes(b"x")
    (tmp_path / "0-bad.json").write_bytes(b"{not json")
    assert delivery_side.refresh() == 0 and delivery_side.refresh() == 0
    assert (tmp_path / "0-bad.json").exists()  # never deleted by a refresh
    MailQueue(tmp_path)  # recovery (the enqueuing side, at start) quarantines it
    assert not (tmp_path / "0-bad.json").exists()


def test_the_last_recipients_entry_goes_at_once_and_its_fsync_follows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """remove_settled unlinks an entry whose last recipients are done before any fsync (a
    reopen, as after a process crash, no longer sees it); an entry with recipients left is
    not touched; the following settle_many fsyncs the directory for the removed one."""
    queue = MailQueue(tmp_path / "q")
    done = queue.enqueue("a@example.org", ["b@example.net", "c@example.net"], b"1\r\n")
    partial = queue.enqueue("a@example.org", ["b@example.net", "c@example.net"], b"2\r\n")
    synced: list[Path] = []
    monkeypatch.setattr("reference_agents.durable.fsync_dir", lambda path: synced.append(path))
    assert queue.remove_settled(done, ["c@example.net", "b@example.net"])
    assert not queue.remove_settled(partial, ["b@example.net"])
    assert not queue.remove_settled("0" * 32, ["b@example.net"])
    assert synced == []
    reopened = MailQueue(tmp_path / "q")
    assert reopened.get(done) is None
    assert reopened.get(partial) is not None
    synced.clear()  # the reopen's recovery fsyncs too
    queue.settle_many([(done, ["b@example.net", "c@example.net"])])
    assert synced == [tmp_path / "q"]
    queue.settle_many([(done, ["b@example.net", "c@example.net"])])  # once only
    assert synced == [tmp_path / "q"]


# -- one file per entry: the envelope line, one fsync, a shared directory fsync ---------------


def test_an_enqueue_writes_one_file_which_holds_envelope_and_bytes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    fsyncs: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (fsyncs.append(fd), real_fsync(fd))[1])
    queue = MailQueue(tmp_path)
    fsyncs.clear()  # recovery's own
    # A message that itself begins like an envelope line comes back byte for byte.
    data = b"MHQ1 {not an envelope}\r\n\r\nbody\r\n"
    entry_id = queue.enqueue("a@example.org", ["b@example.net"], data)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [f"{entry_id}.msg"]
    assert len(fsyncs) == 2  # the file and the directory
    assert queue.read_data(entry_id) == data
    reopened = MailQueue(tmp_path)
    assert reopened.read_data(entry_id) == data
    assert reopened.get(entry_id) == queue.get(entry_id)


def test_a_rescheduled_envelope_takes_precedence_over_the_data_files_line(tmp_path: Path) -> None:
    queue = MailQueue(tmp_path)
    entry_id = queue.enqueue("a@example.org", ["b@example.net", "c@example.net"], b"x\r\n")
    queue.reschedule(entry_id, recipients=["c@example.net"], attempts=1, next_attempt=5.0,
                     last_error="451 later")
    for reopened in (MailQueue(tmp_path), MailQueue(tmp_path, recover=False)):
        entry = reopened.get(entry_id)
        assert entry is not None
        assert entry.recipients == ("c@example.net",) and entry.attempts == 1
        assert reopened.read_data(entry_id) == b"x\r\n"


def test_a_removal_cut_short_by_a_crash_leaves_no_entry(tmp_path: Path) -> None:
    queue = MailQueue(tmp_path)
    entry_id = queue.enqueue("a@example.org", ["b@example.net", "c@example.net"], b"x\r\n")
    queue.settle(entry_id, ["b@example.net"])  # writes the .json
    (tmp_path / f"{entry_id}.msg").unlink()  # a removal's first unlink, then the crash
    assert MailQueue(tmp_path).entries() == []
    assert not (tmp_path / f"{entry_id}.json").exists()
    assert not (tmp_path / "corrupt").exists()


def test_entries_of_the_first_layout_are_still_read(tmp_path: Path) -> None:
    """A queue written before the envelope line: the message alone in .msg, committed by .json."""
    import json

    record = {"version": 1, "id": "0001-old", "mail_from": "a@example.org",
              "recipients": ["b@example.net"], "created": 1.0, "attempts": 0,
              "next_attempt": 1.0, "last_error": ""}
    (tmp_path / "0001-old.msg").write_bytes(b"old\r\n")
    (tmp_path / "0001-old.json").write_text(json.dumps(record))
    delivery_side = MailQueue(tmp_path, recover=False)
    assert [e.id for e in delivery_side.entries()] == ["0001-old"]
    queue = MailQueue(tmp_path)
    assert queue.read_data("0001-old") == b"old\r\n"
    queue.remove("0001-old")
    assert list(p for p in tmp_path.iterdir() if p.is_file()) == []


def test_concurrent_directory_fsyncs_are_shared_and_none_returns_early(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """GroupFsync: each sync() returns only after an fsync that began after it was called, and
    threads that call while one runs share the next."""
    import time

    from reference_agents import durable

    runs: list[tuple[float, float]] = []
    real = durable.fsync_dir

    def slow(path: Path) -> None:
        began = time.monotonic()
        time.sleep(0.005)
        real(path)
        runs.append((began, time.monotonic()))

    monkeypatch.setattr(durable, "fsync_dir", slow)
    group = durable.GroupFsync(tmp_path)
    calls: list[tuple[float, float]] = []
    lock = threading.Lock()

    def caller() -> None:
        for _ in range(20):
            called = time.monotonic()
            group.sync()
            with lock:
                calls.append((called, time.monotonic()))

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(calls) == 160
    assert group.count == len(runs) < 100  # shared: far fewer fsyncs than calls
    for called, returned in calls:
        assert any(called <= began and ended <= returned for began, ended in runs)



def test_sweep_removes_only_old_leftovers_of_tmp(tmp_path: Path) -> None:
    import os
    import time

    queue = MailQueue(tmp_path)
    old, new = tmp_path / "tmp" / "old.msg.1", tmp_path / "tmp" / "new.msg.1"
    for path in (old, new):
        path.write_bytes(b"partial")
    os.utime(old, (time.time() - 7200,) * 2)
    assert queue.sweep_tmp(3600) == 1
    assert not old.exists() and new.exists()
