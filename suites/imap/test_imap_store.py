"""IMAP in depth — STORE: FLAGS, +FLAGS, -FLAGS, keywords, .SILENT; EXAMINE is read-only."""

from __future__ import annotations

import pytest

from harness.protocol.imap.responses import Fetch
from harness.suite import Evidence, check, run, token
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
)

pytestmark = pytest.mark.step(9)


@pytest.mark.requirement("IMAP-STORE-MODES")
def test_imap_store_modes(target: Target, evidence: Evidence) -> None:
    async def scenario() -> list[set[str]]:
        async with session(target, evidence) as client, scratch(client) as name:
            await append(client, name, message(token()), ["\\Seen"])
            await select(client, name)
            uid = await only_uid(client)
            seen = []
            for mode, flags in (("+", ["\\Flagged", "$Label1"]), ("-", ["\\Seen"]),
                                ("", ["\\Answered", "$Label2"])):
                result = await client.store(str(uid), mode, flags, uid=True)
                check("IMAP-STORE-MODES", result.ok,
                      f"UID STORE {uid} {mode}FLAGS answered {result.status}")
                seen.append(flags_of(await fetch_uid(client, uid, "(FLAGS)")) - {"\\Recent"})
            return seen

    added, removed, replaced = run(scenario())
    # RFC 9051 §6.4.6: FLAGS "Replace the flags for the message with the argument", +FLAGS "Add
    # the argument to the flags for the message", -FLAGS "Remove the argument from the flags".
    check("IMAP-STORE-MODES", added == {"\\Seen", "\\Flagged", "$Label1"},
          f"after +FLAGS: {sorted(added)}")
    check("IMAP-STORE-MODES", removed == {"\\Flagged", "$Label1"},
          f"after -FLAGS: {sorted(removed)}")
    check("IMAP-STORE-MODES", replaced == {"\\Answered", "$Label2"},
          f"after FLAGS: {sorted(replaced)}")


@pytest.mark.requirement("IMAP-STORE-SILENT", "IMAP-STORE-MODES")
def test_imap_store_silent(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[str, int, set[str]]:
        async with session(target, evidence) as client, scratch(client) as name:
            await append(client, name, message(token()))
            await select(client, name)
            uid = await only_uid(client)
            result = await client.store(str(uid), "+", ["\\Flagged"], uid=True, silent=True)
            fetches = sum(1 for r in result.untagged if isinstance(r, Fetch))
            return result.status, fetches, flags_of(await fetch_uid(client, uid, "(FLAGS)"))

    status, fetches, flags = run(scenario())
    # RFC 9051 §6.4.6: +FLAGS.SILENT is +FLAGS ("Add the argument to the flags for the
    # message"), "except that the server SHOULD NOT send an untagged FETCH response".
    check("IMAP-STORE-MODES", status == "OK" and "\\Flagged" in flags,
          f"STORE +FLAGS.SILENT answered {status}; flags then {sorted(flags)}")
    check("IMAP-STORE-SILENT", fetches == 0,
          f"{fetches} untagged FETCH responses to STORE +FLAGS.SILENT")


@pytest.mark.requirement("IMAP-EXAMINE-READONLY")
def test_imap_examine_is_read_only(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[str, bool, set[str]]:
        async with session(target, evidence) as client, scratch(client) as name:
            await append(client, name, message(token()))
            examined = await client.select(name, readonly=True)
            if not examined.result.ok:
                return examined.result.status, False, set()
            uid = await only_uid(client)
            await fetch_uid(client, uid, "(BODY[])")
            await select(client, name)
            return "OK", examined.read_only, flags_of(await fetch_uid(client, uid, "(FLAGS)"))

    status, read_only, flags = run(scenario())
    # RFC 9051 §6.3.3: EXAMINE is SELECT "except that the selected mailbox is identified as
    # read-only.  No changes to the permanent state of the mailbox, including per-user state,
    # are permitted"; "The text of the tagged OK response to EXAMINE MUST begin with the
    # "[READ-ONLY]" response code."
    check("IMAP-EXAMINE-READONLY", status == "OK", f"EXAMINE answered {status}")
    check("IMAP-EXAMINE-READONLY", read_only, "EXAMINE completed without [READ-ONLY]")
    check("IMAP-EXAMINE-READONLY", "\\Seen" not in flags,
          f"BODY[] in an EXAMINEd mailbox set \\Seen: flags {sorted(flags)}")
