"""IMAP in depth — SEARCH: the key set, CHARSET UTF-8, ESEARCH in IMAP4rev2."""

from __future__ import annotations

import pytest

from harness.protocol.imap.responses import ESearch, Search
from harness.suite import Evidence, need, run, token
from harness.targets import Target
from suites.imap.imap_helpers import append, message, raw, scratch, session

pytestmark = pytest.mark.step(9)

DATE_A = "01-Feb-2020 12:00:00 +0000"
DATE_B = "15-Mar-2021 12:00:00 +0000"


@pytest.mark.requirement("IMAP-SEARCH-KEYS")
def test_imap_search_keys(target: Target, evidence: Evidence) -> None:
    mark = token()
    first = message(mark, subject="Quarterly Report", body="The Budget is attached.\r\n")
    second = message(mark, subject="lunch", body="pizza " + "x" * 2000 + "\r\n",
                     extra=[("Cc", "Carol <carol@example.net>")])

    async def scenario() -> dict[str, set[int]]:
        async with session(target, evidence) as client, scratch(client) as name:
            r = await client.append(name, first, ["\\Flagged", "$Work"], internaldate=DATE_A)
            assert r.ok
            r = await client.append(name, second, ["\\Seen"], internaldate=DATE_B)
            assert r.ok
            await client.select(name)
            found: dict[str, set[int]] = {}
            for key in KEYS:
                result, numbers = await client.search(key)
                assert result.ok, f"SEARCH {key} answered {result.status}"
                found[key] = set(numbers)
            return found

    found = run(scenario())
    # RFC 9051 §6.4.4: "The SEARCH command searches the mailbox for messages that match the
    # given searching criteria"; "In all search keys that use strings, a message matches the key
    # if the string is a substring of the associated text.  The matching SHOULD be
    # case-insensitive."
    wrong = {k: (sorted(found[k]), sorted(v)) for k, v in KEYS.items() if found[k] != v}
    assert not wrong, f"SEARCH results (found, expected): {wrong}"


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


@pytest.mark.requirement("IMAP-SEARCH-CHARSET")
def test_imap_search_charset_utf8(target: Target, evidence: Evidence) -> None:
    word = "Grüße"

    async def scenario() -> tuple[str, set[int], str, str | None]:
        async with session(target, evidence) as client, scratch(client) as name:
            data = message(token(), body=f"Viele {word} aus Köln\r\n").replace(
                b"X-Mailharness-Token", b"MIME-Version: 1.0\r\nContent-Type: text/plain; "
                b"charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\nX-Mailharness-Token")
            await append(client, name, data)
            await client.select(name)
            literal = word.encode("utf-8")
            tagged, seen = await raw(client, b"SEARCH CHARSET UTF-8 BODY {%d+}\r\n" % len(literal)
                                     + literal) if "LITERAL+" in client.capabilities else (None, [])
            need(tagged is not None, "server does not advertise LITERAL+ (needed to send UTF-8)")
            assert tagged is not None
            numbers = {n for r in seen if isinstance(r, Search) for n in r.numbers}
            bogus, _ = await raw(client, b"SEARCH CHARSET X-NO-SUCH-CHARSET ALL")
            assert bogus is not None
            return tagged.status, numbers, bogus.status, bogus.code.name if bogus.code else None

    status, numbers, bogus, code = run(scenario())
    # RFC 9051 §6.4.4: "US-ASCII and UTF-8 charsets MUST be supported"; "If the server does not
    # support the specified [CHARSET], it MUST return a tagged NO response (not a BAD)" with
    # BADCHARSET.
    assert status == "OK", f"SEARCH CHARSET UTF-8 answered {status}"
    assert numbers == {1}, f"SEARCH CHARSET UTF-8 BODY {word} found {numbers}"
    assert bogus == "NO" and code == "BADCHARSET", f"unknown charset answered {bogus} [{code}]"


@pytest.mark.requirement("IMAP-ESEARCH")
def test_imap_esearch_in_rev2(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[int, list[ESearch], list[ESearch]]:
        async with session(target, evidence) as client, scratch(client) as name:
            need("IMAP4REV2" in client.capabilities and "ENABLE" in client.capabilities,
                 "server does not offer IMAP4rev2 through ENABLE")
            for flags in (["\\Seen"], [], ["\\Seen"]):
                await append(client, name, message(token()), flags)
            assert (await client.command("ENABLE IMAP4rev2")).ok
            await client.select(name)
            plain = await client.command("SEARCH SEEN")
            ret = await client.command("SEARCH RETURN (MIN MAX COUNT) SEEN")
            searches = sum(1 for r in [*plain.untagged, *ret.untagged] if isinstance(r, Search))
            return (searches, [r for r in plain.untagged if isinstance(r, ESearch)],
                    [r for r in ret.untagged if isinstance(r, ESearch)])

    searches, plain, ret = run(scenario())
    # RFC 9051 §7.3.4 / §6.4.4: in IMAP4rev2 "the server MUST respond to a SEARCH command with an
    # ESEARCH response"; "If the RETURN option is omitted, ... the server returns ESEARCH with
    # ALL".
    assert searches == 0, "IMAP4rev2 session got an IMAP4rev1 SEARCH response"
    assert len(plain) == 1 and plain[0].data.get("ALL") == "1,3", f"SEARCH SEEN gave {plain}"
    assert len(ret) == 1, f"SEARCH RETURN gave {ret}"
    assert (ret[0].data.get("MIN"), ret[0].data.get("MAX"), ret[0].data.get("COUNT")) == (1, 3, 2), \
        f"RETURN (MIN MAX COUNT) gave {ret[0].data}"
