"""IMAP OBJECTID (RFC 8474): MAILBOXID in CREATE, SELECT/EXAMINE and STATUS, kept by RENAME and
unique; EMAILID and THREADID in FETCH, kept by COPY and MOVE; SEARCH EMAILID / THREADID.

The tests run where the server advertises OBJECTID and are skipped elsewhere.
"""

from __future__ import annotations

import re

import pytest

from harness.clients.imap import CommandResult, IMAPClient
from harness.protocol.imap.responses import Status, UntaggedStatus
from harness.suite import Evidence, check, need, precondition, run, token
from harness.targets import Target
from suites.imap.imap_helpers import (
    append,
    cleanup,
    fetch_uid,
    mbox,
    message,
    only_uid,
    scratch,
    select,
    session,
    uids,
)

pytestmark = pytest.mark.step(9)

#: RFC 8474 §7: objectid = 1*255(ALPHA / DIGIT / "_" / "-"), in a response code "(" objectid ")".
_CODE_ID = re.compile(r"\(([A-Za-z0-9_-]{1,255})\)\Z")


def _need_objectid(client: IMAPClient) -> None:
    need("OBJECTID" in client.capabilities, "the server does not advertise OBJECTID")


def _code_id(result: CommandResult | None, untagged: bool = False) -> str | None:
    """The objectid of a MAILBOXID response code: in the tagged response, or (*untagged*) in
    an untagged OK of the command."""
    if result is None:
        return None
    codes = ([r.code for r in result.untagged if isinstance(r, UntaggedStatus)] if untagged
             else [result.code])
    for code in codes:
        if code is not None and code.name == "MAILBOXID":
            found = _CODE_ID.match(str(code.value or "").strip())
            return found.group(1) if found else None
    return None


async def _status_id(client: IMAPClient, name: str) -> object:
    result = await client.command(f"STATUS {mbox(name)} (MAILBOXID)")
    precondition(result.ok, f"STATUS {name} (MAILBOXID) answered {result.status}")
    found = [r.items.get("MAILBOXID") for r in result.untagged if isinstance(r, Status)]
    return found[0] if found else None


@pytest.mark.requirement("IMAP-OBJECTID-CREATE", "IMAP-OBJECTID-SELECT", "IMAP-OBJECTID-STATUS",
                         "IMAP-OBJECTID-MAILBOXID-UNIQUE")
