"""Contract tests of the mail store (both backends) and the Maildir backend's durability."""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
    run_state_machine_as_test,
)

from reference_agents.mailstore import (
    INBOX,
    JUNK,
    InvalidMailboxName,
    MailboxExists,
    MaildirStore,
    MailStore,
    MemoryStore,
    NoSuchMailbox,
    NoSuchMessage,
    StorageError,
    StoreLocked,
    encode_path_component,
    normalize_mailbox_name,
)

USER = "alice"
MSG = b"From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n"

StoreFactory = Callable[[], MailStore]


@pytest.fixture(params=["memory", "maildir"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MailStore]:
    s: MailStore = MemoryStore() if request.param == "memory" else MaildirStore(tmp_path / "mail")
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def maildir(tmp_path: Path) -> Iterator[MaildirStore]:
    s = MaildirStore(tmp_path / "mail")
    try:
        yield s
    finally:
        s.close()


# --------------------------------------------------------------------------- contract


def test_new_user_has_inbox_and_junk(store: MailStore) -> None:
    assert store.list_mailboxes(USER) == [INBOX, JUNK]
    for name in (INBOX, JUNK):
        info = store.mailbox_info(USER, name)
        assert (info.name, info.uidnext, info.exists) == (name, 1, 0)
        assert 0 < info.uidvalidity < 2**32


def test_append_read_messages(store: MailStore) -> None:
    when = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=2)))
    uid1 = store.append(USER, INBOX, MSG)
    uid2 = store.append(USER, INBOX, b"second", flags=["\\seen", "$Label"], internaldate=when)
    assert (uid1, uid2) == (1, 2)
    assert store.read(USER, INBOX, 1) == MSG
    assert store.read(USER, "inbox", 2) == b"second"
    first, second = store.messages(USER, INBOX)
    assert (first.uid, first.flags, first.size) == (1, frozenset(), len(MSG))
    assert first.internaldate.tzinfo is not None
    assert (second.uid, second.flags, second.size) == (2, frozenset({"\\Seen", "$Label"}), 6)
    assert second.internaldate == when
    info = store.mailbox_info(USER, INBOX)
    assert (info.uidnext, info.exists) == (3, 2)
    with pytest.raises(NoSuchMessage):
        store.read(USER, INBOX, 3)


def test_naive_internaldate_and_bad_flags_refused(store: MailStore) -> None:
    with pytest.raises(ValueError):
        store.append(USER, INBOX, MSG, internaldate=datetime(2024, 1, 1))
    for bad in ["", "a b", "(x", "\\Se\\en", "a\r\n"]:
        with pytest.raises(ValueError):
            store.append(USER, INBOX, MSG, flags=[bad])
    assert store.mailbox_info(USER, INBOX).uidnext == 1


def test_set_flags_and_version(store: MailStore) -> None:
    uid = store.append(USER, INBOX, MSG)
    v0 = store.version(USER, INBOX)
    store.set_flags(USER, INBOX, uid, frozenset({"\\Seen", "\\flagged", "kw"}))
    assert store.messages(USER, INBOX)[0].flags == {"\\Seen", "\\Flagged", "kw"}
    v1 = store.version(USER, INBOX)
    assert v1 > v0
    store.set_flags(USER, INBOX, uid, frozenset({"\\Seen", "\\Flagged", "kw"}))
    assert store.version(USER, INBOX) == v1  # no change, no new version
    store.set_flags(USER, INBOX, uid, frozenset())
    assert store.messages(USER, INBOX)[0].flags == frozenset()
    assert store.read(USER, INBOX, uid) == MSG
    with pytest.raises(NoSuchMessage):
        store.set_flags(USER, INBOX, 99, frozenset())


def test_expunge_returns_removed_and_keeps_uidnext(store: MailStore) -> None:
    uids = [store.append(USER, INBOX, b"m%d" % i) for i in range(4)]
    v0 = store.version(USER, INBOX)
    assert store.expunge(USER, INBOX, [uids[3], uids[1], 42]) == [uids[1], uids[3]]
    assert store.version(USER, INBOX) > v0
    assert [m.uid for m in store.messages(USER, INBOX)] == [uids[0], uids[2]]
    assert store.read(USER, INBOX, uids[2]) == b"m2"
    with pytest.raises(NoSuchMessage):
        store.read(USER, INBOX, uids[1])
    v1 = store.version(USER, INBOX)
    assert store.expunge(USER, INBOX, [uids[1]]) == []
    assert store.version(USER, INBOX) == v1
    # RFC 9051 §2.3.1.1: UIDNEXT changes when messages are added "even if those new messages
    # are subsequently expunged"; new UIDs are never reused.
    assert store.mailbox_info(USER, INBOX).uidnext == 5
    assert store.append(USER, INBOX, MSG) == 5


