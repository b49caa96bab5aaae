"""IMAP in depth — APPEND: synchronising literals, flags and date, LITERAL+, APPENDUID."""

from __future__ import annotations

from datetime import datetime

import pytest

from harness.protocol.imap.responses import Continuation
from harness.suite import Evidence, check, need, precondition, run, token
from harness.targets import Target
from suites.imap.imap_helpers import (
    fetch_uid,
    flags_of,
    mbox,
    message,
    next_raw_tag,
    only_uid,
    scratch,
    select,
    session,
    uids,
    until_tagged,
)

pytestmark = pytest.mark.step(9)

DATE = "07-Feb-2021 10:11:12 +0100"


@pytest.mark.requirement("IMAP-APPEND")
def test_imap_append_stores_bytes_and_flags(target: Target, evidence: Evidence) -> None:
    data = message(token(), body="line one\r\n.line with a dot\r\n\r\nlast\r\n")

    async def scenario() -> None:
        async with session(target, evidence) as client, scratch(client) as name:
            result = await client.append(name, data, ["\\Flagged", "\\Draft"])
            check("IMAP-APPEND", result.ok, f"APPEND answered {result.status}")
            await select(client, name)
            found = await uids(client)
            check("IMAP-APPEND", len(found) == 1, f"after one APPEND the mailbox holds UIDs {found}")
            items = await fetch_uid(client, found[0], "(FLAGS BODY.PEEK[])")
            # RFC 9051 §6.3.12: "The APPEND command appends the literal argument as a new message
            # to the end of the specified destination mailbox."; "If a flag parenthesized list is
            # specified, the flags SHOULD be set in the resulting message".
            stored = items.get("BODY[]")
            shown = f"{len(stored)} octets" if isinstance(stored, bytes) else repr(stored)
            check("IMAP-APPEND", stored == data,
                  f"BODY[] ({shown}) differs from the {len(data)} octets APPENDed")
            flags = flags_of(items)
            check("IMAP-APPEND", {"\\Flagged", "\\Draft"} <= flags,
                  f"APPENDed with (\\Flagged \\Draft), FLAGS are {sorted(flags)}")

    run(scenario())


@pytest.mark.requirement("IMAP-APPEND-DATE")
def test_imap_append_sets_internaldate(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with session(target, evidence) as client, scratch(client) as name:
            result = await client.append(name, message(token()), internaldate=DATE)
            check("IMAP-APPEND-DATE", result.ok, f"APPEND with date-time {DATE!r} answered {result.status}")
            await select(client, name)
            uid = await only_uid(client)
            internaldate = (await fetch_uid(client, uid, "(INTERNALDATE)")).get("INTERNALDATE")
            # RFC 9051 §6.3.12: "If a date-time is specified, the internal date SHOULD be set in
            # the resulting message".
            when = _when(internaldate)
            check("IMAP-APPEND-DATE", when is not None and when == _when(DATE),
                  f"INTERNALDATE {internaldate!r}, APPEND gave {DATE!r}")

    run(scenario())


def _when(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.strptime(text.strip(), "%d-%b-%Y %H:%M:%S %z")
    except ValueError:
        return None


@pytest.mark.requirement("IMAP-LITERAL-PLUS")
def test_imap_append_non_synchronizing_literal(target: Target, evidence: Evidence) -> None:
    data = message(token())

    async def scenario() -> None:
        async with session(target, evidence) as client, scratch(client) as name:
            need("LITERAL+" in client.capabilities, "server does not advertise LITERAL+")
            tag = next_raw_tag()
            # RFC 7888 §3: the client sends the octets at once, with no "+" to wait for.
            await client.send_raw(f"{tag} APPEND {mbox(name)} {{{len(data)}+}}\r\n".encode()
                                  + data + b"\r\n")
            tagged, seen = await until_tagged(client, tag)
            # RFC 7888 §4: "The server MUST NOT send a continuation request in response to a
            # non-synchronizing literal" (§3) and "MUST treat the specified number of following
            # octets and the following line ... as part of the same command."
            continuations = sum(1 for r in seen if isinstance(r, Continuation))
            check("IMAP-LITERAL-PLUS", not continuations,
                  f"{continuations} continuation request(s) for a non-synchronizing literal")
            check("IMAP-LITERAL-PLUS", tagged is not None,
                  "the server closed the connection after an APPEND with a non-synchronizing literal")
            assert tagged is not None
            check("IMAP-LITERAL-PLUS", tagged.status == "OK",
                  f"APPEND with a non-synchronizing literal answered {tagged.status}")
            await select(client, name)
            found = await uids(client)
            check("IMAP-LITERAL-PLUS", len(found) == 1,
                  f"the mailbox holds UIDs {found} after the APPEND, not one message")

    run(scenario())


@pytest.mark.requirement("IMAP-APPENDUID")
def test_imap_append_reports_appenduid(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with session(target, evidence) as client, scratch(client) as name:
            need("UIDPLUS" in client.capabilities, "server does not advertise UIDPLUS")
            result = await client.append(name, message(token()))
            precondition(result.ok, f"APPEND answered {result.status}")
            code = result.code.value if result.code and result.code.name == "APPENDUID" else None
            selected = await select(client, name)
            present = await uids(client)
            # RFC 4315 §3: "APPENDUID Followed by the UIDVALIDITY of the destination mailbox and
            # the UID assigned to the appended message in the destination mailbox"; servers
            # advertising UIDPLUS "SHOULD return these response codes".
            check("IMAP-APPENDUID", isinstance(code, tuple) and len(code) == 2,
                  f"APPEND OK carries no APPENDUID (response code {result.code})")
            assert isinstance(code, tuple)
            check("IMAP-APPENDUID", code[0] == selected.uidvalidity,
                  f"APPENDUID UIDVALIDITY {code[0]}, SELECT says {selected.uidvalidity}")
            check("IMAP-APPENDUID", [code[1]] == present,
                  f"APPENDUID UID {code[1]}, the mailbox has {present}")

    run(scenario())