def test_imap_objectid_mailboxid(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with session(target, evidence) as client:
            _need_objectid(client)
            first, second = token(), token()
            try:
                ids: list[str | None] = []
                for name in (first, second):
                    created = await client.command(f"CREATE {mbox(name)}")
                    precondition(created.ok, f"CREATE {name} answered {created.status}")
                    ids.append(_code_id(created))
                # RFC 8474 §4.1: "A server advertising the OBJECTID capability MUST include the
                # MAILBOXID response code in the tagged OK response to all successful CREATE
                # commands." Syntax: "MAILBOXID" SP "(" objectid ")"
                check("IMAP-OBJECTID-CREATE", None not in ids,
                      f"CREATE answered MAILBOXID codes {ids}")
                # §4.2: "MUST return an untagged OK response with the MAILBOXID response code on
                # all successful SELECT and EXAMINE commands."
                selected = await client.select(first)
                precondition(selected.result.ok, f"SELECT answered {selected.result.status}")
                on_select = _code_id(selected.result, untagged=True)
                examined = await client.select(second, readonly=True)
                precondition(examined.result.ok, f"EXAMINE answered {examined.result.status}")
                on_examine = _code_id(examined.result, untagged=True)
                check("IMAP-OBJECTID-SELECT", [on_select, on_examine] == ids,
                      f"SELECT / EXAMINE reported MAILBOXID {on_select} / {on_examine}, "
                      f"CREATE {ids}")
                # §4.3: "A server that advertises the OBJECTID capability MUST support the
                # MAILBOXID status attribute." "MAILBOXID" SP "(" objectid ")"
                status = [await _status_id(client, name) for name in (first, second)]
                check("IMAP-OBJECTID-STATUS", status == ids,
                      f"STATUS (MAILBOXID) reported {status}, CREATE {ids}")
                # §4: "The server MUST NOT report the same MAILBOXID for two mailboxes at the
                # same time."
                inbox = await _status_id(client, "INBOX")
                check("IMAP-OBJECTID-MAILBOXID-UNIQUE", len({*ids, inbox}) == 3,
                      f"MAILBOXIDs of two new mailboxes and INBOX: {ids + [inbox]}")
            finally:
                await cleanup(client, first, second)

    run(scenario())


@pytest.mark.requirement("IMAP-OBJECTID-RENAME")
def test_imap_objectid_mailboxid_kept_by_rename(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with session(target, evidence) as client:
            _need_objectid(client)
            old, new = token(), token()
            try:
                created = await client.command(f"CREATE {mbox(old)}")
                precondition(created.ok, f"CREATE answered {created.status}")
                await append(client, old, message(token()))
                before = await _status_id(client, old)
                renamed = await client.command(f"RENAME {mbox(old)} {mbox(new)}")
                precondition(renamed.ok, f"RENAME answered {renamed.status}")
                after = await _status_id(client, new)
                # RFC 8474 §4: "The server MUST keep the same MAILBOXID for the source and
                # destination when renaming a mailbox in a way that keeps the same messages".
                check("IMAP-OBJECTID-RENAME", before is not None and after == before,
                      f"MAILBOXID {before} before RENAME, {after} after")
            finally:
                await cleanup(client, old, new)

    run(scenario())


@pytest.mark.requirement("IMAP-OBJECTID-EMAILID", "IMAP-OBJECTID-THREADID")
def test_imap_objectid_emailid_threadid(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with session(target, evidence) as client, scratch(client) as name:
            _need_objectid(client)
            await append(client, name, message(token()))
            await select(client, name)
            uid = await only_uid(client)
            first = await fetch_uid(client, uid, "(EMAILID THREADID)", "IMAP-OBJECTID-EMAILID")
            again = await fetch_uid(client, uid, "(EMAILID)")
            async with session(target, evidence) as other:
                await select(other, name, readonly=True)
                elsewhere = await fetch_uid(other, uid, "(EMAILID)")
            emailid = first.get("EMAILID")
            # RFC 8474 §5.1: "The server MUST return the same EMAILID for the same triple;
            # hence, EMAILID is immutable." Syntax: "EMAILID" SP "(" objectid ")".
            seen = [emailid, again.get("EMAILID"), elsewhere.get("EMAILID")]
            check("IMAP-OBJECTID-EMAILID", isinstance(emailid, str) and len(set(seen)) == 1,
                  f"EMAILID of one message in three FETCHes: {seen}")
            threadid = first.get("THREADID", "absent")
            # §5.2: THREADID (objectid) or NIL ("if the server doesn't support THREADID ... it
            # MUST return NIL"); "The server MUST NOT use the same ObjectID value for both
            # EMAILIDs and THREADIDs."
            check("IMAP-OBJECTID-THREADID",
                  threadid is None or (isinstance(threadid, str) and threadid != emailid),
                  f"THREADID {threadid!r} for the message with EMAILID {emailid!r}")

    run(scenario())


@pytest.mark.requirement("IMAP-OBJECTID-EMAILID-COPY", "IMAP-OBJECTID-THREADID")
def test_imap_objectid_emailid_kept_by_copy_and_move(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with session(target, evidence) as client, scratch(client) as source, \
                scratch(client) as copies:
            _need_objectid(client)
            await append(client, source, message(token()))
            await append(client, source, message(token()))
            await select(client, source)
            first, second = await uids(client)
            originals = [await fetch_uid(client, u, "(EMAILID THREADID)") for u in (first, second)]
            copied = await client.command(f"UID COPY {first} {mbox(copies)}")
            precondition(copied.ok, f"UID COPY answered {copied.status}")
            verb = "MOVE" if "MOVE" in client.capabilities else "COPY"
            moved = await client.command(f"UID {verb} {second} {mbox(copies)}")
            precondition(moved.ok, f"UID {verb} answered {moved.status}")
            await select(client, copies)
            found = [await fetch_uid(client, u, "(EMAILID THREADID)") for u in await uids(client)]
            precondition(len(found) == 2, f"the destination holds {len(found)} messages, not 2")
            # RFC 8474 §5.1: "The server MUST return the same EMAILID as the source message
            # for the matching destination message in the COPYUID pairing after a COPY or MOVE
            # command". (Appended in order, the copies keep their order.)
            want = [o.get("EMAILID") for o in originals]
            got = [f.get("EMAILID") for f in found]
            check("IMAP-OBJECTID-EMAILID-COPY", None not in want and got == want,
                  f"EMAILIDs {want} before {verb}, {got} after")
            # §5.2: "The server MUST return the same THREADID for all messages with the same
            # EMAILID."
            want_t = [o.get("THREADID") for o in originals]
            got_t = [f.get("THREADID") for f in found]
            check("IMAP-OBJECTID-THREADID", got_t == want_t,
                  f"THREADIDs {want_t} before {verb}, {got_t} after")

    run(scenario())


@pytest.mark.requirement("IMAP-OBJECTID-SEARCH")
def test_imap_objectid_search(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with session(target, evidence) as client, scratch(client) as name:
            _need_objectid(client)
            await append(client, name, message(token()))
            await append(client, name, message(token()))
            await select(client, name)
            first, second = await uids(client)
            items = await fetch_uid(client, first, "(EMAILID THREADID)")
            emailid, threadid = items.get("EMAILID"), items.get("THREADID")
            precondition(isinstance(emailid, str), f"FETCH EMAILID gave {emailid!r}")
            # RFC 8474 §6: "EMAILID" SP objectid: "Messages whose EMAILID is exactly the
            # specified ObjectID." (Two different messages: different contents.)
            result, found = await client.search(f"EMAILID {emailid}", uid=True)
            check("IMAP-OBJECTID-SEARCH", result.ok and sorted(found) == [first],
                  f"UID SEARCH EMAILID {emailid} answered {result.status} {sorted(found)}, "
                  f"not [{first}]")
            if threadid is None:
                # §5.2: where THREADID is NIL "a SEARCH for THREADID MUST NOT match any
                # messages" — whatever id is asked for.
                result, found = await client.search("THREADID T1", uid=True)
                check("IMAP-OBJECTID-SEARCH", result.ok and not found,
                      f"UID SEARCH THREADID answered {result.status} {sorted(found)}")
                return
            result, found = await client.search(f"THREADID {threadid}", uid=True)
            check("IMAP-OBJECTID-SEARCH", result.ok and first in found,
                  f"UID SEARCH THREADID {threadid} answered {result.status} {sorted(found)}, "
                  f"without {first}")

    run(scenario())
