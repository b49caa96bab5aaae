"""IMAP in depth — SEARCH: the key set, CHARSET UTF-8, ESEARCH in IMAP4rev2."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from harness.protocol.imap.responses import ESearch, Search
from harness.protocol.imap.seqset import SequenceSet
from harness.suite import Evidence, check, need, precondition, run, token
from harness.targets import Target
from suites.imap.imap_helpers import append, message, raw, scratch, select, session

pytestmark = pytest.mark.step(9)

DATE_A = "01-Feb-2020 12:00:00 +0000"
DATE_B = "15-Mar-2021 12:00:00 +0000"


async def _searched(target: Target, evidence: Evidence,
                    messages: list[tuple[bytes, list[str], str | None]],
                    keys: Iterable[str]) -> dict[str, set[int]]:
    """APPEND *messages* (data, flags, INTERNALDATE) to a scratch mailbox, select it, and
    SEARCH each of *keys*: the message numbers found for each."""
    async with session(target, evidence) as client, scratch(client) as name:
        for data, flags, date in messages:
            r = await client.append(name, data, flags, internaldate=date)
            precondition(r.ok, f"setup APPEND answered {r.status}")
        await select(client, name)
        found: dict[str, set[int]] = {}
        for key in keys:
            result, numbers = await client.search(key)
            check("IMAP-SEARCH-KEYS", result.ok, f"SEARCH {key} answered {result.status}")
            found[key] = set(numbers)
        return found


@pytest.mark.requirement("IMAP-SEARCH-KEYS")
def test_imap_search_keys(target: Target, evidence: Evidence) -> None:
    mark = token()
    first = message(mark, subject="Quarterly Report", body="The Budget is attached.\r\n")
    second = message(mark, subject="lunch", body="pizza " + "x" * 2000 + "\r\n",
                     extra=[("Cc", "Carol <carol@example.net>")])

    found = run(_searched(target, evidence, [(first, ["\\Flagged", "$Work"], DATE_A),
                                             (second, ["\\Seen"], DATE_B)], KEYS))
    # RFC 9051 §6.4.4: "The SEARCH command searches the mailbox for messages that match the
    # given searching criteria"; "In all search keys that use strings, a message matches the key
    # if the string is a substring of the associated text.  The matching SHOULD be
    # case-insensitive."
    wrong = {k: (sorted(found[k]), sorted(v)) for k, v in KEYS.items() if found[k] != v}
    check("IMAP-SEARCH-KEYS", not wrong, f"SEARCH results (found, expected): {wrong}")


KEYS: dict[str, set[int]] = {
    "ALL": {1, 2},
    "FLAGGED": {1},
    "UNFLAGGED": {2},
    "SEEN": {2},
    "UNSEEN": {1},
    "KEYWORD $Work": {1},
    "UNKEYWORD $Work": {2},
    "SUBJECT quarterly": {1},
    "SUBJECT REPORT": {1},
    "BODY budget": {1},
    "TEXT BUDGET": {1},
    "CC carol": {2},
    "HEADER Cc Carol": {2},
    "FROM sender@example.com": {1, 2},
    "LARGER 1500": {2},
    "SMALLER 1500": {1},
    "BEFORE 01-Mar-2020": {1},
    "SINCE 01-Mar-2021": {2},
    "ON 15-Mar-2021": {2},
    "NOT FLAGGED": {2},
    "OR FLAGGED SEEN": {1, 2},
    "2": {2},
    "1:* SEEN": {2},
    "(SEEN FLAGGED)": set(),
}


@pytest.mark.requirement("IMAP-SEARCH-KEYS")
def test_imap_search_or_with_a_side_no_message_matches(target: Target, evidence: Evidence) -> None:
    """OR is true when either side is: with every message \\Seen, UNSEEN matches none of them,
    and OR UNSEEN UNDELETED still matches every undeleted one. (A server that decides a flag
    key for the whole mailbox from its counts of seen or deleted messages can get this wrong.)"""
    mark = token()

    seen = [(message(mark, subject=f"or {n}"), ["\\Seen"], None) for n in (1, 2)]
    found = run(_searched(target, evidence, seen, OR_KEYS))
    # RFC 9051 §6.4.4: "OR <search-key1> <search-key2>  Messages that match either search key";
    # "NOT <search-key>  Messages that do not match the specified search key"; UNSEEN "Messages
    # that do not have the \Seen flag set", UNDELETED "... the \Deleted flag set".
    wrong = {k: (sorted(found[k]), sorted(v)) for k, v in OR_KEYS.items() if found[k] != v}
    check("IMAP-SEARCH-KEYS", not wrong, f"SEARCH results (found, expected): {wrong}")


#: Both messages \Seen, neither \Deleted nor \Answered.
OR_KEYS: dict[str, set[int]] = {
    "UNSEEN": set(),
    "OR UNSEEN UNDELETED": {1, 2},
    "OR UNDELETED UNSEEN": {1, 2},
    "OR UNANSWERED UNSEEN": {1, 2},
    "OR UNSEEN ALL": {1, 2},
    "NOT (SEEN DELETED)": {1, 2},
}


@pytest.mark.requirement("IMAP-SEARCH-CHARSET")
def test_imap_search_charset_utf8(target: Target, evidence: Evidence) -> None:
    word = "Grüße"

    async def scenario() -> tuple[str | None, set[int], str | None, str | None]:
        async with session(target, evidence) as client:
            # The UTF-8 search string travels as a non-synchronizing literal (RFC 7888).
            need("LITERAL+" in client.capabilities,
                 "server does not advertise LITERAL+ (needed to send UTF-8)")
            async with scratch(client) as name:
                data = message(token(), body=f"Viele {word} aus Köln\r\n").replace(
                    b"X-Mailharness-Token", b"MIME-Version: 1.0\r\nContent-Type: text/plain; "
                    b"charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\nX-Mailharness-Token")
                await append(client, name, data)
                await select(client, name)
                literal = word.encode("utf-8")
                tagged, seen = await raw(
                    client, b"SEARCH CHARSET UTF-8 BODY {%d+}\r\n" % len(literal) + literal)
                if tagged is None:
                    return None, set(), None, None
                numbers = {n for r in seen if isinstance(r, Search) for n in r.numbers}
                bogus, _ = await raw(client, b"SEARCH CHARSET X-NO-SUCH-CHARSET ALL")
                if bogus is None:
                    return tagged.status, numbers, None, None
                return tagged.status, numbers, bogus.status, bogus.code.name if bogus.code else None

    status, numbers, bogus, code = run(scenario())
    # RFC 9051 §6.4.4: "US-ASCII and UTF-8 charsets MUST be supported"; "If the server does not
    # support the specified [CHARSET], it MUST return a tagged NO response (not a BAD)" with
    # BADCHARSET.
    check("IMAP-SEARCH-CHARSET", status == "OK",
          f"SEARCH CHARSET UTF-8 answered {status or 'nothing: the connection closed'}")
    check("IMAP-SEARCH-CHARSET", numbers == {1},
          f"SEARCH CHARSET UTF-8 BODY {word} found {sorted(numbers)}")
    check("IMAP-SEARCH-CHARSET", bogus == "NO" and code == "BADCHARSET",
          f"unknown charset answered {bogus or 'nothing: the connection closed'} [{code}]")


@pytest.mark.requirement("IMAP-ESEARCH")
def test_imap_esearch_in_rev2(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[int, list[ESearch], list[ESearch]]:
        async with session(target, evidence) as client, scratch(client) as name:
            need("IMAP4REV2" in client.capabilities and "ENABLE" in client.capabilities,
                 "server does not offer IMAP4rev2 through ENABLE")
            for flags in (["\\Seen"], [], ["\\Seen"]):
                await append(client, name, message(token()), flags)
            enabled = await client.command("ENABLE IMAP4rev2")
            precondition(enabled.ok, f"ENABLE IMAP4rev2 answered {enabled.status}")
            await select(client, name)
            plain = await client.command("SEARCH SEEN")
            ret = await client.command("SEARCH RETURN (MIN MAX COUNT) SEEN")
            searches = sum(1 for r in [*plain.untagged, *ret.untagged] if isinstance(r, Search))
            return (searches, [r for r in plain.untagged if isinstance(r, ESearch)],
                    [r for r in ret.untagged if isinstance(r, ESearch)])

    searches, plain, ret = run(scenario())
    # RFC 9051 §7.3.4 / §6.4.4: in IMAP4rev2 "the server MUST respond to a SEARCH command with an
    # ESEARCH response"; "If the RETURN option is omitted, ... the server returns ESEARCH with
    # ALL".
    check("IMAP-ESEARCH", searches == 0, "IMAP4rev2 session got an IMAP4rev1 SEARCH response")
    check("IMAP-ESEARCH", len(plain) == 1 and _numbers(plain[0].data.get("ALL")) == [1, 3],
          f"SEARCH SEEN gave {plain}")
    check("IMAP-ESEARCH", len(ret) == 1, f"SEARCH RETURN gave {ret}")
    minmax = (ret[0].data.get("MIN"), ret[0].data.get("MAX"), ret[0].data.get("COUNT"))
    check("IMAP-ESEARCH", minmax == (1, 3, 2), f"RETURN (MIN MAX COUNT) gave {ret[0].data}")


def _numbers(value: object) -> list[int] | None:
    """The numbers of an ESEARCH ALL sequence-set, in any of its spellings ("1,3", "3,1")."""
    if not isinstance(value, str):
        return None
    try:
        parsed = SequenceSet.parse(value)
    except ValueError:
        return None
    top = max((n for bounds in parsed.ranges for n in bounds if n is not None), default=0)
    return sorted(parsed.iter(top)) if top <= 10_000 else None


@pytest.mark.requirement("IMAP-SEARCH-ADDRESS")
def test_imap_search_from_matches_the_address(target: Target, evidence: Evidence) -> None:
    mark = token()
    commented = message(mark, subject="commented", extra=[("Cc", "Ann Other <ann@example.org>")])
    commented = commented.replace(b"From: Sender <sender@example.com>",
                                  b"From: <user-from (comment)@ (comment) domain.org>", 1)
    plain = message(mark, subject="plain")

    async def scenario() -> dict[str, set[int]]:
        async with session(target, evidence) as client, scratch(client) as name:
            precondition(b"(comment)@ (comment)" in commented, "the test message has its From")
            for data in (commented, plain):
                await append(client, name, data)
            await select(client, name)
            found = {}
            for key in ("FROM user-from@domain.org", "CC ann@example.org", "CC \"Ann Other\""):
                result, numbers = await client.search(key)
                precondition(result.ok, f"SEARCH {key} answered {result.status}")
                found[key] = set(numbers)
            return found

    found = run(scenario())
    # RFC 9051 §6.4.4: FROM <string> "Messages that contain the specified string in the
    # envelope structure's FROM field" (CC likewise). The envelope has the address
    # user-from@domain.org: the comments are CFWS (RFC 5322 §3.2.2), not part of it.
    for key, expected in (("FROM user-from@domain.org", {1}), ("CC ann@example.org", {1}),
                          ("CC \"Ann Other\"", {1})):
        check("IMAP-SEARCH-ADDRESS", found[key] == expected,
              f"SEARCH {key} found {sorted(found[key])}, not {sorted(expected)}")
