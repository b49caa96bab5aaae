"""IMAP in depth — STORE: FLAGS, +FLAGS, -FLAGS, keywords, .SILENT; EXAMINE is read-only."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from harness.protocol.imap.responses import Fetch, Flags
from harness.suite import Evidence, check, precondition, run, token
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


def _announced_before_shown(untagged: Sequence[object], keyword: str) -> bool:
    """Whether a FLAGS response lists *keyword* before the first FETCH whose FLAGS show it."""
    for response in untagged:
        if isinstance(response, Flags) and keyword in response.flags:
            return True
        if isinstance(response, Fetch) and keyword in flags_of(response.items):
            return False
    return False


@pytest.mark.requirement("IMAP-FLAGS-NEW-KEYWORD")
def test_imap_new_keyword_gets_a_flags_response(target: Target, evidence: Evidence) -> None:
    own, other = f"$mhown{token()[3:11]}", f"$mhother{token()[3:11]}"

    async def scenario() -> tuple[object, object, object]:
        async with session(target, evidence) as a, scratch(a) as name:
            await append(a, name, message(token()))
            await select(a, name)
            stored = await a.command(f"STORE 1 +FLAGS ({own})")
            precondition(stored.ok, f"STORE 1 +FLAGS ({own}) answered {stored.status}")
            async with session(target, evidence) as b:
                await select(b, name)
                by_b = await b.command(f"STORE 1 +FLAGS.SILENT ({other})")
                precondition(by_b.ok, f"STORE by another session answered {by_b.status}")
            noop = await a.command("NOOP")
            precondition(noop.ok, f"NOOP answered {noop.status}")
            return stored.untagged, noop.untagged, [r for r in noop.untagged if isinstance(r, Fetch)]

    own_responses, noop_responses, fetched = run(scenario())
    # RFC 3501 §7.2.6: the FLAGS list "identifies the flags (at a minimum, the system-defined
    # flags) that are applicable for this mailbox" and "The update from the FLAGS response MUST
    # be recorded by the client": a keyword new to the mailbox is announced in FLAGS before a
    # FETCH shows it, to the session that stored it and to another one.
    check("IMAP-FLAGS-NEW-KEYWORD", _announced_before_shown(own_responses, own),
          f"STORE of the new keyword {own}: no FLAGS response listed it before the FETCH")
    check("IMAP-FLAGS-NEW-KEYWORD", not fetched or _announced_before_shown(noop_responses, other),
          f"another session stored the new keyword {other}: the NOOP's responses show it "
          "without a FLAGS response listing it first")