def test_create_mailbox_hierarchy_and_errors(store: MailStore) -> None:
    store.create_mailbox(USER, "Work/Projects/2024")
    assert store.list_mailboxes(USER) == [
        INBOX, JUNK, "Work", "Work/Projects", "Work/Projects/2024"
    ]
    with pytest.raises(MailboxExists):
        store.create_mailbox(USER, "Work/Projects")
    with pytest.raises(MailboxExists):
        store.create_mailbox(USER, "inbox")
    store.create_mailbox(USER, "Archive/")  # trailing delimiter is a declaration: ignored
    assert "Archive" in store.list_mailboxes(USER)
    store.create_mailbox(USER, "inbox/sub")
    assert "INBOX/sub" in store.list_mailboxes(USER)
    store.append(USER, "Work/Projects/2024", MSG)
    assert store.mailbox_info(USER, "Work/Projects/2024").exists == 1
    with pytest.raises(NoSuchMailbox):
        store.mailbox_info(USER, "Nope")
    with pytest.raises(NoSuchMailbox):
        store.append(USER, "Nope", MSG)


@pytest.mark.parametrize(
    "name",
    ["", "/", "/abs", "a//b", "a/", "../x", "..", ".", "a/./b", "a/../b", "x\x00y", "x\ry",
     "x\ny", "a" * 256, "\udc80"],
)
def test_invalid_mailbox_names_rejected(store: MailStore, name: str) -> None:
    with pytest.raises(InvalidMailboxName):
        store.create_mailbox(USER, name if name != "a/" else "a//")
    assert store.list_mailboxes(USER) == [INBOX, JUNK]


def test_name_normalization() -> None:
    assert normalize_mailbox_name("iNbOx") == INBOX
    assert normalize_mailbox_name("Inbox/x") == "INBOX/x"
    assert normalize_mailbox_name("junk") == "junk"  # only INBOX is case-insensitive
    assert normalize_mailbox_name("a" * 255) == "a" * 255


def test_delete_mailbox(store: MailStore) -> None:
    with pytest.raises(InvalidMailboxName):
        store.delete_mailbox(USER, "inbox")
    with pytest.raises(NoSuchMailbox):
        store.delete_mailbox(USER, "Nope")
    store.create_mailbox(USER, "A/B")
    store.append(USER, "A", MSG)
    old = store.mailbox_info(USER, "A")
    store.delete_mailbox(USER, "A")
    # RFC 9051 §6.3.5: "The DELETE command MUST NOT remove inferior hierarchical names."
    assert store.list_mailboxes(USER) == [INBOX, "A/B", JUNK]
    store.create_mailbox(USER, "A")
    new = store.mailbox_info(USER, "A")
    assert new.uidvalidity > old.uidvalidity
    assert (new.uidnext, new.exists) == (1, 0)


def test_users_are_separate(store: MailStore) -> None:
    store.append("alice", INBOX, b"for alice")
    store.append("bob", INBOX, b"for bob")
    store.create_mailbox("bob", "Private")
    assert store.read("alice", INBOX, 1) == b"for alice"
    assert store.read("bob", INBOX, 1) == b"for bob"
    assert "Private" not in store.list_mailboxes("alice")
    with pytest.raises(ValueError):
        store.list_mailboxes("")


