"""IMAP in depth — APPEND: synchronising literals, flags and date, LITERAL+, APPENDUID."""

from __future__ import annotations

from datetime import datetime

import pytest

from harness.protocol.imap.responses import Continuation
from harness.suite import Evidence, need, run, token
from harness.targets import Target
from suites.imap.imap_helpers import (
    fetch_uid,
    flags_of,
    mbox,
    message,
    next_raw_tag,
    scratch,
    session,
    uids,
    until_tagged,
)

pytestmark = pytest.mark.step(9)

DATE = "07-Feb-2021 10:11:12 +0100"


@pytest.mark.requirement("IMAP-APPEND")
def test_imap_append_stores_bytes_and_flags(target: Target, evidence: Evidence) -> None:
    data = message(token(), body="line one\r\n.line with a dot\r\n\r\nlast\r\n")

    async def scenario() -> tuple[str, dict[str, object]]:
        async with session(target, evidence) as client, scratch(client) as name:
            result = await client.append(name, data, ["\\Flagged", "\\Draft"])
            await client.select(name)
            (uid,) = await uids(client)
            return result.status, await fetch_uid(client, uid, "(FLAGS BODY.PEEK[])")

    status, items = run(scenario())
    assert status == "OK", f"APPEND answered {status}"
    # RFC 9051 §6.3.12: "The APPEND command appends the literal argument as a new message to the
    # end of the specified destination mailbox."; "If a flag parenthesized list is specified,
    # the flags SHOULD be set in the resulting message".
    assert items.get("BODY[]") == data, "the stored message differs from the APPENDed octets"
    assert {"\\Flagged", "\\Draft"} <= flags_of(items), f"flags not set: {items.get('FLAGS')}"


@pytest.mark.requirement("IMAP-APPEND-DATE")
def test_imap_append_sets_internaldate(target: Target, evidence: Evidence) -> None:
    async def scenario() -> object:
        async with session(target, evidence) as client, scratch(client) as name:
            result = await client.append(name, message(token()), internaldate=DATE)
            assert result.ok, f"APPEND with a date answered {result.status}"
            await client.select(name)
            (uid,) = await uids(client)
            return (await fetch_uid(client, uid, "(INTERNALDATE)")).get("INTERNALDATE")

    internaldate = run(scenario())
    # RFC 9051 §6.3.12: "If a date-time is specified, the internal date SHOULD be set in the
    # resulting message".
    assert isinstance(internaldate, str), f"INTERNALDATE is {internaldate!r}"
    assert _when(internaldate) == _when(DATE), f"INTERNALDATE {internaldate!r}, APPEND gave {DATE!r}"


def _when(text: str) -> datetime:
    return datetime.strptime(text.strip(), "%d-%b-%Y %H:%M:%S %z")


@pytest.mark.requirement("IMAP-LITERAL-PLUS")
def test_imap_append_non_synchronizing_literal(target: Target, evidence: Evidence) -> None:
    data = message(token())

    async def scenario() -> tuple[str | None, list[object], int]:
        async with session(target, evidence) as client, scratch(client) as name:
            need("LITERAL+" in client.capabilities, "server does not advertise LITERAL+")
            tag = next_raw_tag()
            # RFC 7888 §3: the client sends the octets at once, with no "+" to wait for.
            await client.send_raw(f"{tag} APPEND {mbox(name)} {{{len(data)}+}}\r\n".encode()
                                  + data + b"\r\n")
            tagged, seen = await until_tagged(client, tag)
            await client.select(name)
            return (tagged.status if tagged else None, [r for r in seen
                    if isinstance(r, Continuation)], len(await uids(client)))

    status, continuations, count = run(scenario())
    # RFC 7888 §4: "The server MUST NOT send a continuation request in response to a
    # non-synchronizing literal" (§3) and "MUST treat the specified number of following octets
    # and the following line ... as part of the same command."
    assert not continuations, "the server sent '+' for a non-synchronizing literal"
    assert status == "OK", f"APPEND with a non-synchronizing literal answered {status}"
    assert count == 1, f"the mailbox holds {count} messages after the APPEND"


@pytest.mark.requirement("IMAP-APPENDUID")
def test_imap_append_reports_appenduid(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[object, int | None, list[int]]:
        async with session(target, evidence) as client, scratch(client) as name:
            need("UIDPLUS" in client.capabilities, "server does not advertise UIDPLUS")
            result = await client.append(name, message(token()))
            selected = await client.select(name)
            code = result.code.value if result.code and result.code.name == "APPENDUID" else None
            return code, selected.uidvalidity, await uids(client)

    code, uidvalidity, present = run(scenario())
    # RFC 4315 §3: "APPENDUID Followed by the UIDVALIDITY of the destination mailbox and the UID
    # assigned to the appended message in the destination mailbox"; servers advertising UIDPLUS
    # "SHOULD return these response codes".
    assert isinstance(code, tuple) and len(code) == 2, "APPEND OK carries no APPENDUID"
    assert code[0] == uidvalidity, f"APPENDUID UIDVALIDITY {code[0]}, SELECT says {uidvalidity}"
    assert [code[1]] == present, f"APPENDUID UID {code[1]}, the mailbox has {present}"


