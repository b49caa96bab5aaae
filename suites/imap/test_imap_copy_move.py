"""IMAP in depth — COPY and MOVE (RFC 6851) with UIDPLUS COPYUID (RFC 4315)."""

from __future__ import annotations

import pytest

from harness.clients.imap import CommandResult
from harness.protocol.imap.responses import Expunge, ResponseCode, UntaggedStatus
from harness.suite import Evidence, need, run, token
from harness.targets import Target
from suites.imap.imap_helpers import (
    append,
    fetch_uid,
    flags_of,
    mbox,
    message,
    scratch,
    session,
    uids,
)

pytestmark = pytest.mark.step(9)
DATE = "03-Apr-2022 08:09:10 +0000"


def _copyuid(result: CommandResult) -> ResponseCode | None:
    codes = [result.code] + [r.code for r in result.untagged if isinstance(r, UntaggedStatus)]
    return next((c for c in codes if c is not None and c.name == "COPYUID"), None)


@pytest.mark.requirement("IMAP-COPY")
def test_imap_copy_keeps_flags_and_date(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[str, int, dict[str, object], dict[str, object]]:
        async with session(target, evidence) as client, scratch(client) as src, \
                scratch(client) as dst:
            r = await client.append(src, message(token()), ["\\Flagged", "$Copied"],
                                    internaldate=DATE)
            assert r.ok
            await client.select(src)
            (uid,) = await uids(client)
            original = await fetch_uid(client, uid, "(FLAGS INTERNALDATE BODY.PEEK[])")
            copied = await client.command(f"UID COPY {uid} {mbox(dst)}")
            left = len(await uids(client))
            await client.select(dst)
            (new,) = await uids(client)
            return copied.status, left, original, await fetch_uid(
                client, new, "(FLAGS INTERNALDATE BODY.PEEK[])")

    status, left, original, copy = run(scenario())
    assert status == "OK", f"COPY answered {status}"
    # RFC 9051 §6.4.7: "The COPY command copies the specified message(s) to the end of the
    # specified destination mailbox.  The flags and internal date of the message(s) SHOULD be
    # preserved in the copy."
    assert left == 1, "COPY removed the message from the source"
    assert copy.get("BODY[]") == original.get("BODY[]"), "the copy differs from the original"
    assert flags_of(copy) >= {"\\Flagged", "$Copied"}, f"copy's flags {copy.get('FLAGS')}"
    assert copy.get("INTERNALDATE") == original.get("INTERNALDATE"), "INTERNALDATE not kept"


@pytest.mark.requirement("IMAP-COPYUID")
def test_imap_copy_reports_copyuid(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[object, list[int], int | None, list[int]]:
        async with session(target, evidence) as client, scratch(client) as src, \
                scratch(client) as dst:
            need("UIDPLUS" in client.capabilities, "server does not advertise UIDPLUS")
            for _ in range(2):
                await append(client, src, message(token()))
            await client.select(src)
            source = await uids(client)
            code = _copyuid(await client.command(f"UID COPY 1:* {mbox(dst)}"))
            selected = await client.select(dst)
            return (code.value if code else None, source, selected.uidvalidity,
                    await uids(client))

    value, source, uidvalidity, dest = run(scenario())
    # RFC 4315 §3: "COPYUID Followed by the UIDVALIDITY of the destination mailbox, a UID set
    # containing the UIDs of the message(s) in the source mailbox that were copied, and a UID
    # set containing the UIDs assigned to the copied message(s) in the destination mailbox".
    assert isinstance(value, tuple) and len(value) == 3, "COPY OK carries no COPYUID"
    assert value[0] == uidvalidity, f"COPYUID UIDVALIDITY {value[0]}, SELECT says {uidvalidity}"
    assert _uid_set(str(value[1])) == source, f"COPYUID source set {value[1]}, copied {source}"
    assert _uid_set(str(value[2])) == dest, f"COPYUID destination set {value[2]}, found {dest}"


def _uid_set(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition(":")
        a, b = int(lo), int(hi or lo)
        out.extend(range(min(a, b), max(a, b) + 1))
    return sorted(out)


@pytest.mark.requirement("IMAP-MOVE")
def test_imap_move_expunges_source(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[str, list[int], list[int], int]:
        async with session(target, evidence) as client, scratch(client) as src, \
                scratch(client) as dst:
            need("MOVE" in client.capabilities, "server does not advertise MOVE")
            for _ in range(3):
                await append(client, src, message(token()))
            await client.select(src)
            moved = await client.command("MOVE 2 " + mbox(dst))
            expunged = [r.seq for r in moved.untagged if isinstance(r, Expunge)]
            left = await uids(client)
            await client.select(dst)
            return moved.status, expunged, left, len(await uids(client))

    status, expunged, left, arrived = run(scenario())
    assert status == "OK", f"MOVE answered {status}"
    # RFC 6851 §3.3: "a new message is created in the target mailbox with a new UID, the
    # original message is removed from the source mailbox"; §3.3 the server sends "EXPUNGE
    # responses ... for the source messages".
    assert expunged == [2], f"MOVE 2 sent untagged EXPUNGE {expunged}, not [2]"
    assert len(left) == 2, f"{len(left)} messages left in the source, not 2"
    assert arrived == 1, f"{arrived} messages arrived in the destination, not 1"
