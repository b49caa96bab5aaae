"""IMAP in depth — CONDSTORE (RFC 7162 §3.1): mod-sequences, conditional STORE, CHANGEDSINCE.

Skipped where the server does not offer CONDSTORE. Every test enables it the way RFC 7162
§3.1.8 recommends, with SELECT (CONDSTORE), and compares mod-sequences only with each other:
their absolute values belong to the server.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from harness.clients.imap import IMAPClient
from harness.protocol.imap.responses import ESearch, Fetch, Search, Status
from harness.protocol.imap.seqset import SequenceSet
from harness.suite import Evidence, run, token
from harness.targets import Target
from suites.imap.imap_helpers import append, flags_of, mbox, message, scratch, session

pytestmark = pytest.mark.step(9)


def _needs_condstore(client: IMAPClient) -> None:
    if "CONDSTORE" not in client.capabilities:
        pytest.skip("the server does not offer CONDSTORE (RFC 7162)")


@contextlib.asynccontextmanager
async def _mailbox(target: Target, evidence: Evidence,
                   count: int) -> AsyncIterator[tuple[IMAPClient, IMAPClient, str]]:
    """Two sessions and a scratch mailbox holding *count* messages (nothing selected yet)."""
    async with session(target, evidence) as a, scratch(a) as name, \
            session(target, evidence) as b:
        _needs_condstore(a)
        for _ in range(count):
            await append(a, name, message(token()))
        yield a, b, name


async def _select(client: IMAPClient, name: str) -> int | None:
    """SELECT (CONDSTORE); the HIGHESTMODSEQ it reported."""
    selected = await client.select(name, condstore=True)
    assert selected.result.ok, f"SELECT {name} (CONDSTORE) answered {selected.result.status}"
    return selected.highestmodseq


def _fetches(untagged: tuple[object, ...]) -> dict[int, dict[str, object]]:
    """UID -> items of the FETCH responses that carry a UID."""
    out: dict[int, dict[str, object]] = {}
    for response in untagged:
        if isinstance(response, Fetch) and isinstance(response.items.get("UID"), int):
            out.setdefault(int(str(response.items["UID"])), {}).update(response.items)
    return out


async def _modseqs(client: IMAPClient) -> dict[int, int]:
    """UID -> MODSEQ of every message, by UID FETCH 1:* (MODSEQ)."""
    result = await client.command("UID FETCH 1:* (MODSEQ)")
    assert result.ok, f"UID FETCH 1:* (MODSEQ) answered {result.status}"
    found = {uid: items.get("MODSEQ") for uid, items in _fetches(result.untagged).items()}
    missing = sorted(uid for uid, value in found.items() if not isinstance(value, int))
    assert not missing, f"FETCH (MODSEQ) gave no MODSEQ for UIDs {missing}"
    return {uid: int(str(value)) for uid, value in found.items()}


@pytest.mark.requirement("IMAP-CONDSTORE-HIGHESTMODSEQ")
def test_imap_highestmodseq_covers_every_message(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[int | None, dict[int, int], int | None, int, int | None]:
        async with _mailbox(target, evidence, 3) as (a, b, name):
            first = await _select(a, name)
            before = await _modseqs(a)
            await b.select(name)
            changed = sorted(before)[1]
            assert (await b.store(str(changed), "+", ["\\Flagged"], uid=True)).ok
            await a.command("UNSELECT" if "UNSELECT" in a.capabilities else "CLOSE")
            second = await _select(a, name)
            after = max((await _modseqs(a)).values())
            status = await a.command(f"STATUS {mbox(name)} (HIGHESTMODSEQ)")
            reported = [r.items.get("HIGHESTMODSEQ") for r in status.untagged
                        if isinstance(r, Status)]
            status_value = reported[0] if reported and isinstance(reported[0], int) else None
            return first, before, second, after, status_value

    first, before, second, after, status = run(scenario())
    # RFC 7162 §3.1.2.1: "the server MUST send an OK untagged response, including the
    # HIGHESTMODSEQ response code with every successful SELECT or EXAMINE command ... where
    # <mod-sequence-value> is the highest mod-sequence value of all messages in the mailbox."
    assert first is not None, "SELECT (CONDSTORE) reported no HIGHESTMODSEQ"
    assert first >= max(before.values()), (
        f"HIGHESTMODSEQ {first} is below the MODSEQ of a message: {before}")
    assert second is not None and second > first and second >= after, (
        f"after a STORE in another session HIGHESTMODSEQ went {first} -> {second}; the highest "
        f"MODSEQ is now {after}")
    # RFC 7162 §3.1.7: "HIGHESTMODSEQ Status data item ... the highest mod-sequence value of all
    # messages in the mailbox."
    assert status == second, f"STATUS (HIGHESTMODSEQ) gave {status}, SELECT gave {second}"


@pytest.mark.requirement("IMAP-CONDSTORE-STORE-MODSEQ")
def test_imap_store_raises_modseq(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[int, int, dict[str, object], int]:
        async with _mailbox(target, evidence, 1) as (a, b, name):
            await _select(a, name)
            await _select(b, name)
            (uid, before), = (await _modseqs(a)).items()
            stored = await a.store(str(uid), "+", ["\\Flagged"], uid=True)
            assert stored.ok, f"UID STORE answered {stored.status}"
            response = _fetches(stored.untagged).get(uid, {})
            after = (await _modseqs(a))[uid]
            await b.noop()
            other = (await _modseqs(b))[uid]
            return before, after, response, other

    before, after, response, other = run(scenario())
    # RFC 7162 §3.1.3: "If the operation is successful, the server MUST update the mod-sequence
    # attribute of the message"; §3.1: once CONDSTORE is enabled "the server MUST then include
    # mod-sequence data in all subsequent untagged FETCH responses".
    assert after > before, f"MODSEQ was {before} before the STORE and {after} after it"
    assert response.get("MODSEQ") == after, (
        f"the STORE's untagged FETCH carried MODSEQ {response.get('MODSEQ')}, not {after}")
    assert other == after, f"another session sees MODSEQ {other}, this one {after}"


@pytest.mark.requirement("IMAP-CONDSTORE-UNCHANGEDSINCE")
def test_imap_conditional_store(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[list[int], object, dict[int, dict[str, object]],
                                  dict[int, set[str]]]:
        async with _mailbox(target, evidence, 3) as (a, b, name):
            await _select(a, name)
            await _select(b, name)
            modseqs = await _modseqs(a)
            uids = sorted(modseqs)
            since = max(modseqs.values())
            # Another session changes the second message after A read the mod-sequences.
            assert (await b.store(str(uids[1]), "+", ["$Other"], uid=True)).ok
            await a.noop()
            result = await a.command(
                f"UID STORE {uids[0]}:{uids[-1]} (UNCHANGEDSINCE {since}) "
                "+FLAGS.SILENT (\\Flagged)")
            assert result.ok, f"conditional UID STORE answered {result.status}"
            code = result.code.value if result.code and result.code.name == "MODIFIED" else None
            fetched = await a.command(f"UID FETCH {uids[0]}:{uids[-1]} (FLAGS)")
            flags = {uid: flags_of(items) for uid, items in _fetches(fetched.untagged).items()}
            return uids, code, _fetches(result.untagged), flags

    uids, modified, responses, flags = run(scenario())
    # RFC 7162 §3.1.3: "if the mod-sequence of any metadata item of the message is greater than
    # the specified UNCHANGEDSINCE value, then the requested operation MUST NOT be performed";
    # "the server MUST return in the tagged response a MODIFIED response code" naming the UIDs.
    assert modified is not None, "a message changed since UNCHANGEDSINCE, but no [MODIFIED]"
    named = list(SequenceSet.parse(str(modified)).iter(uids[-1]))
    assert named == [uids[1]], f"[MODIFIED {modified}] should name exactly UID {uids[1]}"
    assert "\\Flagged" not in flags[uids[1]], f"UID {uids[1]} was stored anyway: {flags}"
    for uid in (uids[0], uids[2]):
        assert "\\Flagged" in flags[uid], f"UID {uid} passed the test but was not stored"
        # "An untagged FETCH response MUST be sent, even if the .SILENT suffix is specified,
        # and the response MUST include the MODSEQ message data item."
        assert isinstance(responses.get(uid, {}).get("MODSEQ"), int), (
            f"no untagged FETCH with MODSEQ for stored UID {uid}: {responses}")


@pytest.mark.requirement("IMAP-CONDSTORE-CHANGEDSINCE")
def test_imap_fetch_changedsince(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[int, dict[int, dict[str, object]], dict[int, int]]:
        async with _mailbox(target, evidence, 3) as (a, b, name):
            await _select(a, name)
            uids = sorted(await _modseqs(a))
            since = max((await _modseqs(a)).values())
            assert (await a.store(str(uids[2]), "+", ["\\Seen"], uid=True)).ok
            result = await a.command(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {since})")
            assert result.ok, f"UID FETCH (CHANGEDSINCE) answered {result.status}"
            return since, _fetches(result.untagged), await _modseqs(a)

    since, returned, modseqs = run(scenario())
    # RFC 7162 §3.1.4.1: "The information described by message data items is only returned for
    # messages that have a mod-sequence bigger than <mod-sequence>"; "it implicitly adds the
    # MODSEQ FETCH message data item".
    expected = sorted(uid for uid, value in modseqs.items() if value > since)
    assert sorted(returned) == expected, (
        f"CHANGEDSINCE {since} returned UIDs {sorted(returned)}; MODSEQs are {modseqs}")
    for uid, items in returned.items():
        assert items.get("MODSEQ") == modseqs[uid], (
            f"UID {uid}: CHANGEDSINCE response carried MODSEQ {items.get('MODSEQ')}")


@pytest.mark.requirement("IMAP-SEARCH-MODSEQ")
def test_imap_search_modseq(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[int, list[int], int | None, dict[int, int]]:
        async with _mailbox(target, evidence, 3) as (a, b, name):
            await _select(a, name)
            uids = sorted(await _modseqs(a))
            assert (await a.store(str(uids[0]), "+", ["\\Answered"], uid=True)).ok
            modseqs = await _modseqs(a)
            since = modseqs[uids[0]]
            result = await a.command(f"UID SEARCH MODSEQ {since}")
            assert result.ok, f"UID SEARCH MODSEQ answered {result.status}"
            found: list[int] = []
            suffix: int | None = None
            for response in result.untagged:
                if isinstance(response, Search):
                    found, suffix = list(response.numbers), response.modseq
                elif isinstance(response, ESearch):
                    text = response.data.get("ALL")
                    found = list(SequenceSet.parse(str(text)).iter(uids[-1])) if text else []
                    value = response.data.get("MODSEQ")
                    suffix = int(str(value)) if value is not None else None
            return since, sorted(found), suffix, modseqs

    since, found, suffix, modseqs = run(scenario())
    # RFC 7162 §3.1.5: "Messages that have modification values that are equal to or greater
    # than <mod-sequence-valzer>"; "the server MUST also append (to the end of the untagged
    # SEARCH response) the highest mod-sequence for all messages being returned."
    expected = sorted(uid for uid, value in modseqs.items() if value >= since)
    assert found == expected, f"SEARCH MODSEQ {since} found {found}; MODSEQs are {modseqs}"
    highest = max(modseqs[uid] for uid in expected)
    assert suffix == highest, (
        f"SEARCH MODSEQ result ended with (MODSEQ {suffix}), not the highest {highest}")
