"""IMAP in depth — two sessions on one mailbox: updates at the allowed moments, stable UIDs."""

from __future__ import annotations

import pytest

from harness.clients.imap import IMAPClient
from harness.protocol.imap.responses import Exists, Expunge
from harness.suite import Evidence, run, token
from harness.targets import Target
from suites.imap.imap_helpers import (
    append,
    fetch_uid,
    flags_of,
    message,
    scratch,
    session,
    uids,
)

pytestmark = pytest.mark.step(9)


@pytest.mark.requirement("IMAP-CONCURRENT-UPDATES")
def test_imap_noop_reports_other_sessions_append(target: Target, evidence: Evidence) -> None:
    async def scenario() -> list[int]:
        async with session(target, evidence) as a, scratch(a) as name, \
                session(target, evidence) as b:
            await append(a, name, message(token()))
            await a.select(name)
            await append(b, name, message(token()))
            result = await a.noop()
            return [r.n for r in result.untagged if isinstance(r, Exists)]

    exists = run(scenario())
    # RFC 9051 §5.2: "A server MUST send mailbox size updates automatically if a mailbox size
    # change is observed during the processing of a command."
    assert exists == [2], f"NOOP after another session's APPEND reported EXISTS {exists}"


@pytest.mark.requirement("IMAP-SESSIONS-AGREE")
def test_imap_flag_change_reaches_other_session(target: Target, evidence: Evidence) -> None:
    async def scenario() -> set[str]:
        async with session(target, evidence) as a, scratch(a) as name, \
                session(target, evidence) as b:
            await append(a, name, message(token()))
            await a.select(name)
            await b.select(name)
            (uid,) = await uids(b)
            assert (await b.store(str(uid), "+", ["\\Flagged"], uid=True)).ok
            await a.noop()
            return flags_of(await fetch_uid(a, uid, "(FLAGS)"))

    flags = run(scenario())
    # RFC 9051 §5.2: "A server SHOULD send message flag updates automatically, without requiring
    # the client to request such updates explicitly."
    assert "\\Flagged" in flags, f"session A still sees flags {flags} after B's STORE and NOOP"