def test_listener_called_after_each_change(store: MailStore) -> None:
    calls: list[tuple[str, str, int]] = []
    threads: set[int] = set()

    def listener(user: str, mailbox: str) -> None:
        try:
            version = store.version(user, mailbox)
        except NoSuchMailbox:
            version = -1  # it was deleted
        calls.append((user, mailbox, version))
        threads.add(threading.get_ident())

    store.add_listener(listener)
    store.list_mailboxes(USER)
    assert calls == []  # creating INBOX/Junk on first use is not a change
    uid = store.append(USER, "inbox", MSG)
    store.set_flags(USER, INBOX, uid, frozenset({"\\Seen"}))
    store.expunge(USER, INBOX, [uid])
    store.expunge(USER, INBOX, [uid])  # nothing removed: no call
    store.create_mailbox(USER, "X/Y")
    store.delete_mailbox(USER, "X/Y")
    assert [(u, m) for u, m, _ in calls] == [
        (USER, INBOX), (USER, INBOX), (USER, INBOX), (USER, "X"), (USER, "X/Y"), (USER, "X/Y"),
    ]
    inbox_versions = [v for _, m, v in calls if m == INBOX]
    assert inbox_versions == sorted(set(inbox_versions))  # each call sees the change made
    assert threads == {threading.get_ident()}


def test_failing_listener_does_not_fail_the_change(store: MailStore) -> None:
    def broken(user: str, mailbox: str) -> None:
        raise RuntimeError("listener bug")

    store.add_listener(broken)
    assert store.append(USER, INBOX, MSG) == 1
    assert store.read(USER, INBOX, 1) == MSG


