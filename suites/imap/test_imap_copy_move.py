"""IMAP in depth — COPY and MOVE (RFC 6851) with UIDPLUS COPYUID (RFC 4315)."""

from __future__ import annotations

import pytest

from harness.clients.imap import CommandResult
from harness.protocol.imap.responses import Expunge, ResponseCode, UntaggedStatus
from harness.suite import Evidence, check, need, precondition, run, token
from harness.targets import Target
from suites.imap.imap_helpers import (
    append,
    fetch_uid,
    flags_of,
    mbox,
    message,
    only_uid,
    scratch,
    select,
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
    async def scenario() -> None:
        async with session(target, evidence) as client, scratch(client) as src, \
                scratch(client) as dst:
            appended = await client.append(src, message(token()), ["\\Flagged", "$Copied"],
                                           internaldate=DATE)
            precondition(appended.ok, f"setup APPEND with flags and date answered {appended.status}")
            await select(client, src)
            uid = await only_uid(client)
            original = await fetch_uid(client, uid, "(FLAGS INTERNALDATE BODY.PEEK[])")
            # The flags the original kept (a server may not keep keywords: PERMANENTFLAGS);
            # \Recent is the session's, and a copy gets its own (RFC 3501 §6.4.7).
            kept = flags_of(original) - {"\\Recent"}
            precondition("\\Flagged" in kept, f"the APPENDed message lacks \\Flagged: {sorted(kept)}")
            copied = await client.command(f"UID COPY {uid} {mbox(dst)}")
            # RFC 9051 §6.4.7: "The COPY command copies the specified message(s) to the end of
            # the specified destination mailbox.  The flags and internal date of the message(s)
            # SHOULD be preserved in the copy."
            check("IMAP-COPY", copied.ok, f"UID COPY answered {copied.status}")
            left = await uids(client)
            check("IMAP-COPY", left == [uid], f"after COPY the source holds UIDs {left}, not [{uid}]")
            await select(client, dst)
            arrived = await uids(client)
            check("IMAP-COPY", len(arrived) == 1, f"after COPY the destination holds UIDs {arrived}")
            copy = await fetch_uid(client, arrived[0], "(FLAGS INTERNALDATE BODY.PEEK[])")
            check("IMAP-COPY", copy.get("BODY[]") == original.get("BODY[]"),
                  "the copy's BODY[] differs from the original's")
            check("IMAP-COPY", kept <= flags_of(copy),
                  f"the original's flags {sorted(kept)}, the copy's {sorted(flags_of(copy))}")
            check("IMAP-COPY", copy.get("INTERNALDATE") == original.get("INTERNALDATE"),
                  f"INTERNALDATE {original.get('INTERNALDATE')!r}, the copy's "
                  f"{copy.get('INTERNALDATE')!r}")

    run(scenario())


@pytest.mark.requirement("IMAP-COPYUID")
def test_imap_copy_reports_copyuid(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with session(target, evidence) as client, scratch(client) as src, \
                scratch(client) as dst:
            need("UIDPLUS" in client.capabilities, "server does not advertise UIDPLUS")
            for _ in range(2):
                await append(client, src, message(token()))
            await select(client, src)
            source = await uids(client)
            copied = await client.command(f"UID COPY 1:* {mbox(dst)}")
            precondition(copied.ok, f"UID COPY answered {copied.status}")
            code = _copyuid(copied)
            selected = await select(client, dst)
            dest = await uids(client)
            value = code.value if code else None
            # RFC 4315 §3: "COPYUID Followed by the UIDVALIDITY of the destination mailbox, a
            # UID set containing the UIDs of the message(s) in the source mailbox that were
            # copied, and a UID set containing the UIDs assigned to the copied message(s) in the
            # destination mailbox".
            check("IMAP-COPYUID", isinstance(value, tuple) and len(value) == 3,
                  f"COPY OK carries no COPYUID (response code {copied.code})")
            assert isinstance(value, tuple)
            check("IMAP-COPYUID", value[0] == selected.uidvalidity,
                  f"COPYUID UIDVALIDITY {value[0]}, SELECT says {selected.uidvalidity}")
            check("IMAP-COPYUID", _uid_set(str(value[1])) == source,
                  f"COPYUID source set {value[1]}, copied {source}")
            check("IMAP-COPYUID", _uid_set(str(value[2])) == dest,
                  f"COPYUID destination set {value[2]}, found {dest}")

    run(scenario())


def _uid_set(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition(":")
        a, b = int(lo), int(hi or lo)
        out.extend(range(min(a, b), max(a, b) + 1))
    return sorted(out)


@pytest.mark.requirement("IMAP-MOVE")
def test_imap_move_expunges_source(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with session(target, evidence) as client, scratch(client) as src, \
                scratch(client) as dst:
            need("MOVE" in client.capabilities, "server does not advertise MOVE")
            for _ in range(3):
                await append(client, src, message(token()))
            await select(client, src)
            moved = await client.command("MOVE 2 " + mbox(dst))
            # RFC 6851 §3.3: "a new message is created in the target mailbox with a new UID, the
            # original message is removed from the source mailbox"; §3.3 the server sends
            # "EXPUNGE responses ... for the source messages".
            check("IMAP-MOVE", moved.ok, f"MOVE answered {moved.status}")
            expunged = [r.seq for r in moved.untagged if isinstance(r, Expunge)]
            check("IMAP-MOVE", expunged == [2], f"MOVE 2 sent untagged EXPUNGE {expunged}, not [2]")
            left = await uids(client)
            check("IMAP-MOVE", len(left) == 2, f"{len(left)} messages left in the source, not 2")
            await select(client, dst)
            arrived = await uids(client)
            check("IMAP-MOVE", len(arrived) == 1,
                  f"{len(arrived)} messages arrived in the destination, not 1")

    run(scenario())
