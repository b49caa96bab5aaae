"""The reference IMAP server's SEARCH extensions over a real socket: ESEARCH for IMAP4rev1
(RFC 4731), "$" (RFC 5182), WITHIN (RFC 5032) and contexts (RFC 5267 §4), byte for byte."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest

from harness.protocol.imap.command_values import SearchWithin
from reference_agents.config import ProviderConfig
from reference_agents.imapd.cmd_search import MAX_UPDATE_CONTEXTS, _partial
from reference_agents.imapd.search import MessageContext, matches
from reference_agents.mailstore import MessageInfo
from reference_agents.tls import TLSMaterial
from tests.unit.test_imapd import (
    MESSAGE,
    RawClient,
    Running,
    _ask,
    _raw_login,
    _raw_selected,
    base_config,  # noqa: F401  (the fixture test_imapd defines)
    serving,
)


@pytest.fixture
def srv4(base_config: tuple[ProviderConfig, TLSMaterial]) -> Iterator[Running]:  # noqa: F811
    """A server whose INBOX holds four messages, the second and fourth \\Flagged."""
    with serving(base_config) as running:
        for flags in ({"\\Flagged"}, set(), {"\\Flagged"}):
            running.store.append("alice", "INBOX", MESSAGE, frozenset(flags))
        yield running


def test_esearch_for_an_imap4rev1_client(srv4: Running) -> None:
    with _selected(srv4) as c:
        assert _ask(c, b"d", b"SEARCH RETURN (MIN MAX ALL COUNT) FLAGGED") == [
            b'* ESEARCH (TAG "d") MIN 2 MAX 4 ALL 2,4 COUNT 2']
        assert _ask(c, b"e", b"UID SEARCH RETURN () FLAGGED") == [b'* ESEARCH (TAG "e") UID ALL 2,4']
        # RFC 4731 §3.1: with no match, MIN/MAX/ALL are left out and COUNT stays.
        assert _ask(c, b"f", b"SEARCH RETURN (MIN MAX ALL COUNT) DRAFT") == [
            b'* ESEARCH (TAG "f") COUNT 0']
        assert _ask(c, b"g", b"SEARCH FLAGGED") == [b"* SEARCH 2 4"]


def test_saved_result_follows_expunge_and_ends_with_select(srv4: Running) -> None:
    with _selected(srv4) as c:
        assert _ask(c, b"d", b"FETCH $ (UID)") == []  # RFC 5182 §2.1: empty before any SAVE
        assert _ask(c, b"e", b"SEARCH RETURN (SAVE) FLAGGED") == []
        assert _ask(c, b"f", b"FETCH $ (UID)") == [b"* 2 FETCH (UID 2)", b"* 4 FETCH (UID 4)"]
        assert _ask(c, b"g", b"STORE 2 +FLAGS.SILENT (\\Deleted)") == []
        assert _ask(c, b"h", b"EXPUNGE") == [b"* 2 EXPUNGE"]
        assert _ask(c, b"i", b"SEARCH $") == [b"* SEARCH 3"]
        assert _ask(c, b"j", b"UID SEARCH RETURN (SAVE MIN) ALL") == [b'* ESEARCH (TAG "j") UID MIN 1']
        assert _ask(c, b"k", b"UID FETCH $ (UID)") == [b"* 1 FETCH (UID 1)"]
        # A SAVE answered NO empties "$".
        c.send(b"l SEARCH RETURN (SAVE) CHARSET X-NONE ALL\r\n")
        assert c.until_tagged(b"l")[-1].startswith(b"l NO [BADCHARSET")
        assert _ask(c, b"m", b"SEARCH $") == [b"* SEARCH"]
        assert _ask(c, b"n", b"SEARCH RETURN (SAVE) ALL") == []
        c.send(b"o SELECT INBOX\r\n")
        c.until_tagged(b"o")
        assert _ask(c, b"p", b"SEARCH $") == [b"* SEARCH"]


def test_partial_results(srv4: Running) -> None:
    with _selected(srv4) as c:
        assert _ask(c, b"d", b"SEARCH RETURN (PARTIAL 2:3) ALL") == [
            b'* ESEARCH (TAG "d") PARTIAL (2:3 2:3)']
        assert _ask(c, b"e", b"SEARCH RETURN (PARTIAL 9:5) ALL") == [
            b'* ESEARCH (TAG "e") PARTIAL (9:5 NIL)']
        assert _partial([3, 5, 9], 3, 2) == "(3:2 5,9)"


@contextmanager
def _selected(srv: Running) -> Iterator[RawClient]:
    c = _raw_selected(srv)
    try:
        yield c
    finally:
        c.close()


def _second(srv: Running) -> RawClient:
    c = _raw_login(srv)
    c.send(b"c SELECT INBOX\r\n")
    c.until_tagged(b"c")
    return c


def test_updates_in_order_and_cancelled(srv4: Running) -> None:
    with _selected(srv4) as a, contextlib.closing(_second(srv4)) as b:
        assert _ask(a, b"u1", b"UID SEARCH RETURN (UPDATE) FLAGGED") == [b'* ESEARCH (TAG "u1") UID']
        assert _ask(a, b"s1", b"SEARCH RETURN (UPDATE COUNT) FLAGGED") == [
            b'* ESEARCH (TAG "s1") COUNT 2']
        a.send(b"u1 SEARCH RETURN (UPDATE) ALL\r\n")  # RFC 5267 §4.3: the tag is in use
        assert a.until_tagged(b"u1")[-1].startswith(b"u1 BAD")
        _ask(b, b"d", b"STORE 1 +FLAGS.SILENT (\\Flagged)")
        assert _ask(a, b"e", b"NOOP") == [
            b"* 1 FETCH (FLAGS (\\Flagged \\Recent))", b'* ESEARCH (TAG "u1") UID ADDTO (0 1)',
            b'* ESEARCH (TAG "s1") ADDTO (0 1)']
        _ask(b, b"f", b"STORE 2 +FLAGS.SILENT (\\Deleted)")
        _ask(b, b"g", b"EXPUNGE")
        # REMOVEFROM before the EXPUNGE, ADDTO after the EXISTS (RFC 5267 §4.3.3, §4.3.4).
        assert _ask(a, b"h", b"NOOP") == [
            b'* ESEARCH (TAG "u1") UID REMOVEFROM (0 2)', b'* ESEARCH (TAG "s1") REMOVEFROM (0 2)',
            b"* 2 EXPUNGE"]
        assert _ask(a, b"i", b'CANCELUPDATE "u1"') == []
        b.send(b"j APPEND INBOX (\\Flagged) {%d}\r\n" % len(MESSAGE))
        b.line()
        b.send(MESSAGE + b"\r\n")
        b.until_tagged(b"j")
        assert _ask(a, b"k", b"NOOP") == [b"* 4 EXISTS", b'* ESEARCH (TAG "s1") ADDTO (0 4)',
                                          b"* 3 RECENT"]


def test_update_contexts_are_limited(srv4: Running) -> None:
    with _selected(srv4) as c:
        for n in range(MAX_UPDATE_CONTEXTS):
            _ask(c, b"t%d" % n, b"UID SEARCH RETURN (UPDATE COUNT) ALL")
        # RFC 5267 §4.3.1: refused with NOUPDATE, the other return options honoured.
        assert _ask(c, b"x", b"UID SEARCH RETURN (UPDATE COUNT) ALL") == [
            b'* ESEARCH (TAG "x") UID COUNT 4', b'* NO [NOUPDATE "x"] too many updating searches']
        assert _ask(c, b"y", b'CANCELUPDATE "t0"') == []
        assert _ask(c, b"z", b"UID SEARCH RETURN (UPDATE) ALL") == [b'* ESEARCH (TAG "z") UID']


def _ctx(age: timedelta, now: datetime) -> MessageContext:
    info = MessageInfo(1, frozenset(), now - age, 10)
    return MessageContext(1, info, 1, 1, lambda: None, now=now)


def test_within_compares_seconds() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    # RFC 5032 §2: OLDER matches "less recent than or equal to the target time", YOUNGER
    # "more recent than or equal to" it.
    assert matches(SearchWithin(True, 60), _ctx(timedelta(seconds=60), now))
    assert matches(SearchWithin(False, 60), _ctx(timedelta(seconds=60), now))
    assert not matches(SearchWithin(True, 60), _ctx(timedelta(seconds=59), now))
    assert not matches(SearchWithin(False, 60), _ctx(timedelta(seconds=61), now))