@pytest.mark.requirement("IMAP-NO-EXPUNGE-DURING-FETCH")
def test_imap_no_expunge_during_fetch_store_search(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[dict[str, int], list[int]]:
        async with session(target, evidence) as a, scratch(a) as name, \
                session(target, evidence) as b:
            for _ in range(3):
                await append(a, name, message(token()))
            await a.select(name)
            await b.select(name)
            assert (await b.store("2", "+", ["\\Deleted"], silent=True)).ok
            assert (await b.expunge()).ok
            during: dict[str, int] = {}
            for verb, command in (("FETCH", "FETCH 1 (FLAGS)"), ("STORE", "STORE 1 +FLAGS (x)"),
                                  ("SEARCH", "SEARCH ALL")):
                result = await a.command(command)
                during[verb] = sum(1 for r in result.untagged if isinstance(r, Expunge))
            result = await a.noop()
            return during, [r.seq for r in result.untagged if isinstance(r, Expunge)]

    during, at_noop = run(scenario())
    # RFC 9051 §7.5.1: "An EXPUNGE response MUST NOT be sent when no command is in progress, nor
    # while responding to a FETCH, STORE, or SEARCH command."
    assert not any(during.values()), f"untagged EXPUNGE while responding to {during}"
    assert at_noop == [2], f"NOOP afterwards reported EXPUNGE {at_noop}, not [2]"


@pytest.mark.requirement("IMAP-UIDVALIDITY-STABLE")
def test_imap_uidvalidity_stable_and_uidnext_grows(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[tuple[int | None, int | None], tuple[int | None, int | None],
                                  set[str]]:
        async with session(target, evidence) as a, scratch(a) as name:
            await append(a, name, message(token()), ["$Kept"])
            first = await a.select(name)
            await a.command("UNSELECT" if "UNSELECT" in a.capabilities else "CLOSE")
            await append(a, name, message(token()))
            async with session(target, evidence) as b:
                second = await b.select(name)
                (uid, _) = await uids(b)
                flags = flags_of(await fetch_uid(b, uid, "(FLAGS)"))
            return (first.uidvalidity, first.uidnext), (second.uidvalidity, second.uidnext), flags

    (v1, n1), (v2, n2), flags = run(scenario())
    # RFC 9051 §2.3.1.1: "the unique identifier validity value ... MUST NOT change unless the
    # UIDs of the messages in the mailbox have changed"; "The next unique identifier value ...
    # MUST NOT change unless new messages are added to the mailbox"; it grows when they are.
    assert v1 is not None and v1 == v2, f"UIDVALIDITY {v1} then {v2} in another session"
    assert n1 is not None and n2 is not None and n2 > n1, f"UIDNEXT {n1}, then {n2} after APPEND"
    assert "$Kept" in flags, f"flags not kept across sessions: {flags}"


@pytest.mark.requirement("IMAP-UID-MONOTONIC")
def test_imap_expunged_uid_not_reused(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[int, list[int]]:
        async with session(target, evidence) as a, scratch(a) as name:
            for _ in range(2):
                await append(a, name, message(token()))
            await a.select(name)
            highest = (await uids(a))[-1]
            await a.store(str(highest), "+", ["\\Deleted"], uid=True, silent=True)
            await a.expunge()
            await append(a, name, message(token()))
            await a.noop()
            return highest, await uids(a)

    expunged, now = run(scenario())
    # RFC 9051 §2.3.1.1: "Unique identifiers are assigned in a strictly ascending fashion in the
    # mailbox; as each message is added to the mailbox, it is assigned a higher UID than those
    # of all message(s) that are already in the mailbox."
    assert now[-1] > expunged, f"new message got UID {now[-1]}, not above expunged {expunged}"




def _needs_rev1(client: IMAPClient) -> None:
    if "IMAP4REV1" not in client.capabilities:
        pytest.skip("the server offers no IMAP4rev1, and \\Recent exists only there")


async def _recent_view(client: IMAPClient, uid: int) -> tuple[bool, list[int]]:
    """Whether *uid* is \\Recent in this session, and what UID SEARCH RECENT says."""
    flagged = "\\Recent" in flags_of(await fetch_uid(client, uid, "(FLAGS)"))
    result, found = await client.search("RECENT", uid=True)
    assert result.ok, f"UID SEARCH RECENT answered {result.status}"
    return flagged, sorted(found)


@pytest.mark.requirement("IMAP-RECENT")
def test_imap_new_message_recent_in_exactly_one_session(target: Target,
                                                         evidence: Evidence) -> None:
    async def scenario() -> tuple[int, dict[str, tuple[bool, list[int]]]]:
        async with session(target, evidence) as a, scratch(a) as name, \
                session(target, evidence) as b, session(target, evidence) as c:
            _needs_rev1(a)
            await a.select(name)
            await b.select(name)
            await append(c, name, message(token()))  # a third session, neither of the two
            await a.noop()
            await b.noop()
            (uid,) = await uids(a)
            return uid, {"A": await _recent_view(a, uid), "B": await _recent_view(b, uid)}

    uid, views = run(scenario())
    # RFC 3501 §2.3.2: \Recent — "This session is the first session to have been notified about
    # this message; if the session is read-write, subsequent sessions will not see \Recent set
    # for this message." "If it is not possible to determine whether or not this session is the
    # first session to be notified about a message, then that message SHOULD be considered
    # recent."
    holders = sorted(name for name, (flagged, _) in views.items() if flagged)
    assert len(holders) == 1, (
        f"UID {uid} arrived while sessions A and B both had the mailbox selected read-write; "
        f"FETCH FLAGS shows \\Recent in {holders or 'neither'}, not in exactly one")
    for name, (flagged, found) in views.items():
        # RFC 3501 §6.4.4: "RECENT Messages that have the \Recent flag set."
        assert found == ([uid] if flagged else []), (
            f"session {name}: UID SEARCH RECENT gave {found}, but FETCH FLAGS "
            f"{'shows' if flagged else 'does not show'} \\Recent on UID {uid}")


@pytest.mark.requirement("IMAP-EXAMINE-KEEPS-RECENT")
def test_imap_examine_keeps_recent(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[int | None, int | None, bool]:
        async with session(target, evidence) as a, scratch(a) as name:
            _needs_rev1(a)
            await append(a, name, message(token()))  # nobody has the mailbox selected
            async with session(target, evidence) as b:
                examined = await b.select(name, readonly=True)
            async with session(target, evidence) as c:
                selected = await c.select(name)
                (uid,) = await uids(c)
                flagged, _ = await _recent_view(c, uid)
            return examined.recent, selected.recent, flagged

    examined, selected, flagged = run(scenario())
    # RFC 3501 §6.3.2: "no changes to the permanent state of the mailbox, including per-user
    # state, are permitted; in particular, EXAMINE MUST NOT cause messages to lose the \Recent
    # flag."
    if not examined:
        pytest.skip(f"EXAMINE reported {examined} RECENT: this server does not call the "
                    "appended message recent (IMAP-RECENT judges that)")
    assert selected == 1 and flagged, (
        f"after EXAMINE reported {examined} RECENT, a later SELECT reported {selected} RECENT "
        f"and FETCH FLAGS {'shows' if flagged else 'does not show'} \\Recent: EXAMINE took it")
