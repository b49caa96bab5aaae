"""The reference IMAP server's CONTEXT=SORT (RFC 5267 §4): SORT RETURN (UPDATE) contexts whose
ADDTO and REMOVEFROM carry positions in the sort order, and PARTIAL for SORT; the command syntax;
the position arithmetic."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from harness.protocol.imap.command_format import format_command
from harness.protocol.imap.command_parser import InvalidCommand, parse_command
from harness.protocol.imap.command_values import SearchAll
from harness.protocol.imap.commands import Command, Sort
from reference_agents.config import ProviderConfig
from reference_agents.imapd.context_sort import (
    addition_pairs,
    ordered_set,
    partial,
    removal_pairs,
)
from reference_agents.tls import TLSMaterial
from tests.unit.test_imapd import (
    MESSAGE,
    Running,
    _ask,
    _raw_selected,
    base_config,  # noqa: F401  (the fixture test_imapd defines)
    serving,
)
from tests.unit.test_imapd_search import _second


def _sized(pad: int) -> bytes:
    return MESSAGE + b"x" * pad + b"\r\n"


@pytest.fixture
def srv_sizes(base_config: tuple[ProviderConfig, TLSMaterial]) -> Iterator[Running]:  # noqa: F811
    """INBOX: after the one message serving() puts there, messages 2 to 5 of 300, 100, 400 and
    200 octets of padding, 2 to 4 \\Flagged."""
    with serving(base_config) as running:
        for pad, flagged in ((300, True), (100, True), (400, True), (200, False)):
            running.store.append("alice", "INBOX", _sized(pad),
                                 frozenset({"\\Flagged"} if flagged else set()))
        yield running


def _esearch(lines: list[bytes]) -> list[bytes]:
    return [line for line in lines if line.startswith(b"* ESEARCH")]


def test_capability_and_updates_in_sort_order(srv_sizes: Running) -> None:
    a = _raw_selected(srv_sizes)
    with contextlib.closing(a), contextlib.closing(_second(srv_sizes)) as b:
        caps = b" ".join(_ask(a, b"c0", b"CAPABILITY"))
        assert b" CONTEXT=SORT" in caps and b" SORT" in caps
        # Sorted by size: 3 (100), 2 (300), 4 (400).
        assert _ask(a, b"u", b"UID SORT RETURN (UPDATE COUNT) (SIZE) UTF-8 FLAGGED") == [
            b'* ESEARCH (TAG "u") UID COUNT 3']
        assert _ask(a, b"s", b"SORT RETURN (PARTIAL 2:3 UPDATE) (SIZE) UTF-8 FLAGGED") == [
            b'* ESEARCH (TAG "s") PARTIAL (2:3 2,4)']
        # RFC 5267 §4.3: the tag of an updating SORT is in use, for SEARCH and SORT alike.
        for again in (b"u SORT RETURN (UPDATE) (SIZE) UTF-8 ALL", b"s SEARCH RETURN (UPDATE) ALL"):
            a.send(again + b"\r\n")
            assert a.until_tagged(again[:1])[-1].startswith(again[:1] + b" BAD")
        # Message 5 (200) starts matching: it goes in at position 2.
        _ask(b, b"d", b"STORE 5 +FLAGS.SILENT (\\Flagged)")
        assert _esearch(_ask(a, b"e", b"NOOP")) == [
            b'* ESEARCH (TAG "u") UID ADDTO (2 5)', b'* ESEARCH (TAG "s") ADDTO (2 5)']
        # 3, 5, 2, 4: message 2 stops matching, at position 3.
        _ask(b, b"f", b"STORE 2 -FLAGS.SILENT (\\Flagged)")
        assert _esearch(_ask(a, b"g", b"NOOP")) == [
            b'* ESEARCH (TAG "u") UID REMOVEFROM (3 2)', b'* ESEARCH (TAG "s") REMOVEFROM (3 2)']
        # 3, 5, 4: message 3 is expunged; its REMOVEFROM (position 1) comes before the EXPUNGE.
        _ask(b, b"h", b"STORE 3 +FLAGS.SILENT (\\Deleted)")
        _ask(b, b"i", b"EXPUNGE")
        assert _ask(a, b"j", b"NOOP") == [
            b'* ESEARCH (TAG "u") UID REMOVEFROM (1 3)', b'* ESEARCH (TAG "s") REMOVEFROM (1 3)',
            b"* 3 EXPUNGE"]
        # 5, 4 (UIDs; now messages 4 and 3): a flagged message of 250 goes in between, after its
        # EXISTS, as UID 6 and as message 5.
        data = _sized(250)
        b.send(b"k APPEND INBOX (\\Flagged) {%d}\r\n" % len(data))
        b.line()
        b.send(data + b"\r\n")
        b.until_tagged(b"k")
        lines = _ask(a, b"l", b"NOOP")
        assert lines[:3] == [b"* 5 EXISTS", b'* ESEARCH (TAG "u") UID ADDTO (2 6)',
                             b'* ESEARCH (TAG "s") ADDTO (2 5)']
        assert _ask(a, b"m", b'CANCELUPDATE "u" "s"') == []
        _ask(b, b"n", b"STORE 1 +FLAGS.SILENT (\\Flagged)")
        assert _esearch(_ask(a, b"o", b"NOOP")) == []
        # By size downwards: 3 (400), 2 (300), 5 (250), 4 (200), 1 (no padding).
        assert _ask(a, b"p", b"SORT RETURN (PARTIAL 5:4) (REVERSE SIZE) UTF-8 ALL") == [
            b'* ESEARCH (TAG "p") PARTIAL (5:4 4,1)']
        assert _ask(a, b"q", b"SORT RETURN (PARTIAL 9:6) (REVERSE SIZE) UTF-8 ALL") == [
            b'* ESEARCH (TAG "q") PARTIAL (9:6 NIL)']


def test_pairs_keep_the_requested_order() -> None:
    # From 5 1 7 3 9: 1 and 7 leave from position 2, then 9 from position 3 (RFC 5267 §4.3.4).
    assert removal_pairs([5, 1, 7, 3, 9], {1, 7, 9}) == [(2, [1, 7]), (3, [9])]
    assert removal_pairs([5, 1], {5, 1}) == [(1, [5, 1])]
    assert removal_pairs([5, 1], set()) == []
    # 5 7 3 becomes 5 2 1 7 3 9: 2 1 at position 2, then 9 at 6 (§4.3.3).
    assert addition_pairs([5, 2, 1, 7, 3, 9], {2, 1, 9}) == [(2, [2, 1]), (6, [9])]
    assert addition_pairs([4], {4}) == [(1, [4])]
    assert addition_pairs([4, 2], set()) == []
    # §3.2: ranges only upwards.
    assert ordered_set([2, 1]) == "2,1"
    assert ordered_set([3, 4, 5, 9, 1]) == "3:5,9,1"
    assert ordered_set([7]) == "7"
    assert partial([3, 1, 2], 2, 5) == "(2:5 1:2)"
    assert partial([3, 1, 2], 3, 1) == "(3:1 3,1:2)"
    assert partial([3, 1, 2], 4, 9) == "(4:9 NIL)"


def test_sort_return_update_and_partial_parse_and_format() -> None:
    line = b"a UID SORT RETURN (UPDATE PARTIAL 1:20 CONTEXT COUNT) (SIZE) UTF-8 ALL"
    expected = Command("a", "UID SORT", Sort((("SIZE", False),), "UTF-8", SearchAll(),
                                             ("UPDATE", "PARTIAL", "CONTEXT", "COUNT"), (1, 20)))
    assert parse_command(line) == expected
    assert b"".join(format_command(expected)) == line + b"\r\n"
    # RFC 5267 §4.4: "either one PARTIAL, one ALL, or neither"; §5: no "*", no 0.
    for bad in (b"a SORT RETURN (ALL PARTIAL 1:2) (SIZE) UTF-8 ALL",
                b"a SORT RETURN (PARTIAL 1:*) (SIZE) UTF-8 ALL",
                b"a SORT RETURN (PARTIAL 0:2) (SIZE) UTF-8 ALL",
                b"a SORT RETURN (SAVE) (SIZE) UTF-8 ALL"):
        assert isinstance(parse_command(bad), InvalidCommand)
