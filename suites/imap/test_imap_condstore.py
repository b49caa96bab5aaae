"""IMAP in depth — CONDSTORE (RFC 7162 §3.1): mod-sequences, conditional STORE, CHANGEDSINCE.

Skipped where the server does not offer CONDSTORE. Every test enables it the way RFC 7162
§3.1.8 recommends, with SELECT (CONDSTORE), and compares mod-sequences only with each other:
their absolute values belong to the server.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

import pytest

from harness.clients.imap import IMAPClient
from harness.protocol.imap.responses import ESearch, Fetch, Search, Status
from harness.protocol.imap.seqset import SequenceSet
from harness.suite import Evidence, check, need, precondition, run, token
from harness.targets import Target
from suites.imap.imap_helpers import append, flags_of, mbox, message, scratch, select, session

pytestmark = pytest.mark.step(9)


@contextlib.asynccontextmanager
async def _mailbox(target: Target, evidence: Evidence,
                   count: int) -> AsyncIterator[tuple[IMAPClient, IMAPClient, str]]:
    """Two sessions and a scratch mailbox holding *count* messages (nothing selected yet)."""
    async with session(target, evidence) as a, scratch(a) as name, \
            session(target, evidence) as b:
        need("CONDSTORE" in a.capabilities, "the server does not offer CONDSTORE (RFC 7162)")
        for _ in range(count):
            await append(a, name, message(token()))
        yield a, b, name


async def _select(client: IMAPClient, name: str, requirement: str | None = None) -> int | None:
    """SELECT (CONDSTORE); the HIGHESTMODSEQ it reported. A step, unless *requirement* judges
    it."""
    selected = await client.select(name, condstore=True)
    detail = f"SELECT {name} (CONDSTORE) answered {selected.result.status}"
    if requirement is None:
        precondition(selected.result.ok, detail)
    else:
        check(requirement, selected.result.ok, detail)
    return selected.highestmodseq


def _fetches(untagged: tuple[object, ...]) -> dict[int, dict[str, object]]:
    """UID -> items of the FETCH responses that carry a UID."""
    out: dict[int, dict[str, object]] = {}
    for response in untagged:
        if isinstance(response, Fetch) and isinstance(response.items.get("UID"), int):
            out.setdefault(int(str(response.items["UID"])), {}).update(response.items)
    return out


async def _modseqs(client: IMAPClient, requirement: str | None = None, *,
                   expect: Sequence[int] = ()) -> dict[int, int]:
    """UID -> MODSEQ of every message, by UID FETCH 1:* (MODSEQ), which must cover the UIDs
    *expect*. A step, unless *requirement* judges it."""
    result = await client.command("UID FETCH 1:* (MODSEQ)")
    found = {uid: items.get("MODSEQ") for uid, items in _fetches(result.untagged).items()}
    missing = sorted({uid for uid, value in found.items() if not isinstance(value, int)}
                     | (set(expect) - set(found)))
    detail = f"UID FETCH 1:* (MODSEQ) answered {result.status}, no MODSEQ for UIDs {missing}"
    if requirement is None:
        precondition(result.ok and not missing, detail)
    else:
        check(requirement, result.ok and not missing, detail)
    return {uid: int(str(value)) for uid, value in found.items()}


async def _store(client: IMAPClient, uid: int, flag: str) -> None:
    """A UID STORE +FLAGS the test makes a change with (a step, not judged)."""
    stored = await client.store(str(uid), "+", [flag], uid=True)
    precondition(stored.ok, f"UID STORE {uid} +FLAGS ({flag}) answered {stored.status}")


@pytest.mark.requirement("IMAP-CONDSTORE-HIGHESTMODSEQ")
def test_imap_highestmodseq_covers_every_message(target: Target, evidence: Evidence) -> None:
    req = "IMAP-CONDSTORE-HIGHESTMODSEQ"

    async def scenario() -> None:
        async with _mailbox(target, evidence, 3) as (a, b, name):
            first = await _select(a, name, req)
            before = await _modseqs(a)
            precondition(len(before) == 3, f"UID FETCH 1:* (MODSEQ) found UIDs {sorted(before)}")
            # RFC 7162 §3.1.2.1: "the server MUST send an OK untagged response, including the
            # HIGHESTMODSEQ response code with every successful SELECT or EXAMINE command ...
            # where <mod-sequence-value> is the highest mod-sequence value of all messages in
            # the mailbox."
            check(req, first is not None, "SELECT (CONDSTORE) reported no HIGHESTMODSEQ")
            assert first is not None
            check(req, first >= max(before.values()),
                  f"HIGHESTMODSEQ {first} is below the MODSEQ of a message: {before}")
            await select(b, name)
            await _store(b, sorted(before)[1], "\\Flagged")
            await a.command("UNSELECT" if "UNSELECT" in a.capabilities else "CLOSE")
            second = await _select(a, name, req)
            after = max((await _modseqs(a, expect=sorted(before))).values())
            check(req, second is not None and second > first and second >= after,
                  f"after a STORE in another session HIGHESTMODSEQ went {first} -> {second}; "
                  f"the highest MODSEQ is now {after}")
            status = await a.command(f"STATUS {mbox(name)} (HIGHESTMODSEQ)")
            reported = [r.items.get("HIGHESTMODSEQ") for r in status.untagged
                        if isinstance(r, Status)]
            # RFC 7162 §3.1.7: "HIGHESTMODSEQ Status data item ... the highest mod-sequence
            # value of all messages in the mailbox."
            check(req, status.ok and reported == [second],
                  f"STATUS (HIGHESTMODSEQ) answered {status.status} with {reported}, SELECT gave "
                  f"{second}")

    run(scenario())


@pytest.mark.requirement("IMAP-CONDSTORE-STORE-MODSEQ")
def test_imap_store_raises_modseq(target: Target, evidence: Evidence) -> None:
    req = "IMAP-CONDSTORE-STORE-MODSEQ"

    async def scenario() -> None:
        async with _mailbox(target, evidence, 1) as (a, b, name):
            await _select(a, name)
            await _select(b, name)
            modseqs = await _modseqs(a)
            precondition(len(modseqs) == 1, f"UID FETCH 1:* (MODSEQ) found UIDs {sorted(modseqs)}")
            (uid, before), = modseqs.items()
            stored = await a.store(str(uid), "+", ["\\Flagged"], uid=True)
            precondition(stored.ok, f"UID STORE +FLAGS (\\Flagged) answered {stored.status}")
            response = _fetches(stored.untagged).get(uid, {})
            after = (await _modseqs(a, req, expect=[uid]))[uid]
            # RFC 7162 §3.1.3: "If the operation is successful, the server MUST update the
            # mod-sequence attribute of the message"; §3.1: once CONDSTORE is enabled "the
            # server MUST then include mod-sequence data in all subsequent untagged FETCH
            # responses".
            check(req, after > before, f"MODSEQ was {before} before the STORE and {after} after it")
            check(req, response.get("MODSEQ") == after,
                  f"the STORE's untagged FETCH carried MODSEQ {response.get('MODSEQ')}, not {after}")
            await b.noop()
            other = (await _modseqs(b, req, expect=[uid]))[uid]
            check(req, other == after, f"another session sees MODSEQ {other}, this one {after}")

    run(scenario())


@pytest.mark.requirement("IMAP-CONDSTORE-UNCHANGEDSINCE")
def test_imap_conditional_store(target: Target, evidence: Evidence) -> None:
    req = "IMAP-CONDSTORE-UNCHANGEDSINCE"

    async def scenario() -> None:
        async with _mailbox(target, evidence, 3) as (a, b, name):
            await _select(a, name)
            await _select(b, name)
            modseqs = await _modseqs(a)
            uids = sorted(modseqs)
            precondition(len(uids) == 3, f"UID FETCH 1:* (MODSEQ) found UIDs {uids}")
            since = max(modseqs.values())
            # Another session changes the second message after A read the mod-sequences.
            await _store(b, uids[1], "$Other")
            await a.noop()
            result = await a.command(
                f"UID STORE {uids[0]}:{uids[-1]} (UNCHANGEDSINCE {since}) "
                "+FLAGS.SILENT (\\Flagged)")
            # RFC 7162 §3.1.3: "if the mod-sequence of any metadata item of the message is
            # greater than the specified UNCHANGEDSINCE value, then the requested operation MUST
            # NOT be performed"; "the server MUST return in the tagged response a MODIFIED
            # response code" naming the UIDs.
            check(req, result.ok, f"conditional UID STORE answered {result.status}")
            modified = result.code.value if result.code and result.code.name == "MODIFIED" else None
            check(req, modified is not None,
                  f"a message changed since UNCHANGEDSINCE, but no [MODIFIED] (code {result.code})")
            named = list(SequenceSet.parse(str(modified)).iter(uids[-1]))
            check(req, named == [uids[1]], f"[MODIFIED {modified}] should name exactly UID {uids[1]}")
            responses = _fetches(result.untagged)
            fetched = await a.command(f"UID FETCH {uids[0]}:{uids[-1]} (FLAGS)")
            precondition(fetched.ok, f"UID FETCH (FLAGS) answered {fetched.status}")
            found = _fetches(fetched.untagged)
            precondition(sorted(found) == uids, f"UID FETCH (FLAGS) returned UIDs {sorted(found)}")
            flags = {uid: flags_of(items) for uid, items in found.items()}
            check(req, "\\Flagged" not in flags[uids[1]],
                  f"UID {uids[1]} was stored anyway: {sorted(flags[uids[1]])}")
            for uid in (uids[0], uids[2]):
                check(req, "\\Flagged" in flags[uid], f"UID {uid} passed the test but was not stored")
                # "An untagged FETCH response MUST be sent, even if the .SILENT suffix is
                # specified, and the response MUST include the MODSEQ message data item."
                check(req, isinstance(responses.get(uid, {}).get("MODSEQ"), int),
                      f"no untagged FETCH with MODSEQ for stored UID {uid}: {responses}")

    run(scenario())


@pytest.mark.requirement("IMAP-CONDSTORE-CHANGEDSINCE")
def test_imap_fetch_changedsince(target: Target, evidence: Evidence) -> None:
    req = "IMAP-CONDSTORE-CHANGEDSINCE"

    async def scenario() -> None:
        async with _mailbox(target, evidence, 3) as (a, b, name):
            await _select(a, name)
            uids = sorted(await _modseqs(a))
            precondition(len(uids) == 3, f"UID FETCH 1:* (MODSEQ) found UIDs {uids}")
            since = max((await _modseqs(a, expect=uids)).values())
            await _store(a, uids[2], "\\Seen")
            result = await a.command(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {since})")
            check(req, result.ok, f"UID FETCH (CHANGEDSINCE {since}) answered {result.status}")
            returned = _fetches(result.untagged)
            modseqs = await _modseqs(a, expect=uids)
            # RFC 7162 §3.1.4.1: "The information described by message data items is only
            # returned for messages that have a mod-sequence bigger than <mod-sequence>"; "it
            # implicitly adds the MODSEQ FETCH message data item".
            expected = sorted(uid for uid, value in modseqs.items() if value > since)
            check(req, sorted(returned) == expected,
                  f"CHANGEDSINCE {since} returned UIDs {sorted(returned)}; MODSEQs are {modseqs}")
            for uid, items in returned.items():
                check(req, items.get("MODSEQ") == modseqs.get(uid),
                      f"UID {uid}: CHANGEDSINCE response carried MODSEQ {items.get('MODSEQ')}, "
                      f"FETCH MODSEQ says {modseqs.get(uid)}")

    run(scenario())


@pytest.mark.requirement("IMAP-SEARCH-MODSEQ")
def test_imap_search_modseq(target: Target, evidence: Evidence) -> None:
    req = "IMAP-SEARCH-MODSEQ"

    async def scenario() -> None:
        async with _mailbox(target, evidence, 3) as (a, b, name):
            await _select(a, name)
            uids = sorted(await _modseqs(a))
            precondition(len(uids) == 3, f"UID FETCH 1:* (MODSEQ) found UIDs {uids}")
            await _store(a, uids[0], "\\Answered")
            modseqs = await _modseqs(a, expect=uids)
            since = modseqs[uids[0]]
            result = await a.command(f"UID SEARCH MODSEQ {since}")
            check(req, result.ok, f"UID SEARCH MODSEQ {since} answered {result.status}")
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
            # RFC 7162 §3.1.5: "Messages that have modification values that are equal to or
            # greater than <mod-sequence-valzer>"; "the server MUST also append (to the end of
            # the untagged SEARCH response) the highest mod-sequence for all messages being
            # returned."
            expected = sorted(uid for uid, value in modseqs.items() if value >= since)
            check(req, sorted(found) == expected,
                  f"SEARCH MODSEQ {since} found {sorted(found)}; MODSEQs are {modseqs}")
            highest = max(modseqs[uid] for uid in expected)
            check(req, suffix == highest,
                  f"SEARCH MODSEQ result ended with (MODSEQ {suffix}), not the highest {highest}")

    run(scenario())
