"""IMAP in depth — MULTIAPPEND (RFC 3502): several messages in one APPEND, each with its own
flags and date, all or none, and APPENDUID with a UID set (RFC 4315 §3).

The tests run where the server advertises MULTIAPPEND; they are skipped elsewhere.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from harness.clients.imap import IMAPClient
from harness.protocol.imap.commands import AppendMessage
from harness.protocol.imap.responses import Fetch, Tagged
from harness.protocol.imap.seqset import SequenceSet
from harness.suite import Evidence, check, need, precondition, run, token
from harness.targets import Target
from suites.imap.imap_helpers import (
    continuation_or_tagged,
    mbox,
    message,
    message_count,
    next_raw_tag,
    scratch,
    select,
    session,
    uids,
    until_tagged,
)

pytestmark = pytest.mark.step(9)

#: Three messages: their flags and date-times, all different.
FLAGS = (("\\Seen",), ("\\Flagged", "\\Answered"), ("\\Draft",))
DATES = ("01-Feb-2020 10:00:00 +0000", "15-Mar-2021 08:30:15 +0100", "31-Dec-2019 23:59:59 -0500")


def _when(text: str) -> datetime:
    return datetime.strptime(text.strip(), "%d-%b-%Y %H:%M:%S %z")


def _need_multiappend(client: IMAPClient) -> None:
    need("MULTIAPPEND" in client.capabilities, "the server does not advertise MULTIAPPEND")


async def _fetched(client: IMAPClient) -> list[dict[str, object]]:
    """UID, FLAGS, INTERNALDATE and BODY[] of every message of the selected mailbox, by UID."""
    result = await client.command("UID FETCH 1:* (UID FLAGS INTERNALDATE BODY.PEEK[])")
    precondition(result.ok, f"UID FETCH 1:* answered {result.status}")
    merged: dict[int, dict[str, object]] = {}
    for r in result.untagged:
        if isinstance(r, Fetch) and isinstance(r.items.get("UID"), int):
            uid = r.items["UID"]
            assert isinstance(uid, int)
            merged.setdefault(uid, {}).update(r.items)
    return [merged[u] for u in sorted(merged)]


@pytest.mark.requirement("IMAP-MULTIAPPEND", "IMAP-MULTIAPPEND-FLAGS")
def test_imap_multiappend_appends_each_message(target: Target, evidence: Evidence) -> None:
    bodies = [message(token(), subject=f"part {i}") for i in range(3)]

    async def scenario() -> None:
        async with session(target, evidence) as client, scratch(client) as name:
            _need_multiappend(client)
            sent = [AppendMessage(f, _when(d), b) for f, d, b in zip(FLAGS, DATES, bodies,
                                                                     strict=True)]
            result = await client.append_messages(name, sent)
            # RFC 3502 §6.3.11: append = "APPEND" SP mailbox 1*append-message; "The APPEND
            # command appends the literal arguments as new messages to the end of the
            # specified destination mailbox."
            check("IMAP-MULTIAPPEND", result.ok,
                  f"APPEND of three messages answered {result.status}")
            await select(client, name)
            found = await _fetched(client)
            got = [m.get("BODY[]") for m in found]
            check("IMAP-MULTIAPPEND", got == bodies,
                  f"the mailbox holds {len(got)} messages after appending 3; in UID order they "
                  f"are {'not ' if got != bodies else ''}the ones sent, in order")
            for i, m in enumerate(found):
                flags = {str(f) for f in m.get("FLAGS", ())} - {"\\Recent"}  # type: ignore[attr-defined]
                # RFC 3502 §6.3.11: "If a flag parenthesized list is specified, the flags
                # SHOULD be set in the resulting message"; "If a date-time is specified, the
                # internal date SHOULD be set in the resulting message".
                check("IMAP-MULTIAPPEND-FLAGS", flags == set(FLAGS[i]),
                      f"message {i + 1} has FLAGS {sorted(flags)}, appended with {FLAGS[i]}")
                date = m.get("INTERNALDATE")
                check("IMAP-MULTIAPPEND-FLAGS",
                      isinstance(date, str) and _when(date) == _when(DATES[i]),
                      f"message {i + 1} has INTERNALDATE {date!r}, appended with {DATES[i]!r}")

    run(scenario())


async def _raw_append(client: IMAPClient, head: bytes,
                      pieces: list[tuple[bytes, bytes]]) -> Tagged | None:
    """``tag APPEND`` *head*, then each (literal octets, text after them): every literal
    synchronising, sent after the server's "+"; a tagged answer in place of a "+" ends it."""
    tag = next_raw_tag()
    line = tag.encode("ascii") + b" APPEND " + head
    for data, after in pieces:
        await client.send_raw(line + b"{%d}\r\n" % len(data))
        refused = await continuation_or_tagged(client, tag)
        if refused is not None:
            return refused
        line = data + after
    await client.send_raw(line + b"\r\n")
    tagged, _ = await until_tagged(client, tag)
    return tagged


