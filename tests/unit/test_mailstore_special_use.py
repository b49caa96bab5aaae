"""Special-use attributes given at CREATE (RFC 6154 §3), kept by both mail store backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reference_agents.mailstore import MaildirStore, MailStore, MemoryStore


@pytest.fixture(params=["memory", "maildir"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MailStore]:
    s: MailStore = MemoryStore() if request.param == "memory" else MaildirStore(tmp_path / "mail")
    yield s
    s.close()


def test_special_use_kept_by_rename_and_dropped_by_delete(store: MailStore) -> None:
    store.create_mailbox("u", "a/b", ["\\Archive", "\\Sent"])
    store.create_mailbox("u", "plain")
    assert store.special_uses("u") == {"a/b": frozenset({"\\Archive", "\\Sent"})}
    store.rename_mailbox("u", "a/b", "c")
    assert store.special_uses("u") == {"c": frozenset({"\\Archive", "\\Sent"})}
    store.delete_mailbox("u", "c")
    store.create_mailbox("u", "c")
    assert store.special_uses("u") == {}
    assert store.special_uses("other") == {}


def test_special_use_survives_reopening(tmp_path: Path) -> None:
    with MaildirStore(tmp_path / "mail") as first:
        first.create_mailbox("u", "Archive", ["\\Archive"])
    with MaildirStore(tmp_path / "mail") as second:
        assert second.special_uses("u") == {"Archive": frozenset({"\\Archive"})}
