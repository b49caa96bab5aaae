"""IMAP in depth — STORE: FLAGS, +FLAGS, -FLAGS, keywords, .SILENT; EXAMINE is read-only."""

from __future__ import annotations

import pytest

from harness.protocol.imap.responses import Fetch
from harness.suite import Evidence, run, token
from harness.targets import Target
from suites.imap.imap_helpers import append, fetch_uid, flags_of, message, scratch, session, uids

pytestmark = pytest.mark.step(9)


@pytest.mark.requirement("IMAP-STORE-MODES")
def test_imap_store_modes(target: Target, evidence: Evidence) -> None:
    async def scenario() -> list[set[str]]:
        async with session(target, evidence) as client, scratch(client) as name:
            await append(client, name, message(token()), ["\\Seen"])
            await client.select(name)
            (uid,) = await uids(client)
            seen = []
            for mode, flags in (("+", ["\\Flagged", "$Label1"]), ("-", ["\\Seen"]),
                                ("", ["\\Answered", "$Label2"])):
                result = await client.store(str(uid), mode, flags, uid=True)
                assert result.ok, f"STORE {mode}FLAGS answered {result.status}"
                seen.append(flags_of(await fetch_uid(client, uid, "(FLAGS)")) - {"\\Recent"})
            return seen

    added, removed, replaced = run(scenario())
    # RFC 9051 §6.4.6: FLAGS "Replace the flags for the message with the argument", +FLAGS "Add
    # the argument to the flags for the message", -FLAGS "Remove the argument from the flags".
    assert added == {"\\Seen", "\\Flagged", "$Label1"}, f"after +FLAGS: {added}"
    assert removed == {"\\Flagged", "$Label1"}, f"after -FLAGS: {removed}"
    assert replaced == {"\\Answered", "$Label2"}, f"after FLAGS: {replaced}"


@pytest.mark.requirement("IMAP-STORE-SILENT")
def test_imap_store_silent(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[str, int, set[str]]:
        async with session(target, evidence) as client, scratch(client) as name:
            await append(client, name, message(token()))
            await client.select(name)
            (uid,) = await uids(client)
            result = await client.store(str(uid), "+", ["\\Flagged"], uid=True, silent=True)
            fetches = sum(1 for r in result.untagged if isinstance(r, Fetch))
            return result.status, fetches, flags_of(await fetch_uid(client, uid, "(FLAGS)"))

    status, fetches, flags = run(scenario())
    assert status == "OK" and "\\Flagged" in flags, f"STORE +FLAGS.SILENT {status}, flags {flags}"
    # RFC 9051 §6.4.6: ".SILENT ... the server SHOULD NOT send an untagged FETCH response."
    assert fetches == 0, f"{fetches} untagged FETCH responses to STORE +FLAGS.SILENT"


@pytest.mark.requirement("IMAP-EXAMINE-READONLY")
def test_imap_examine_is_read_only(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[bool, set[str]]:
        async with session(target, evidence) as client, scratch(client) as name:
            await append(client, name, message(token()))
            examined = await client.select(name, readonly=True)
            (uid,) = await uids(client)
            await fetch_uid(client, uid, "(BODY[])")
            await client.select(name)
            return examined.read_only, flags_of(await fetch_uid(client, uid, "(FLAGS)"))

    read_only, flags = run(scenario())
    # RFC 9051 §6.3.3: EXAMINE is SELECT "except that the selected mailbox is identified as
    # read-only.  No changes to the permanent state of the mailbox, including per-user state,
    # are permitted"; "The text of the tagged OK response to EXAMINE MUST begin with the
    # "[READ-ONLY]" response code."
    assert read_only, "EXAMINE completed without [READ-ONLY]"
    assert "\\Seen" not in flags, "BODY[] in an EXAMINEd mailbox set \\Seen"