@pytest.mark.requirement("IMAP-MULTIAPPEND-ATOMIC")
def test_imap_multiappend_is_atomic(target: Target, evidence: Evidence) -> None:
    first, third = message(token()), message(token())

    async def scenario() -> None:
        async with session(target, evidence) as client, scratch(client) as name:
            _need_multiappend(client)
            # A zero-length literal in the middle: RFC 3502 §6.3.11 "A zero-length message
            # literal argument is an error, and MUST return a NO.  This can be used to cancel
            # the append."
            cancelled = await client.append_messages(name, [
                AppendMessage(("\\Seen",), None, first), AppendMessage((), None, b""),
                AppendMessage((), None, third)])
            check("IMAP-MULTIAPPEND-ATOMIC", cancelled.status == "NO",
                  f"APPEND with a zero-length second literal answered {cancelled.status}")
            # "If the append is unsuccessful for any reason (including being cancelled), the
            # mailbox MUST be restored to its state before the APPEND attempt; no partial
            # appending is permitted."
            held = await message_count(client, name)
            check("IMAP-MULTIAPPEND-ATOMIC", held == 0,
                  f"after a cancelled APPEND of 3 messages the mailbox holds {held}")
            # A second message the server refuses: a date-month outside the grammar (RFC 3502
            # §6.3.11 "BAD - command unknown or arguments invalid"), a date-time of no day
            # (31 February: "NO - append error: ... error in flags or date/time"), a flag no
            # client may set (RFC 3501 §2.3.2: \Recent "can not be altered by the client").
            # A server may take the last two; only a refusal is judged, by what it left behind.
            head = mbox(name).encode("utf-8") + b" (\\Seen) "
            for bad in (b'"01-Foo-2020 10:00:00 +0000"', b'"31-Feb-2020 10:00:00 +0000"',
                        b"(\\Recent)"):
                before = await message_count(client, name)
                answer = await _raw_append(client, head, [
                    (first, b" " + bad + b" "), (third, b" "), (third, b"")])
                status = answer.status if answer is not None else None
                precondition(status is not None, f"the server closed the connection at {bad!r}")
                if status == "OK":
                    continue
                held = await message_count(client, name)
                check("IMAP-MULTIAPPEND-ATOMIC", held == before,
                      f"an APPEND of 3 messages refused ({status}) at its second message's "
                      f"{bad.decode()} left {held - before} of them in the mailbox")

    run(scenario())


def _members(uid_set: str) -> list[int] | None:
    """The UIDs of an APPENDUID uid-set, each range in the order written; None with "*"."""
    try:
        parsed = SequenceSet.parse(uid_set)
    except ValueError:
        return None
    out: list[int] = []
    for start, end in parsed.ranges:
        if start is None or end is None:
            return None
        out += range(min(start, end), max(start, end) + 1)
    return out


@pytest.mark.requirement("IMAP-MULTIAPPEND-APPENDUID")
def test_imap_multiappend_appenduid_set(target: Target, evidence: Evidence) -> None:
    bodies = [message(token()) for _ in range(3)]

    async def scenario() -> None:
        async with session(target, evidence) as client, scratch(client) as name:
            _need_multiappend(client)
            need("UIDPLUS" in client.capabilities, "the server does not advertise UIDPLUS")
            result = await client.append_messages(name, [AppendMessage((), None, b)
                                                         for b in bodies])
            precondition(result.ok, f"APPEND of three messages answered {result.status}")
            code = result.code.value if result.code and result.code.name == "APPENDUID" else None
            selected = await select(client, name)
            present = await uids(client)
            # RFC 4315 §3: "If the server also supports the [MULTIAPPEND] extension, and if
            # multiple messages were appended in the APPEND command, then the second value is
            # a UID set containing the UIDs assigned to the appended messages, in the order
            # they were transmitted in the APPEND command.  This UID set may not contain
            # extraneous UIDs or the symbol "*"."
            check("IMAP-MULTIAPPEND-APPENDUID", isinstance(code, tuple) and len(code) == 2,
                  f"APPEND OK carries no APPENDUID (response code {result.code})")
            assert isinstance(code, tuple)
            check("IMAP-MULTIAPPEND-APPENDUID", code[0] == selected.uidvalidity,
                  f"APPENDUID UIDVALIDITY {code[0]}, SELECT says {selected.uidvalidity}")
            check("IMAP-MULTIAPPEND-APPENDUID", _members(str(code[1])) == present,
                  f"APPENDUID names UIDs {code[1]}, the mailbox has {present}")

    run(scenario())
