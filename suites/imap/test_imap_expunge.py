"""IMAP in depth — removing messages: UID EXPUNGE (RFC 4315), CLOSE and UNSELECT."""

from __future__ import annotations

import pytest

from harness.clients.imap import IMAPClient
from harness.protocol.imap.responses import Expunge
from harness.suite import Evidence, need, run, token
from harness.targets import Target
from suites.imap.imap_helpers import append, message, scratch, session, uids

pytestmark = pytest.mark.step(9)


async def _three_deleted(client: IMAPClient, name: str) -> list[int]:
    for _ in range(3):
        await append(client, name, message(token()), ["\\Deleted"])
    await client.select(name)
    return await uids(client)


@pytest.mark.requirement("IMAP-UID-EXPUNGE")
def test_imap_uid_expunge_only_named(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[str, list[int], list[int], list[int]]:
        async with session(target, evidence) as client, scratch(client) as name:
            need("UIDPLUS" in client.capabilities, "server does not advertise UIDPLUS")
            before = await _three_deleted(client, name)
            result = await client.command(f"UID EXPUNGE {before[1]}")
            expunged = [r.seq for r in result.untagged if isinstance(r, Expunge)]
            return result.status, before, expunged, await uids(client)

    status, before, expunged, after = run(scenario())
    assert status == "OK", f"UID EXPUNGE answered {status}"
    # RFC 4315 §2.1: "The UID EXPUNGE command permanently removes all messages that both have
    # the \Deleted flag set and have a UID that is included in the specified sequence set from
    # the currently selected mailbox."
    assert after == [before[0], before[2]], f"after UID EXPUNGE {before[1]}: {after}"
    assert expunged == [2], f"untagged EXPUNGE {expunged}, not [2]"


@pytest.mark.requirement("IMAP-CLOSE")
def test_imap_close_expunges_silently(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[str, int, int]:
        async with session(target, evidence) as client, scratch(client) as name:
            await _three_deleted(client, name)
            result = await client.close_mailbox()
            expunges = sum(1 for r in result.untagged if isinstance(r, Expunge))
            selected = await client.select(name, readonly=True)
            return result.status, expunges, selected.exists

    status, expunges, left = run(scenario())
    # RFC 9051 §6.4.1: CLOSE "permanently removes all messages that have the \Deleted flag set
    # from the currently selected mailbox ... No untagged EXPUNGE responses are sent."
    assert status == "OK", f"CLOSE answered {status}"
    assert left == 0, f"{left} \\Deleted messages left after CLOSE"
    assert expunges == 0, f"CLOSE sent {expunges} untagged EXPUNGE responses"


@pytest.mark.requirement("IMAP-UNSELECT")
def test_imap_unselect_keeps_deleted(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[str, int]:
        async with session(target, evidence) as client, scratch(client) as name:
            need("UNSELECT" in client.capabilities, "server does not advertise UNSELECT")
            await _three_deleted(client, name)
            result = await client.command("UNSELECT")
            selected = await client.select(name, readonly=True)
            return result.status, selected.exists

    status, left = run(scenario())
    # RFC 9051 §6.4.2: UNSELECT "performs the same actions as CLOSE, except that no messages are
    # permanently removed from the currently selected mailbox."
    assert status == "OK", f"UNSELECT answered {status}"
    assert left == 3, f"{3 - left} \\Deleted messages removed by UNSELECT"
