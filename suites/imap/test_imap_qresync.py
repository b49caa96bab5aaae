"""IMAP in depth — QRESYNC (RFC 7162 §3.2): VANISHED in place of EXPUNGE, quick resync at SELECT,
and UID FETCH (CHANGEDSINCE n VANISHED).

Skipped where the server does not offer QRESYNC. Each session that uses it sends ENABLE QRESYNC
first, as §3.2.3 requires. Mod-sequences are only compared with each other; a VANISHED (EARLIER)
may name UIDs that never existed (the RFC's own examples do), so the checks ask only that it
names every message expunged since and none that is still there.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from harness.clients.imap import CommandResult, IMAPClient
from harness.protocol.imap.responses import Enabled, Expunge, Fetch, Vanished
from harness.suite import Evidence, check, need, precondition, run, token
from harness.targets import Target
from suites.imap.imap_helpers import append, mbox, message, scratch, select, session

pytestmark = pytest.mark.step(9)


async def _enable(client: IMAPClient) -> None:
    """ENABLE QRESYNC, a step the tests depend on (IMAP-ENABLE judges ENABLE)."""
    need("QRESYNC" in client.capabilities, "the server does not offer QRESYNC (RFC 7162 §3.2)")
    result = await client.command("ENABLE QRESYNC")
    enabled = {c.upper() for r in result.untagged if isinstance(r, Enabled) for c in r.caps}
    precondition(result.ok and "QRESYNC" in enabled,
                 f"ENABLE QRESYNC answered {result.status}, enabling {sorted(enabled)}")


@contextlib.asynccontextmanager
async def _mailbox(target: Target, evidence: Evidence, count: int, *,
                   enable: bool = True) -> AsyncIterator[tuple[IMAPClient, IMAPClient, str]]:
    """Session A (QRESYNC enabled), session B (not) and a scratch mailbox of *count* messages."""
    async with session(target, evidence) as a, scratch(a) as name, \
            session(target, evidence) as b:
        if enable:
            await _enable(a)
        else:
            need("QRESYNC" in a.capabilities, "the server does not offer QRESYNC (RFC 7162 §3.2)")
        for _ in range(count):
            await append(a, name, message(token()))
        yield a, b, name


async def _uids(client: IMAPClient, count: int) -> list[int]:
    """The UIDs of the *count* messages of the selected mailbox (a step, not judged)."""
    result = await client.command("UID FETCH 1:* (UID)")
    precondition(result.ok, f"UID FETCH 1:* (UID) answered {result.status}")
    found = sorted(int(str(r.items["UID"])) for r in result.untagged
                   if isinstance(r, Fetch) and isinstance(r.items.get("UID"), int))
    precondition(len(found) == count, f"UID FETCH 1:* (UID) gave UIDs {found}, not {count}")
    return found


def _fetched(result: CommandResult) -> dict[int, dict[str, object]]:
    """UID -> items of the untagged FETCH responses that carry a UID."""
    out: dict[int, dict[str, object]] = {}
    for response in result.untagged:
        if isinstance(response, Fetch) and isinstance(response.items.get("UID"), int):
            out.setdefault(int(str(response.items["UID"])), {}).update(response.items)
    return out


def _vanished(result: CommandResult, *, earlier: bool) -> list[Vanished]:
    return [r for r in result.untagged if isinstance(r, Vanished) and r.earlier == earlier]


def _check_earlier(requirement: str, result: CommandResult, expunged: int, present: list[int],
                   since: int) -> None:
    """VANISHED (EARLIER) names the message expunged since *since* and none still present."""
    earlier = _vanished(result, earlier=True)
    check(requirement, any(v.names(expunged) for v in earlier),
          f"UID {expunged} was expunged since MODSEQ {since}; no VANISHED (EARLIER) names it")
    for uid in present:
        check(requirement, not any(v.names(uid) for v in earlier),
              f"VANISHED (EARLIER) names UID {uid}, still there")


async def _expunge(client: IMAPClient, uid: int) -> CommandResult:
    """Set \\Deleted on *uid* and EXPUNGE (steps; the tests judge how the expunge is told)."""
    stored = await client.store(str(uid), "+", ["\\Deleted"], uid=True, silent=True)
    precondition(stored.ok, f"UID STORE {uid} +FLAGS.SILENT (\\Deleted) answered {stored.status}")
    result = await client.expunge()
    precondition(result.ok, f"EXPUNGE answered {result.status}")
    return result


@pytest.mark.requirement("IMAP-QRESYNC-ENABLE-FIRST")
def test_imap_qresync_select_needs_enable(target: Target, evidence: Evidence) -> None:
    async def scenario() -> str:
        async with _mailbox(target, evidence, 1, enable=False) as (a, _b, name):
            selected = await select(a, name)
            precondition(selected.uidvalidity is not None, "SELECT reported no UIDVALIDITY")
            await a.command("UNSELECT" if "UNSELECT" in a.capabilities else "CLOSE")
            without = await a.command(
                f"SELECT {mbox(name)} (QRESYNC ({selected.uidvalidity} 1))")
            # RFC 7162 §3.2.5: "A server MUST respond with a tagged BAD response if the Quick
            # Resynchronization parameter to the SELECT/EXAMINE command is specified and the
            # client hasn't issued "ENABLE QRESYNC" in the current connection".
            check("IMAP-QRESYNC-ENABLE-FIRST", without.status == "BAD",
                  f"SELECT (QRESYNC ...) before ENABLE QRESYNC answered {without.status}")
            await _enable(a)
            enabled = await a.command(
                f"SELECT {mbox(name)} (QRESYNC ({selected.uidvalidity} 1))")
            return enabled.status

    enabled = run(scenario())
    check("IMAP-QRESYNC-ENABLE-FIRST", enabled == "OK",
          f"the same SELECT after ENABLE QRESYNC answered {enabled}")


@pytest.mark.requirement("IMAP-QRESYNC-SELECT")
def test_imap_qresync_select_reports_changes(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[list[int], CommandResult, int]:
        async with _mailbox(target, evidence, 4) as (a, b, name):
            first = await select(a, name)
            precondition(first.uidvalidity is not None, "SELECT reported no UIDVALIDITY")
            # IMAP-CONDSTORE-HIGHESTMODSEQ judges HIGHESTMODSEQ; this test needs it.
            precondition(first.highestmodseq is not None,
                         "SELECT after ENABLE QRESYNC: no HIGHESTMODSEQ")
            assert first.highestmodseq is not None
            uids = await _uids(a, 4)
            await a.command("UNSELECT" if "UNSELECT" in a.capabilities else "CLOSE")
            # Meanwhile another session flags one message and expunges another.
            await select(b, name)
            stored = await b.store(str(uids[1]), "+", ["\\Flagged"], uid=True)
            precondition(stored.ok, f"UID STORE +FLAGS (\\Flagged) answered {stored.status}")
            await _expunge(b, uids[2])
            known = f"{uids[0]}:{uids[-1]}"
            again = await a.command(
                f"SELECT {mbox(name)} (QRESYNC ({first.uidvalidity} {first.highestmodseq} {known}))")
            check("IMAP-QRESYNC-SELECT", again.ok, f"SELECT (QRESYNC ...) answered {again.status}")
            return uids, again, first.highestmodseq

    uids, result, since = run(scenario())
    # RFC 7162 §3.2.5.1: "The server sends the client any pending flag changes (using FETCH
    # responses that MUST contain UIDs) and expunges that have occurred in this mailbox since
    # the provided modification sequence", expunges as VANISHED (EARLIER) (§3.2.10.1).
    _check_earlier("IMAP-QRESYNC-SELECT", result, uids[2], [uids[0], uids[1], uids[3]], since)
    check("IMAP-QRESYNC-SELECT", not _vanished(result, earlier=False),
          "SELECT sent a VANISHED without (EARLIER)")
    fetched = _fetched(result)
    check("IMAP-QRESYNC-SELECT", uids[1] in fetched,
          f"UID {uids[1]} was flagged since MODSEQ {since}: no FETCH for it")
    flags = fetched[uids[1]].get("FLAGS")
    check("IMAP-QRESYNC-SELECT", isinstance(flags, tuple) and "\\Flagged" in map(str, flags),
          f"the FETCH of UID {uids[1]}, flagged since, carried FLAGS {flags}")
    modseq = fetched[uids[1]].get("MODSEQ")
    check("IMAP-QRESYNC-SELECT", isinstance(modseq, int) and modseq > since,
          f"its FETCH carried MODSEQ {modseq}, the client knew MODSEQ {since}")
    unchanged = sorted({uids[0], uids[3]} & set(fetched))
    check("IMAP-QRESYNC-SELECT", not unchanged,
          f"FETCH for UIDs {unchanged}, unchanged since MODSEQ {since}")


@pytest.mark.requirement("IMAP-QRESYNC-VANISHED")
def test_imap_qresync_expunge_is_vanished(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[list[int], CommandResult, CommandResult]:
        async with _mailbox(target, evidence, 3) as (a, b, name):
            await select(a, name)
            await select(b, name)
            uids = await _uids(a, 3)
            own = await _expunge(a, uids[0])
            await _expunge(b, uids[2])
            return uids, own, await a.noop()

    uids, own, other = run(scenario())
    # RFC 7162 §3.2.10.2: once QRESYNC is enabled "the server MUST use the VANISHED response
    # without the EARLIER tag instead of the EXPUNGE response ... this affects the EXPUNGE
    # [RFC3501] and UID EXPUNGE [UIDPLUS] commands, as well as messages expunged in other
    # connections."
    for what, result, uid in (("its own EXPUNGE", own, uids[0]),
                              ("another session's EXPUNGE", other, uids[2])):
        expunges = [r for r in result.untagged if isinstance(r, Expunge)]
        check("IMAP-QRESYNC-VANISHED", not expunges,
              f"{what} was announced with EXPUNGE after ENABLE QRESYNC")
        check("IMAP-QRESYNC-VANISHED", any(v.names(uid) for v in _vanished(result, earlier=False)),
              f"{what} removed UID {uid}; no VANISHED named it")
        check("IMAP-QRESYNC-VANISHED", not _vanished(result, earlier=True),
              f"{what} was announced as VANISHED (EARLIER)")


@pytest.mark.requirement("IMAP-QRESYNC-FETCH-VANISHED")
def test_imap_uid_fetch_vanished(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[list[int], int, CommandResult]:
        async with _mailbox(target, evidence, 4) as (a, _b, name):
            selected = await select(a, name)
            precondition(selected.highestmodseq is not None,
                         "SELECT after ENABLE QRESYNC: no HIGHESTMODSEQ")
            assert selected.highestmodseq is not None
            since = selected.highestmodseq
            uids = await _uids(a, 4)
            await _expunge(a, uids[1])
            stored = await a.store(str(uids[3]), "+", ["\\Seen"], uid=True)
            precondition(stored.ok, f"UID STORE +FLAGS (\\Seen) answered {stored.status}")
            result = await a.command(
                f"UID FETCH {uids[0]}:{uids[-1]} (FLAGS) (CHANGEDSINCE {since} VANISHED)")
            check("IMAP-QRESYNC-FETCH-VANISHED", result.ok,
                  f"UID FETCH (CHANGEDSINCE VANISHED) answered {result.status}")
            return uids, since, result

    uids, since, result = run(scenario())
    # RFC 7162 §3.2.6: "report those messages from the UID set parameter that have been expunged
    # and whose associated mod-sequence is larger than the specified mod-sequence ... using the
    # VANISHED (EARLIER) response"; "Any VANISHED (EARLIER) responses MUST be returned before
    # any FETCH responses".
    _check_earlier("IMAP-QRESYNC-FETCH-VANISHED", result, uids[1], [uids[0], uids[2], uids[3]],
                   since)
    kinds = [type(r) for r in result.untagged if isinstance(r, Vanished | Fetch)]
    first_fetch = kinds.index(Fetch) if Fetch in kinds else len(kinds)
    check("IMAP-QRESYNC-FETCH-VANISHED", Vanished not in kinds[first_fetch:],
          "a VANISHED (EARLIER) came after a FETCH response")
    check("IMAP-QRESYNC-FETCH-VANISHED", sorted(_fetched(result)) == [uids[3]],
          f"CHANGEDSINCE {since} returned UIDs {sorted(_fetched(result))}; only {uids[3]} changed")
