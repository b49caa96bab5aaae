"""IMAP in depth — two sessions on one mailbox: updates at the allowed moments, stable UIDs."""

from __future__ import annotations

import pytest

from harness.clients.imap import IMAPClient
from harness.protocol.imap.responses import Exists, Expunge
from harness.suite import Evidence, check, need, precondition, run, token
from harness.targets import Target
from suites.imap.imap_helpers import (
    append,
    fetch_uid,
    flags_of,
    message,
    only_uid,
    scratch,
    select,
    session,
    uids,
)

pytestmark = pytest.mark.step(9)


@pytest.mark.requirement("IMAP-CONCURRENT-UPDATES")
def test_imap_noop_reports_other_sessions_append(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with session(target, evidence) as a, scratch(a) as name, \
                session(target, evidence) as b:
            await append(a, name, message(token()))
            await select(a, name)
            await append(b, name, message(token()))
            result = await a.noop()
            exists = [r.n for r in result.untagged if isinstance(r, Exists)]
            # RFC 9051 §5.2: "A server MUST send mailbox size updates automatically if a mailbox
            # size change is observed during the processing of a command."
            check("IMAP-CONCURRENT-UPDATES", exists == [2],
                  f"NOOP ({result.status}) after another session's APPEND reported EXISTS {exists}")

    run(scenario())


@pytest.mark.requirement("IMAP-SESSIONS-AGREE")
def test_imap_flag_change_reaches_other_session(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with session(target, evidence) as a, scratch(a) as name, \
                session(target, evidence) as b:
            await append(a, name, message(token()))
            await select(a, name)
            await select(b, name)
            uid = await only_uid(b)
            stored = await b.store(str(uid), "+", ["\\Flagged"], uid=True)
            precondition(stored.ok, f"UID STORE +FLAGS (\\Flagged) answered {stored.status}")
            await a.noop()
            flags = flags_of(await fetch_uid(a, uid, "(FLAGS)"))
            # RFC 9051 §5.2: "A server SHOULD send message flag updates automatically, without
            # requiring the client to request such updates explicitly."
            check("IMAP-SESSIONS-AGREE", "\\Flagged" in flags,
                  f"session A still sees flags {sorted(flags)} after B's STORE and NOOP")

    run(scenario())


@pytest.mark.requirement("IMAP-NO-EXPUNGE-DURING-FETCH")
def test_imap_no_expunge_during_fetch_store_search(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with session(target, evidence) as a, scratch(a) as name, \
                session(target, evidence) as b:
            for _ in range(3):
                await append(a, name, message(token()))
            await select(a, name)
            await select(b, name)
            stored = await b.store("2", "+", ["\\Deleted"], silent=True)
            precondition(stored.ok, f"STORE 2 +FLAGS.SILENT (\\Deleted) answered {stored.status}")
            expunged = await b.expunge()
            precondition(expunged.ok, f"EXPUNGE answered {expunged.status}")
            during: dict[str, int] = {}
            for verb, command in (("FETCH", "FETCH 1 (FLAGS)"), ("STORE", "STORE 1 +FLAGS (x)"),
                                  ("SEARCH", "SEARCH ALL")):
                result = await a.command(command)
                during[verb] = sum(1 for r in result.untagged if isinstance(r, Expunge))
            result = await a.noop()
            at_noop = [r.seq for r in result.untagged if isinstance(r, Expunge)]
            # Session A was told of the expunge at some point: there was one to hold back.
            precondition(any(during.values()) or at_noop,
                         "session A was told of B's EXPUNGE neither during FETCH, STORE, SEARCH "
                         "nor at the NOOP after them")
            # RFC 9051 §7.5.1: "An EXPUNGE response MUST NOT be sent when no command is in
            # progress, nor while responding to a FETCH, STORE, or SEARCH command."
            check("IMAP-NO-EXPUNGE-DURING-FETCH", not any(during.values()),
                  f"untagged EXPUNGE while responding to {during} (at the NOOP after: {at_noop})")

    run(scenario())


@pytest.mark.requirement("IMAP-UIDVALIDITY-STABLE")
def test_imap_uidvalidity_stable_and_uidnext_grows(target: Target, evidence: Evidence) -> None:
    first_mark = token()

    async def scenario() -> None:
        async with session(target, evidence) as a, scratch(a) as name:
            await append(a, name, message(first_mark))
            first = await select(a, name)
            await a.command("UNSELECT" if "UNSELECT" in a.capabilities else "CLOSE")
            await append(a, name, message(token()))
            async with session(target, evidence) as b:
                second = await select(b, name)
                found = await uids(b)
                precondition(len(found) == 2, f"UID SEARCH ALL found {found} after two APPENDs")
                body = (await fetch_uid(b, found[0], "(BODY.PEEK[])")).get("BODY[]")
            v1, n1, v2, n2 = first.uidvalidity, first.uidnext, second.uidvalidity, second.uidnext
            # RFC 9051 §2.3.1.1: "the unique identifier validity value ... MUST NOT change unless
            # the UIDs of the messages in the mailbox have changed"; "The next unique identifier
            # value ... MUST NOT change unless new messages are added to the mailbox"; it grows
            # when they are.
            check("IMAP-UIDVALIDITY-STABLE", v1 is not None and v1 == v2,
                  f"UIDVALIDITY {v1} then {v2} in another session")
            check("IMAP-UIDVALIDITY-STABLE", n1 is not None and n2 is not None and n2 > n1,
                  f"UIDNEXT {n1}, then {n2} after APPEND")
            # With UIDVALIDITY unchanged, the first UID still names the first message.
            check("IMAP-UIDVALIDITY-STABLE", isinstance(body, bytes) and first_mark.encode() in body,
                  f"UID {found[0]}, the lower of {found}, is not the first message appended")

    run(scenario())


@pytest.mark.requirement("IMAP-UID-MONOTONIC")
def test_imap_expunged_uid_not_reused(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with session(target, evidence) as a, scratch(a) as name:
            for _ in range(2):
                await append(a, name, message(token()))
            await select(a, name)
            highest = (await uids(a))[-1]
            stored = await a.store(str(highest), "+", ["\\Deleted"], uid=True, silent=True)
            precondition(stored.ok, f"UID STORE +FLAGS.SILENT (\\Deleted) answered {stored.status}")
            expunged = await a.expunge()
            precondition(expunged.ok, f"EXPUNGE answered {expunged.status}")
            await append(a, name, message(token()))
            await a.noop()
            now = await uids(a)
            precondition(len(now) == 2, f"UID SEARCH ALL found {now}, not the two messages left")
            # RFC 9051 §2.3.1.1: "Unique identifiers are assigned in a strictly ascending fashion
            # in the mailbox; as each message is added to the mailbox, it is assigned a higher
            # UID than those of all message(s) that are already in the mailbox."
            check("IMAP-UID-MONOTONIC", now[-1] > highest,
                  f"new message got UID {now[-1]}, not above expunged {highest}")

    run(scenario())


def _needs_rev1(client: IMAPClient) -> None:
    need("IMAP4REV1" in client.capabilities,
         "the server offers no IMAP4rev1, and \\Recent exists only there")


async def _is_recent(client: IMAPClient, uid: int) -> bool:
    return "\\Recent" in flags_of(await fetch_uid(client, uid, "(FLAGS)"))


@pytest.mark.requirement("IMAP-RECENT")
def test_imap_new_message_recent_in_exactly_one_session(target: Target,
                                                         evidence: Evidence) -> None:
    async def scenario() -> None:
        async with session(target, evidence) as a, scratch(a) as name, \
                session(target, evidence) as b, session(target, evidence) as c:
            _needs_rev1(a)
            await select(a, name)
            await select(b, name)
            await append(c, name, message(token()))  # a third session, neither of the two
            await a.noop()
            await b.noop()
            uid = await only_uid(a)
            sessions = {"A": a, "B": b}
            flagged = {label: await _is_recent(client, uid) for label, client in sessions.items()}
            # RFC 3501 §2.3.2: \Recent — "This session is the first session to have been
            # notified about this message; if the session is read-write, subsequent sessions
            # will not see \Recent set for this message." "If it is not possible to determine
            # whether or not this session is the first session to be notified about a message,
            # then that message SHOULD be considered recent."
            holders = sorted(label for label, recent in flagged.items() if recent)
            check("IMAP-RECENT", len(holders) == 1,
                  f"UID {uid} arrived while sessions A and B both had the mailbox selected "
                  f"read-write; FETCH FLAGS shows \\Recent in {holders or 'neither'}, not in "
                  "exactly one")
            for label, client in sessions.items():
                result, found = await client.search("RECENT", uid=True)
                # RFC 3501 §6.4.4: "RECENT Messages that have the \Recent flag set."
                check("IMAP-RECENT", result.ok, f"session {label}: UID SEARCH RECENT answered {result.status}")
                check("IMAP-RECENT", sorted(found) == ([uid] if flagged[label] else []),
                      f"session {label}: UID SEARCH RECENT gave {sorted(found)}, but FETCH FLAGS "
                      f"{'shows' if flagged[label] else 'does not show'} \\Recent on UID {uid}")

    run(scenario())


@pytest.mark.requirement("IMAP-EXAMINE-KEEPS-RECENT")
def test_imap_examine_keeps_recent(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with session(target, evidence) as a, scratch(a) as name:
            _needs_rev1(a)
            await append(a, name, message(token()))  # nobody has the mailbox selected
            async with session(target, evidence) as b:
                examined = (await select(b, name, readonly=True)).recent
            # That the first session to see the message calls it recent is IMAP-RECENT's.
            precondition(examined, f"EXAMINE reported {examined} RECENT: this server does not "
                                   "call the appended message recent")
            async with session(target, evidence) as c:
                selected = (await select(c, name)).recent
                flagged = await _is_recent(c, await only_uid(c))
            # RFC 3501 §6.3.2: "no changes to the permanent state of the mailbox, including
            # per-user state, are permitted; in particular, EXAMINE MUST NOT cause messages to
            # lose the \Recent flag."
            check("IMAP-EXAMINE-KEEPS-RECENT", selected == 1 and flagged,
                  f"after EXAMINE reported {examined} RECENT, a later SELECT reported {selected} "
                  f"RECENT and FETCH FLAGS {'shows' if flagged else 'does not show'} \\Recent: "
                  "EXAMINE took it")

    run(scenario())
