"""The spam rules and the MDA: verdict, prepended fields, filing, failures."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference_agents.accounts import Account, AccountStore
from reference_agents.mailstore import INBOX, JUNK, MaildirStore, MemoryStore
from reference_agents.mda import MDA, DeliveryResult
from reference_agents.spam import GTUBE, RULES, SpamVerdict, score_message

CLEAN = (
    b"From: Bob <bob@example.org>\r\n"
    b"To: alice@example.net\r\n"
    b"Date: Mon, 6 May 2024 10:00:00 +0000\r\n"
    b"Message-ID: <1@example.org>\r\n"
    b"Subject: Lunch tomorrow?\r\n"
    b"\r\n"
    b"Shall we meet at noon?\r\n"
    b".leading dot and trailing spaces   \r\n"
)
GTUBE_MESSAGE = CLEAN.replace(b"noon?\r\n", b"noon?\r\n" + GTUBE + b"\r\n")


def _without(header: bytes) -> bytes:
    return b"".join(
        line for line in CLEAN.splitlines(keepends=True) if not line.startswith(header + b":")
    )


# --------------------------------------------------------------------------- spam rules


@pytest.mark.parametrize(
    ("message", "rules"),
    [
        (CLEAN, ()),
        (GTUBE_MESSAGE, ("GTUBE",)),
        (_without(b"Date"), ("MISSING_DATE",)),
        (CLEAN.replace(b"Mon, 6 May 2024 10:00:00 +0000", b"yesterday"), ("MISSING_DATE",)),
        (_without(b"Message-ID"), ("MISSING_MESSAGE_ID",)),
        (CLEAN.replace(b"<1@example.org>", b"   "), ("MISSING_MESSAGE_ID",)),
        (_without(b"Subject"), ("MISSING_SUBJECT",)),
        (CLEAN.replace(b"Lunch tomorrow?", b" "), ("MISSING_SUBJECT",)),
        (CLEAN.split(b"\r\n\r\n")[0] + b"\r\n\r\n", ("EMPTY_BODY",)),
        (CLEAN.split(b"\r\n\r\n")[0] + b"\r\n\r\n \r\n\t\r\n", ("EMPTY_BODY",)),
        (CLEAN.replace(b"Lunch tomorrow?", b"FREE MONEY NOW!!!"), ("ALL_CAPS_SUBJECT",)),
        (CLEAN.replace(b"Lunch tomorrow?", b"=?utf-8?q?GRATUIT_=C3=89T=C3=89?="),
         ("ALL_CAPS_SUBJECT",)),
        (CLEAN.replace(b"Lunch tomorrow?", b"OK 2024"), ()),  # too few letters
        (_without(b"From"), ("MISSING_FROM",)),
        (CLEAN.replace(b"Bob <bob@example.org>", b"Bob"), ("MISSING_FROM",)),
        (b"", ("MISSING_DATE", "MISSING_MESSAGE_ID", "MISSING_SUBJECT", "EMPTY_BODY",
               "MISSING_FROM")),
        (CLEAN.replace(b"\r\n", b"\n"), ()),
    ],
)
def test_rules_table(message: bytes, rules: tuple[str, ...]) -> None:
    verdict = score_message(message)
    assert verdict.rules == rules
    scores = {rule.name: rule.score for rule in RULES}
    assert verdict.score == pytest.approx(sum(scores[r] for r in rules))
    assert verdict.is_spam == (verdict.score >= 5.0)


def test_rule_scores_are_as_documented() -> None:
    assert {r.name: r.score for r in RULES} == {
        "GTUBE": 1000.0,
        "MISSING_DATE": 1.0,
        "MISSING_MESSAGE_ID": 1.0,
        "MISSING_SUBJECT": 0.5,
        "EMPTY_BODY": 0.5,
        "ALL_CAPS_SUBJECT": 1.0,
        "MISSING_FROM": 1.5,
    }
    assert all(r.description for r in RULES)


def test_threshold() -> None:
    bare = _without(b"Date").replace(b"Message-ID", b"X-Old-ID")  # score 2.0
    assert score_message(bare) == SpamVerdict(2.0, ("MISSING_DATE", "MISSING_MESSAGE_ID"), False)
    assert score_message(bare, threshold=2.0).is_spam
    assert score_message(GTUBE_MESSAGE).is_spam
    assert score_message(b"") == SpamVerdict(
        4.5,
        ("MISSING_DATE", "MISSING_MESSAGE_ID", "MISSING_SUBJECT", "EMPTY_BODY", "MISSING_FROM"),
        False,
    )


@pytest.mark.parametrize(
    "message",
    [
        b"\xff\xfe\x00garbage without any header\r\n",
        b"Subject: =?bogus-charset?q?x?=\r\nFrom: =?utf-8?b?!!!?=\r\n\r\nx",
        b"Date: Mon, 99 Foo 99999 99:99:99 +9999\r\n\r\nx",
        b"From: <<<@@@>>>\r\n Subject\r\n\tfolded\r\n\r\n",
        b": no name\r\nSubject \xe9\xe9 CAPS\r\n\r\nbody",
        b"Subject: \xc3\x89T\xc3\x89 EN FRANCE\r\n\r\n",
        b"\r\n\r\n\r\n",
        b"From: a@b\r\nFrom: c@d\r\n\r\n" + b"x" * 10000,
    ],
)
def test_malformed_messages_do_not_crash(message: bytes) -> None:
    verdict = score_message(message)
    assert verdict.score >= 0


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_score_without_error(data: bytes) -> None:
    verdict = score_message(data)
    assert set(verdict.rules) <= {r.name for r in RULES}
    assert ("GTUBE" in verdict.rules) == (GTUBE in data)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["From", "Date", "Subject", "Message-ID", "X"]),
            st.text(st.characters(codec="utf-8"), max_size=40),
        ),
        max_size=6,
    ),
    st.text(max_size=40),
)
def test_any_header_values_score_without_error(fields: list[tuple[str, str]], body: str) -> None:
    data = "".join(f"{k}: {v}\r\n" for k, v in fields).encode("utf-8", "surrogatepass")
    score_message(data + b"\r\n" + body.encode("utf-8", "surrogatepass"))


# --------------------------------------------------------------------------- MDA


def _accounts() -> AccountStore:
    return AccountStore(
        [Account("alice", "alice@example.net", "unused"), Account("bob", "bob@example.net", "x")],
        ["example.net"],
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MaildirStore]:
    with MaildirStore(tmp_path / "mail") as s:
        yield s


def _prefix(verdict: str, *, sender: str = "bob@example.org", eol: bytes = b"\r\n") -> bytes:
    return b"".join(
        line.encode() + eol
        for line in (f"Return-Path: <{sender}>", f"X-Spam-Status: {verdict}", None)
        if line is not None
    )


def test_clean_message_filed_into_inbox_byte_identical(store: MaildirStore) -> None:
    mda = MDA(store, _accounts())
    result = mda.deliver("Alice@Example.NET", CLEAN, envelope_from="bob@example.org")
    assert result == DeliveryResult(
        "delivered", INBOX, 1, SpamVerdict(0.0, (), False), result.detail
    )
    stored = store.read("alice", INBOX, 1)
    assert stored == (
        b"Return-Path: <bob@example.org>\r\n"
        b"X-Spam-Status: No, score=0.0 required=5.0 tests=none\r\n"
        b"X-Spam-Score: 0.0\r\n" + CLEAN
    )
    assert store.messages("alice", JUNK) == []
    assert store.messages("bob", INBOX) == []


def test_gtube_filed_into_junk(store: MaildirStore) -> None:
    mda = MDA(store, _accounts())
    result = mda.deliver("alice@example.net", GTUBE_MESSAGE, envelope_from="<bob@example.org>")
    assert (result.status, result.mailbox, result.uid) == ("delivered", JUNK, 1)
    assert result.verdict is not None and result.verdict.is_spam
    stored = store.read("alice", JUNK, 1)
    assert stored == (
        b"Return-Path: <bob@example.org>\r\n"
        b"X-Spam-Status: Yes, score=1000.0 required=5.0 tests=GTUBE\r\n"
        b"X-Spam-Score: 1000.0\r\n" + GTUBE_MESSAGE
    )
    assert store.messages("alice", INBOX) == []


def test_several_rules_listed_and_threshold_reported(store: MaildirStore) -> None:
    mda = MDA(store, _accounts(), threshold=2.0)
    message = b"Subject: HELLO WORLD\r\n\r\nhi\r\n"
    result = mda.deliver("alice@example.net", message, envelope_from="")
    assert result.mailbox == JUNK
    assert store.read("alice", JUNK, 1) == (
        b"Return-Path: <>\r\n"
        b"X-Spam-Status: Yes, score=4.5 required=2.0"
        b" tests=MISSING_DATE,MISSING_MESSAGE_ID,ALL_CAPS_SUBJECT,MISSING_FROM\r\n"
        b"X-Spam-Score: 4.5\r\n" + message
    )


def test_quirk_no_spam_filter(store: MaildirStore) -> None:
    mda = MDA(store, _accounts(), quirks=frozenset({"mda_no_spam_filter"}))
    result = mda.deliver("alice@example.net", GTUBE_MESSAGE, envelope_from="bob@example.org")
    assert (result.status, result.mailbox) == ("delivered", INBOX)
    stored = store.read("alice", INBOX, 1)
    assert stored.split(b"\r\n")[1].startswith(b"X-Spam-Status: No,")
    assert stored.endswith(GTUBE_MESSAGE)


def test_bare_lf_message_gets_lf_fields(store: MaildirStore) -> None:
    message = CLEAN.replace(b"\r\n", b"\n")
    MDA(store, _accounts()).deliver("alice@example.net", message, envelope_from="b@x.org")
    stored = store.read("alice", INBOX, 1)
    assert b"\r" not in stored
    assert stored.startswith(b"Return-Path: <b@x.org>\nX-Spam-Status: No,")
    assert stored.endswith(b"\nX-Spam-Score: 0.0\n" + message)


def test_unknown_user(store: MaildirStore) -> None:
    result = MDA(store, _accounts()).deliver(
        "nobody@example.net", CLEAN, envelope_from="bob@example.org"
    )
    assert (result.status, result.mailbox, result.uid, result.verdict) == (
        "unknown_user", None, None, None
    )


def test_allowance_catch_all_files_unknown_local_part_into_first_account(store: MaildirStore) -> None:
    """Allowance mx_catch_all: any local part of a local domain goes to the domain's first
    account, intact; a foreign domain is still unknown."""
    mda = MDA(store, _accounts(), quirks=frozenset({"mx_catch_all"}))
    result = mda.deliver("nobody@Example.NET", CLEAN, envelope_from="bob@example.org")
    assert (result.status, result.mailbox, result.uid) == ("delivered", INBOX, 1)
    assert store.read("alice", INBOX, 1).endswith(CLEAN)
    assert store.messages("bob", INBOX) == []
    # A known address still goes to its own account.
    assert mda.deliver("bob@example.net", CLEAN, envelope_from="x@example.org").status == "delivered"
    assert len(store.messages("bob", INBOX)) == 1
    foreign = mda.deliver("nobody@example.com", CLEAN, envelope_from="bob@example.org")
    assert foreign.status == "unknown_user"


def test_junk_recreated_when_deleted(store: MaildirStore) -> None:
    store.delete_mailbox("alice", JUNK)
    result = MDA(store, _accounts()).deliver(
        "alice@example.net", GTUBE_MESSAGE, envelope_from="bob@example.org"
    )
    assert (result.status, result.mailbox, result.uid) == ("delivered", JUNK, 1)


def test_storage_failure_is_a_result_and_delivers_nothing(store: MaildirStore) -> None:
    store.list_mailboxes("alice")
    conn = sqlite3.connect(store.user_path("alice") / "index.sqlite3")
    try:
        conn.execute(
            "CREATE TRIGGER fail BEFORE INSERT ON messages BEGIN SELECT RAISE(ABORT, 'full'); END"
        )
        conn.commit()
        result = MDA(store, _accounts()).deliver(
            "alice@example.net", CLEAN, envelope_from="bob@example.org"
        )
    finally:
        conn.close()
    assert (result.status, result.mailbox, result.uid) == ("failed", None, None)
    assert result.detail
    box = store.mailbox_path("alice", INBOX)
    assert [p for d in ("tmp", "new", "cur") for p in (box / d).iterdir()] == []
    assert store.mailbox_info("alice", INBOX).uidnext == 1


class _BrokenStore(MemoryStore):
    def append(
        self,
        user: str,
        name: str,
        data: bytes,
        flags: Iterable[str] = (),
        internaldate: datetime | None = None,
        *,
        delivery: str | None = None,
    ) -> int:
        raise OSError(28, "No space left on device")


def test_any_store_error_is_a_failed_result() -> None:
    store = _BrokenStore()
    result = MDA(store, _accounts()).deliver("bob@example.net", CLEAN, envelope_from="a@b.c")
    store.close()
    assert result.status == "failed"
    assert "No space left" in result.detail


def test_a_retried_delivery_files_one_copy() -> None:
    store = MemoryStore()
    mda = MDA(store, _accounts())
    first = mda.deliver("alice@example.net", CLEAN, envelope_from="a@b.c", delivery="Q7/alice")
    again = mda.deliver("alice@example.net", CLEAN, envelope_from="a@b.c", delivery="Q7/alice")
    assert (first.status, again.status) == ("delivered", "delivered")
    assert first.uid == again.uid and len(store.messages("alice", INBOX)) == 1
    store.close()


def test_header_injection_in_envelope_sender_refused() -> None:
    store = MemoryStore()
    result = MDA(store, _accounts()).deliver(
        "alice@example.net", CLEAN, envelope_from="a@b.c>\r\nX-Evil: 1"
    )
    assert result.status == "failed"
    assert store.messages("alice", INBOX) == []
    store.close()
