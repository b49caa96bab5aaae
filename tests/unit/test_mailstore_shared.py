"""One Maildir store shared by processes (the IMAP workers): `MaildirStore.share` and
`attach`, the per-user write lock, and the change notification between members."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from reference_agents.mailstore import MaildirStore, StorageError
from reference_agents.mailstore.changes import ChangeBus, new_group


def test_attach_needs_a_store(tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        MaildirStore.attach(tmp_path / "nothing")


def test_writers_on_two_store_objects_keep_uids_and_modseqs_distinct(tmp_path: Path) -> None:
    # Two store objects over one root stand for two processes: each has its own lock and
    # SQLite connection, so only the per-user write lock orders their changes.
    primary = MaildirStore(tmp_path)
    primary.share(["bob"])
    other = MaildirStore.attach(tmp_path)
    uids: list[int] = []

    def append(store: MaildirStore) -> None:
        for n in range(30):
            uids.append(store.append("bob", "INBOX", b"Subject: %d\r\n\r\nx\r\n" % n))

    threads = [threading.Thread(target=append, args=(s,)) for s in (primary, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    messages = primary.messages("bob", "INBOX")
    assert sorted(uids) == [m.uid for m in messages] == list(range(1, 61))
    modseqs = [m.modseq for m in messages]
    assert len(set(modseqs)) == 60
    assert primary.mailbox_info("bob", "INBOX").highestmodseq == max(modseqs)
    other.close()
    primary.close()


def test_an_attached_store_does_not_recover(tmp_path: Path) -> None:
    primary = MaildirStore(tmp_path)
    primary.append("bob", "INBOX", b"Subject: one\r\n\r\nx\r\n")
    primary.share(["bob"])
    # Another process's delivery in flight: its file is in tmp/, not yet renamed.
    tmp_file = primary.mailbox_path("bob", "INBOX") / "tmp" / "in-flight"
    tmp_file.write_bytes(b"half")
    other = MaildirStore.attach(tmp_path)
    assert [m.uid for m in other.messages("bob", "INBOX")] == [1]
    assert tmp_file.exists(), "an attached store removed another process's tmp/ file"
    other.close()
    primary.close()


def test_a_change_reaches_the_other_members_listeners_only(tmp_path: Path) -> None:
    group = new_group()
    first = MaildirStore(tmp_path)
    first.share(["bob"])
    second = MaildirStore.attach(tmp_path)
    heard: dict[str, list[tuple[str, str]]] = {"first": [], "second": []}
    got = threading.Event()
    first.add_listener(lambda u, m: heard["first"].append((u, m)))

    def on_second(user: str, mailbox: str) -> None:
        heard["second"].append((user, mailbox))
        got.set()

    second.add_listener(on_second)
    buses = [ChangeBus(first, group, 0, 2), ChangeBus(second, group, 1, 2)]
    try:
        first.append("bob", "INBOX", b"Subject: hi\r\n\r\nx\r\n")
        assert got.wait(5)
        time.sleep(0.2)  # nothing may echo back
        assert heard["second"] == [("bob", "INBOX")]
        assert heard["first"] == [("bob", "INBOX")]  # its own change, once
    finally:
        for bus in buses:
            bus.close()
        second.close()
        first.close()


def test_a_bus_member_outside_the_group_is_refused(tmp_path: Path) -> None:
    store = MaildirStore(tmp_path)
    with pytest.raises(ValueError):
        ChangeBus(store, new_group(), 2, 2)
    store.close()


def test_authentication_failures_are_counted_by_every_member(tmp_path: Path) -> None:
    """A failure recorded in one process counts in the others (and is not sent back); a success
    clears the address everywhere; a member without a throttle ignores the events."""
    from reference_agents.limits import AuthLimits, AuthThrottle

    limits = AuthLimits(refuse_after=3, base_delay=0.0)
    group = new_group()
    first = MaildirStore(tmp_path)
    first.share(["bob"])
    second, third = MaildirStore.attach(tmp_path), MaildirStore.attach(tmp_path)
    throttles = [AuthThrottle(limits), AuthThrottle(limits)]
    buses = [ChangeBus(first, group, 0, 3, throttle=throttles[0]),
             ChangeBus(second, group, 1, 3, throttle=throttles[1]),
             ChangeBus(third, group, 2, 3)]

    def wait_for(condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 5
        while not condition():
            assert time.monotonic() < deadline, "the event never arrived"
            time.sleep(0.01)

    try:
        throttles[0].failed("192.0.2.7", "bob")
        throttles[1].failed("192.0.2.7", "bob")
        throttles[0].failed("192.0.2.7", None)
        wait_for(lambda: throttles[1].before("192.0.2.7").refuse)
        assert throttles[0].before("192.0.2.7").refuse
        time.sleep(0.1)  # nothing echoes back: each holds three failures, not more
        assert throttles[0].tracked() == throttles[1].tracked() == (1, 1)
        throttles[1].succeeded("192.0.2.7")
        wait_for(lambda: not throttles[0].before("192.0.2.7").refuse)
        assert throttles[0].before("192.0.2.7").wait == 0.0
    finally:
        for bus in buses:
            bus.close()
        for store in (third, second, first):
            store.close()