def test_concurrent_appends_get_distinct_uids(store: MailStore) -> None:
    results: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def worker(tag: int) -> None:
        try:
            barrier.wait()
            for i in range(15):
                results.append(store.append(USER, INBOX, b"t%d-%d" % (tag, i)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results) == list(range(1, 46))
    bodies = {store.read(USER, INBOX, uid) for uid in results}
    assert len(bodies) == 45


def test_mod_sequences_rise_with_every_change(store: MailStore) -> None:
    first = store.append(USER, INBOX, MSG)
    second = store.append(USER, INBOX, MSG)
    before = {m.uid: m.modseq for m in store.messages(USER, INBOX)}
    assert before[first] < before[second] <= store.mailbox_info(USER, INBOX).highestmodseq
    changed = store.set_flags(USER, INBOX, first, frozenset({"\\Seen"}))
    after = {m.uid: m.modseq for m in store.messages(USER, INBOX)}
    assert changed == after[first] > before[second]
    assert after[second] == before[second]
    assert store.mailbox_info(USER, INBOX).highestmodseq == changed
    # Setting the flags a message already has changes nothing.
    assert store.set_flags(USER, INBOX, first, frozenset({"\\Seen"})) == changed
    store.expunge(USER, INBOX, [second])
    assert store.mailbox_info(USER, INBOX).highestmodseq > changed


def test_rename_inbox_keeps_highestmodseq_above_moved_messages(store: MailStore) -> None:
    uid = store.append(USER, INBOX, MSG)
    for flag in ("\\Seen", "\\Flagged", "$Later"):
        store.set_flags(USER, INBOX, uid, frozenset({flag}))
    store.rename_mailbox(USER, INBOX, "Old")
    (moved,) = store.messages(USER, "Old")
    assert store.mailbox_info(USER, "Old").highestmodseq >= moved.modseq


def test_vanished_remembers_each_expunge_with_its_mod_sequence(store: MailStore) -> None:
    uids = [store.append("alice", INBOX, b"Subject: v\r\n\r\nbody\r\n") for _ in range(5)]
    start = store.version("alice", INBOX)
    assert store.vanished("alice", INBOX, 0) == []
    store.expunge("alice", INBOX, [uids[1]])
    middle = store.version("alice", INBOX)
    assert middle > start
    store.expunge("alice", INBOX, [uids[3], uids[4], 999])
    assert store.vanished("alice", INBOX, start) == [uids[1], uids[3], uids[4]]
    assert store.vanished("alice", INBOX, middle) == [uids[3], uids[4]]
    assert store.vanished("alice", INBOX, store.version("alice", INBOX)) == []
    # A renamed mailbox keeps its history; renamed INBOX leaves its messages vanished from it.
    store.create_mailbox("alice", "Box")
    box_uid = store.append("alice", "Box", b"Subject: b\r\n\r\nbody\r\n")
    store.expunge("alice", "Box", [box_uid])
    store.rename_mailbox("alice", "Box", "Renamed")
    assert store.vanished("alice", "Renamed", 0) == [box_uid]
    before = store.version("alice", INBOX)
    store.rename_mailbox("alice", INBOX, "Old")
    assert store.vanished("alice", INBOX, before) == [uids[0], uids[2]]
    # A mailbox deleted and made again starts without history.
    store.delete_mailbox("alice", "Renamed")
    store.create_mailbox("alice", "Renamed")
    assert store.vanished("alice", "Renamed", 0) == []


def test_recent_mark_moves_only_when_claimed(store: MailStore) -> None:
    assert store.take_recent(USER, INBOX, upto=None) == 0
    first = store.append(USER, INBOX, MSG)
    second = store.append(USER, INBOX, MSG)
    # EXAMINE and STATUS read the mark; a read-write selection told of UID *first* moves it.
    assert store.take_recent(USER, INBOX, upto=None) == 0
    assert store.take_recent(USER, INBOX, upto=first) == 0
    assert store.take_recent(USER, INBOX, upto=None) == first
    # A later session told of both claims only the second; the mark never goes back.
    assert store.take_recent(USER, INBOX, upto=second) == first
    assert store.take_recent(USER, INBOX, upto=first) == second
    assert store.take_recent(USER, INBOX, upto=None) == second
    assert store.version(USER, INBOX) == 3  # claiming is not a change sessions are told of
    with pytest.raises(NoSuchMailbox):
        store.take_recent(USER, "Missing", upto=None)


def test_closed_store_refuses(store: MailStore) -> None:
    store.close()
    with pytest.raises(RuntimeError):
        store.list_mailboxes(USER)
    store.close()  # idempotent


# --------------------------------------------------------------------------- model-based


class MailboxModel(RuleBasedStateMachine):
    """Random append / set_flags / expunge (/ reopen) sequences against a dict model."""

    uids = Bundle("uids")

    def __init__(self, factory: Callable[[Path], MailStore], reopenable: bool) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="mailstore-model-"))
        self.factory = factory
        self.reopenable = reopenable
        self.store = factory(self.directory)
        self.model: dict[int, tuple[bytes, frozenset[str]]] = {}
        self.uidvalidity = self.store.mailbox_info(USER, INBOX).uidvalidity
        self.highest = 0
        self.last_uidnext = 1

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    @rule(target=uids, data=st.binary(max_size=64),
          flags=st.sets(st.sampled_from(["\\Seen", "\\Deleted", "\\Draft", "$Junk"])))
    def append(self, data: bytes, flags: set[str]) -> int:
        uid = self.store.append(USER, INBOX, data, flags=flags)
        assert uid > self.highest
        self.highest = uid
        self.model[uid] = (data, frozenset(flags))
        return uid

    @rule(uid=uids, flags=st.sets(st.sampled_from(["\\Seen", "\\Answered", "\\Flagged", "k"])))
    def set_flags(self, uid: int, flags: set[str]) -> None:
        if uid in self.model:
            self.store.set_flags(USER, INBOX, uid, frozenset(flags))
            self.model[uid] = (self.model[uid][0], frozenset(flags))
        else:
            with pytest.raises(NoSuchMessage):
                self.store.set_flags(USER, INBOX, uid, frozenset(flags))

    @rule(uid=consumes(uids), extra=st.integers(min_value=1, max_value=50))
    def expunge(self, uid: int, extra: int) -> None:
        expected = sorted({u for u in (uid, extra) if u in self.model})
        assert self.store.expunge(USER, INBOX, [uid, extra]) == expected
        for u in expected:
            del self.model[u]

    @rule()
    def reopen(self) -> None:
        if self.reopenable:
            self.store.close()
            self.store = self.factory(self.directory)

    @invariant()
    def matches_model(self) -> None:
        listed = self.store.messages(USER, INBOX)
        assert [m.uid for m in listed] == sorted(self.model)
        assert all(a.uid < b.uid for a, b in zip(listed, listed[1:], strict=False))
        assert {m.uid: m.flags for m in listed} == {u: f for u, (_, f) in self.model.items()}
        info = self.store.mailbox_info(USER, INBOX)
        assert info.uidvalidity == self.uidvalidity
        assert info.uidnext > self.highest
        assert info.uidnext >= self.last_uidnext
        self.last_uidnext = info.uidnext
        assert info.exists == len(self.model)
        for uid, (data, _) in self.model.items():
            assert self.store.read(USER, INBOX, uid) == data


def test_model_memory() -> None:
    run_state_machine_as_test(
        lambda: MailboxModel(lambda _: MemoryStore(), reopenable=False),  # type: ignore[arg-type]
        settings=settings(max_examples=30, stateful_step_count=15, deadline=None),
    )


def test_model_maildir() -> None:
    run_state_machine_as_test(
        lambda: MailboxModel(MaildirStore, reopenable=True),  # type: ignore[arg-type]
        settings=settings(max_examples=10, stateful_step_count=12, deadline=None),
    )


# --------------------------------------------------------------------------- Maildir


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_maildir_layout_and_flag_names(maildir: MaildirStore) -> None:
    uid = maildir.append(USER, INBOX, MSG)
    box = maildir.mailbox_path(USER, INBOX)
    assert box.parent == maildir.user_path(USER)
    assert (box.parent / "index.sqlite3").is_file()
    (new,) = _files(box / "new")
    assert new.endswith(".mailharness") and ":" not in new
    assert _files(box / "tmp") == [] and _files(box / "cur") == []
    maildir.set_flags(USER, INBOX, uid, frozenset({"\\Seen", "\\Answered", "\\Draft", "kw"}))
    assert _files(box / "new") == []
    assert _files(box / "cur") == [new + ":2,DRS"]
    maildir.set_flags(USER, INBOX, uid, frozenset({"\\Deleted", "\\Flagged"}))
    assert _files(box / "cur") == [new + ":2,FT"]
    assert maildir.messages(USER, INBOX)[0].flags == {"\\Deleted", "\\Flagged"}
    maildir.append(USER, INBOX, MSG, flags=["\\Seen"])
    assert len(_files(box / "cur")) == 2
    assert maildir.expunge(USER, INBOX, [uid]) == [uid]
    assert [n.endswith(":2,S") for n in _files(box / "cur")] == [True]
    with sqlite3.connect(box.parent / "index.sqlite3") as conn:
        (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
    conn.close()
    assert mode == "wal"


def test_maildir_state_survives_reopen(tmp_path: Path) -> None:
    root = tmp_path / "mail"
    when = datetime(2023, 1, 2, 3, 4, 5, tzinfo=UTC)
    with MaildirStore(root) as first:
        first.create_mailbox(USER, "Work/Ünïcode")
        uids = [
            first.append(USER, "Work/Ünïcode", b"m%d" % i, internaldate=when) for i in range(3)
        ]
        first.set_flags(USER, "Work/Ünïcode", uids[0], frozenset({"\\Seen", "custom"}))
        first.expunge(USER, "Work/Ünïcode", [uids[1]])
        before = (first.list_mailboxes(USER), first.mailbox_info(USER, "Work/Ünïcode"),
                  first.messages(USER, "Work/Ünïcode"), first.mailbox_info(USER, INBOX),
                  first.version(USER, "Work/Ünïcode"))
    with MaildirStore(root) as second:
        after = (second.list_mailboxes(USER), second.mailbox_info(USER, "Work/Ünïcode"),
                 second.messages(USER, "Work/Ünïcode"), second.mailbox_info(USER, INBOX),
                 second.version(USER, "Work/Ünïcode"))
        assert after == before
        assert second.read(USER, "Work/Ünïcode", uids[2]) == b"m2"
        assert second.append(USER, "Work/Ünïcode", b"next") == 4


def test_recent_mark_survives_reopen_and_old_indexes_gain_it(tmp_path: Path) -> None:
    root = tmp_path / "mail"
    with MaildirStore(root) as first:
        uid = first.append(USER, INBOX, MSG)
        first.take_recent(USER, INBOX, upto=uid)
    with MaildirStore(root) as second:
        assert second.take_recent(USER, INBOX, upto=None) == uid
    # An index written before the mark was kept has no column for it: it is added, at 0.
    conn = sqlite3.connect(root / USER / "index.sqlite3")
    conn.executescript("""
        CREATE TABLE old AS SELECT name, dirname, uidvalidity, uidnext, version FROM mailboxes;
        DROP TABLE mailboxes;
        ALTER TABLE old RENAME TO mailboxes;
    """)
    conn.close()
    with MaildirStore(root) as third:
        assert third.take_recent(USER, INBOX, upto=None) == 0
        assert [m.uid for m in third.messages(USER, INBOX)] == [uid]


def test_second_store_on_same_root_refused(tmp_path: Path) -> None:
    with MaildirStore(tmp_path) as first:
        with pytest.raises(StoreLocked):
            MaildirStore(tmp_path)
        first.list_mailboxes(USER)


def test_recovery_indexes_renamed_but_uncommitted_files(tmp_path: Path) -> None:
    root = tmp_path / "mail"
    with MaildirStore(root) as store:
        kept = store.append(USER, INBOX, b"kept")
        lost_file = store.append(USER, INBOX, b"file gone")
        box = store.mailbox_path(USER, INBOX)
        before = store.mailbox_info(USER, INBOX)
        version = store.version(USER, INBOX)
    # A crash after the rename into new/ (and into cur/ with flags) but before the commit,
    # one half-written tmp/ file, and an index row whose file has disappeared.
    (box / "new" / "1700000000.M1P1Q1.mailharness").write_bytes(b"crashed delivery")
    (box / "cur" / "1700000001.M1P1Q2.mailharness:2,FS").write_bytes(b"crashed, flagged")
    (box / "tmp" / "1700000002.M1P1Q3.mailharness").write_bytes(b"half writ")
    (file_gone,) = [p for p in (box / "new").iterdir() if p.read_bytes() == b"file gone"]
    file_gone.unlink()
    with MaildirStore(root) as store:
        listed = store.messages(USER, INBOX)
        assert [m.uid for m in listed] == [kept, 3, 4]
        assert listed[2].flags == {"\\Flagged", "\\Seen"}
        assert store.read(USER, INBOX, 3) == b"crashed delivery"
        assert store.read(USER, INBOX, 4) == b"crashed, flagged"
        assert listed[1].size == len(b"crashed delivery")
        assert lost_file not in [m.uid for m in listed]
        info = store.mailbox_info(USER, INBOX)
        assert info.uidvalidity == before.uidvalidity and info.uidnext == 5
        assert store.version(USER, INBOX) > version
        assert _files(box / "tmp") == []


def test_usage_sums_sizes_and_counts_from_the_index(store: MailStore) -> None:
    assert store.usage(USER) == (0, 0)
    store.append(USER, INBOX, MSG)
    store.create_mailbox(USER, "Work")
    store.append(USER, "Work", b"x" * 100)
    assert store.usage(USER) == (len(MSG) + 100, 2)
    assert store.usage(USER, "Work") == (100, 1)
    uid = store.messages(USER, INBOX)[0].uid
    store.expunge(USER, INBOX, [uid])
    assert store.usage(USER) == (100, 1) and store.usage(USER, INBOX) == (0, 0)


def test_a_delivery_is_stored_once_however_often_it_is_retried(store: MailStore) -> None:
    first = store.append(USER, INBOX, MSG, delivery="Q1/alice@example.org")
    again = store.append(USER, INBOX, MSG, delivery="Q1/alice@example.org")
    other = store.append(USER, INBOX, MSG, delivery="Q1/alice+x@example.org")
    plain = store.append(USER, INBOX, MSG)
    assert again == first and len({first, other, plain}) == 3
    assert [m.uid for m in store.messages(USER, INBOX)] == [first, other, plain]
    # Still one copy after the user expunged it: the delivery was made.
    store.expunge(USER, INBOX, [first])
    assert store.append(USER, INBOX, MSG, delivery="Q1/alice@example.org") == first
    assert [m.uid for m in store.messages(USER, INBOX)] == [other, plain]


def test_a_delivery_remembered_across_reopen_and_a_crash_before_the_commit(
        tmp_path: Path) -> None:
    root = tmp_path / "mail"
    with MaildirStore(root) as store:
        done = store.append(USER, INBOX, b"indexed", delivery="Q1/a")
        box = store.mailbox_path(USER, INBOX)
    # A crash after the rename into new/ but before the commit of another delivery: its file
    # carries the delivery's tag in its name.
    from reference_agents.mailstore.base import delivery_tag
    (box / "new" / f"1700000000.M1P1Q9R00D{delivery_tag('Q2/a')}.mailharness").write_bytes(
        b"written, not indexed")
    with MaildirStore(root) as store:
        assert store.append(USER, INBOX, b"indexed", delivery="Q1/a") == done
        (recovered,) = [m.uid for m in store.messages(USER, INBOX) if m.uid != done]
        assert store.read(USER, INBOX, recovered) == b"written, not indexed"
        # The retry of that delivery finds it done: no second copy.
        assert store.append(USER, INBOX, b"written, not indexed", delivery="Q2/a") == recovered
        assert len(store.messages(USER, INBOX)) == 2


def test_recovery_after_flag_rename_without_commit(tmp_path: Path) -> None:
    root = tmp_path / "mail"
    with MaildirStore(root) as store:
        uid = store.append(USER, INBOX, b"x", flags=["\\Seen"])
        box = store.mailbox_path(USER, INBOX)
    (name,) = _files(box / "cur")
    os.rename(box / "cur" / name, box / "cur" / name.replace(":2,S", ":2,ST"))
    with MaildirStore(root) as store:
        listed = [(m.uid, m.flags) for m in store.messages(USER, INBOX)]
        assert listed == [(uid, frozenset({"\\Seen"}))]
        assert store.read(USER, INBOX, uid) == b"x"
        store.set_flags(USER, INBOX, uid, frozenset())
        assert store.read(USER, INBOX, uid) == b"x"


def test_failed_commit_leaves_no_file_and_no_uid(maildir: MaildirStore) -> None:
    maildir.append(USER, INBOX, b"one")
    box = maildir.mailbox_path(USER, INBOX)
    index = maildir.user_path(USER) / "index.sqlite3"
    conn = sqlite3.connect(index)
    try:
        conn.execute(
            "CREATE TRIGGER fail BEFORE INSERT ON messages BEGIN SELECT RAISE(ABORT, 'full'); END"
        )
        conn.commit()
        with pytest.raises(StorageError):
            maildir.append(USER, INBOX, b"two")
        assert len(_files(box / "new")) == 1 and _files(box / "tmp") == []
        assert maildir.mailbox_info(USER, INBOX).uidnext == 2
        conn.execute("DROP TRIGGER fail")
        conn.commit()
    finally:
        conn.close()
    assert maildir.append(USER, INBOX, b"two") == 2


def test_interrupted_delete_is_undone_or_finished(tmp_path: Path) -> None:
    root = tmp_path / "mail"
    with MaildirStore(root) as store:
        store.create_mailbox(USER, "Keep")
        store.create_mailbox(USER, "Gone")
        store.append(USER, "Keep", b"keep me")
        keep = store.mailbox_path(USER, "Keep")
        validity = store.mailbox_info(USER, "Keep").uidvalidity
        user_dir = store.user_path(USER)
    # Crash after moving "Keep" aside but before the commit: the row is still there.
    os.rename(keep, user_dir / f"~{validity}~{keep.name}")
    # Crash after the commit of a delete: only the trash directory is left.
    stale = user_dir / "~123~Stale"
    (stale / "new").mkdir(parents=True)
    (stale / "new" / "1.M1P1Q1.mailharness").write_bytes(b"deleted")
    with MaildirStore(root) as store:
        assert store.list_mailboxes(USER) == [INBOX, "Gone", JUNK, "Keep"]
        assert store.read(USER, "Keep", 1) == b"keep me"
        assert not stale.exists()


def test_lost_index_recovers_every_message(tmp_path: Path) -> None:
    root = tmp_path / "mail"
    with MaildirStore(root) as store:
        store.create_mailbox(USER, "Work/Sub")
        store.append(USER, "Work/Sub", b"deep", flags=["\\Seen"])
        store.append(USER, INBOX, b"top")
        user_dir = store.user_path(USER)
        old_validity = store.mailbox_info(USER, "Work/Sub").uidvalidity
    for p in user_dir.glob("index.sqlite3*"):
        p.unlink()
    with MaildirStore(root) as store:
        assert store.list_mailboxes(USER) == [INBOX, JUNK, "Work", "Work/Sub"]
        assert store.read(USER, INBOX, 1) == b"top"
        assert store.messages(USER, "Work/Sub")[0].flags == {"\\Seen"}
        assert store.read(USER, "Work/Sub", 1) == b"deep"
        # UIDs were re-assigned, so UIDVALIDITY must be greater (RFC 9051 §2.3.1.1).
        assert store.mailbox_info(USER, "Work/Sub").uidvalidity > old_validity


def test_orphan_directories_claiming_one_name(tmp_path: Path) -> None:
    root = tmp_path / "mail"
    with MaildirStore(root) as store:
        store.create_mailbox(USER, "Dup")
        store.append(USER, "Dup", b"first")
        box = store.mailbox_path(USER, "Dup")
        user_dir = store.user_path(USER)
    shutil.copytree(box, user_dir / "Dup+copy")
    for p in user_dir.glob("index.sqlite3*"):
        p.unlink()
    with MaildirStore(root) as store:  # one is adopted, the other left alone (logged)
        assert store.list_mailboxes(USER) == [INBOX, "Dup", JUNK]
        assert store.read(USER, "Dup", 1) == b"first"
    assert (user_dir / "Dup+copy" / "new").is_dir()  # left in place: nothing is deleted


@pytest.mark.parametrize("user", ["../x", "/abs", "a\x00b", ".", "..", "a/b", "x" * 300, "é"])
def test_user_names_cannot_escape_root(maildir: MaildirStore, user: str) -> None:
    path = maildir.user_path(user)
    assert path.parent == maildir.root
    assert not path.name.startswith(".")
    assert len(path.name.encode()) <= 255
    maildir.append(user, INBOX, b"x")
    assert maildir.read(user, INBOX, 1) == b"x"
    assert path.is_dir()
    assert sorted(p.name for p in maildir.root.iterdir() if p.is_dir()) == [path.name]


@pytest.mark.parametrize("name", ["..x", ".hidden", "a%2Fb", "index.sqlite3", "~1~INBOX",
                                  "é" * 255, "a b/c d"])
def test_odd_mailbox_names_stay_inside_user_dir(maildir: MaildirStore, name: str) -> None:
    maildir.create_mailbox(USER, name)
    path = maildir.mailbox_path(USER, name)
    assert path.parent == maildir.user_path(USER)
    assert not path.name.startswith((".", "~"))
    assert len(path.name.encode()) <= 255
    maildir.append(USER, name, b"x")
    assert maildir.read(USER, name, 1) == b"x"
    assert maildir.messages(USER, INBOX) == []


def test_encoded_names_are_distinct() -> None:
    names = ["a/b", "a%2Fb", "a.b", "a%2Eb", "A", "a", "x" * 300, "x" * 299 + "y"]
    assert len({encode_path_component(n) for n in names}) == len(names)


def test_a_flag_change_is_applied_to_the_flags_as_they_are_now(store: MailStore) -> None:
    """change_flags reads the flags under the store's lock: two changes made from the same
    earlier snapshot both stay (a STORE +FLAGS in one session, FETCH's implicit \\Seen in
    another), where writing each snapshot's result would lose one."""
    uid = store.append(USER, "INBOX", b"Subject: x\r\n\r\nbody\r\n")
    flags, first = store.change_flags(USER, "INBOX", uid, lambda f: f | {"$Load0"})
    assert flags == {"$Load0"}
    flags, second = store.change_flags(USER, "INBOX", uid, lambda f: f | {"\\Seen"})
    assert flags == {"$Load0", "\\Seen"} and second > first
    same, third = store.change_flags(USER, "INBOX", uid, lambda f: f | {"\\Seen"})
    assert same == flags and third == second  # nothing changed: the mod-sequence stays
    assert store.messages(USER, "INBOX")[0].flags == {"$Load0", "\\Seen"}


def test_reading_a_message_whose_file_went_tells_expunged_from_lost(maildir: MaildirStore) -> None:
    """An expunge in another process unlinks the files before it deletes the rows: a read
    that finds the row but no file waits for the write lock and looks again, so that a message
    expunged meanwhile is NoSuchMessage (NO [EXPUNGEISSUED]), and only a file lost with its row
    still there is a storage failure (NO [UNAVAILABLE])."""
    uid = maildir.append(USER, "INBOX", b"Subject: x\r\n\r\nbody\r\n")
    inbox = maildir.mailbox_path(USER, "INBOX")
    (path,) = [p for sub in ("new", "cur") for p in (inbox / sub).iterdir()]
    path.unlink()
    with pytest.raises(StorageError, match="missing"):
        maildir.read(USER, "INBOX", uid)
    maildir.expunge(USER, "INBOX", [uid])
    with pytest.raises(NoSuchMessage):
        maildir.read(USER, "INBOX", uid)
