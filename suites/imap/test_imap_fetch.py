"""IMAP in depth — FETCH: ENVELOPE, BODYSTRUCTURE, body sections, partial fetches, UID FETCH,
and the response grammar of every kind of FETCH data."""

from __future__ import annotations

import pytest

from harness.protocol.imap.responses import Fetch
from harness.suite import Evidence, check, run, token
from harness.targets import Target
from suites.imap.imap_helpers import (
    append,
    fetch_uid,
    message,
    multipart,
    only_uid,
    scratch,
    select,
    session,
)

pytestmark = pytest.mark.step(9)


async def _fetch(target: Target, evidence: Evidence, data: bytes, items: str,
                 requirement: str) -> dict[str, object]:
    """Append *data* to a scratch mailbox and UID FETCH *items* of it, merged over the FETCH
    responses; the FETCH's completion is a check of *requirement*."""
    async with session(target, evidence) as client, scratch(client) as name:
        await append(client, name, data)
        await select(client, name)
        uid = await only_uid(client)
        return await fetch_uid(client, uid, items, requirement)


@pytest.mark.requirement("IMAP-FETCH-ENVELOPE")
def test_imap_fetch_envelope(target: Target, evidence: Evidence) -> None:
    mark = token()
    items = run(_fetch(target, evidence, message(mark, subject="envelope test"), "(ENVELOPE)",
                       "IMAP-FETCH-ENVELOPE"))
    envelope = items.get("ENVELOPE")
    check("IMAP-FETCH-ENVELOPE", isinstance(envelope, tuple) and len(envelope) == 10,
          f"ENVELOPE is {envelope!r}")
    assert isinstance(envelope, tuple)
    date, subject, sender = envelope[0], envelope[1], envelope[2]
    message_id = envelope[9]
    # RFC 9051 §7.5.2: ENVELOPE fields are "date, subject, from, sender, reply-to, to, cc, bcc,
    # in-reply-to, and message-id", taken from the header.
    check("IMAP-FETCH-ENVELOPE", subject is not None and mark in str(subject),
          f"ENVELOPE subject {subject!r}")
    check("IMAP-FETCH-ENVELOPE", bool(date), "ENVELOPE date is NIL though the message has a Date")
    check("IMAP-FETCH-ENVELOPE", isinstance(sender, tuple) and bool(sender),
          f"ENVELOPE from is {sender!r}")
    check("IMAP-FETCH-ENVELOPE", bool(message_id) and mark in str(message_id),
          f"ENVELOPE message-id {message_id!r}")


@pytest.mark.requirement("IMAP-FETCH-BODYSTRUCTURE")
def test_imap_fetch_bodystructure(target: Target, evidence: Evidence) -> None:
    items = run(_fetch(target, evidence, multipart(token()), "(BODYSTRUCTURE)",
                       "IMAP-FETCH-BODYSTRUCTURE"))
    structure = items.get("BODYSTRUCTURE")
    # RFC 9051 §7.5.2: a multipart body is "a parenthesized list of the nested body parts
    # followed by the multipart subtype"; a part starts with its type and subtype.
    check("IMAP-FETCH-BODYSTRUCTURE", isinstance(structure, tuple) and bool(structure),
          f"BODYSTRUCTURE is {structure!r}")
    assert isinstance(structure, tuple)
    first_atom = next((i for i, p in enumerate(structure) if not isinstance(p, tuple)), 0)
    parts = list(structure[:first_atom])
    subtype = structure[first_atom] if first_atom else structure[0]
    check("IMAP-FETCH-BODYSTRUCTURE", len(parts) == 2,
          f"BODYSTRUCTURE does not list the 2 parts: {structure!r}")
    check("IMAP-FETCH-BODYSTRUCTURE", str(subtype).upper() == "MIXED",
          f"multipart subtype {subtype!r}")
    kinds = [(str(p[0]).upper(), str(p[1]).upper()) if len(p) >= 2 else (repr(p), "")
             for p in parts]
    check("IMAP-FETCH-BODYSTRUCTURE",
          kinds == [("TEXT", "PLAIN"), ("APPLICATION", "OCTET-STREAM")], f"parts {kinds}")


@pytest.mark.requirement("IMAP-FETCH-SECTIONS")
def test_imap_fetch_sections(target: Target, evidence: Evidence) -> None:
    data = multipart(token())
    header, _, text = data.partition(b"\r\n\r\n")
    items = run(_fetch(target, evidence, data,
                       "(BODY.PEEK[HEADER] BODY.PEEK[TEXT] BODY.PEEK[1] "
                       "BODY.PEEK[HEADER.FIELDS (MIME-Version)])", "IMAP-FETCH-SECTIONS"))
    # RFC 9051 §6.4.5.1: "The HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, and TEXT part
    # specifiers can be the sole part specifier or can be prefixed by one or more numeric part
    # specifiers"; HEADER is the header with its blank line, TEXT the body after it.
    check("IMAP-FETCH-SECTIONS", items.get("BODY[HEADER]") == header + b"\r\n\r\n",
          "BODY[HEADER] is not the header")
    check("IMAP-FETCH-SECTIONS", items.get("BODY[TEXT]") == text,
          "BODY[TEXT] is not the text after the header")
    check("IMAP-FETCH-SECTIONS", items.get("BODY[1]") == b"first part",
          f"BODY[1] is {items.get('BODY[1]')!r}")
    fields = items.get("BODY[HEADER.FIELDS (MIME-VERSION)]") or items.get(
        "BODY[HEADER.FIELDS (MIME-Version)]")
    check("IMAP-FETCH-SECTIONS", fields == b"MIME-Version: 1.0\r\n\r\n",
          f"BODY[HEADER.FIELDS (MIME-Version)] is {fields!r}")


@pytest.mark.requirement("IMAP-FETCH-PARTIAL")
def test_imap_fetch_partial(target: Target, evidence: Evidence) -> None:
    data = message(token())
    items = run(_fetch(target, evidence, data, "(BODY.PEEK[]<5.20> BODY.PEEK[]<0.3>)",
                       "IMAP-FETCH-PARTIAL"))
    # RFC 9051 §6.4.5: "the first octet is octet 0 ... BODY[]<0.2048> of a 1500-octet message
    # will return BODY[]<0> with a literal of size 1500"; the response names the origin.
    check("IMAP-FETCH-PARTIAL", items.get("BODY[]<5>") == data[5:25],
          f"BODY[]<5.20> is {items.get('BODY[]<5>')!r}")
    check("IMAP-FETCH-PARTIAL", items.get("BODY[]<0>") == data[:3],
          f"BODY[]<0.3> is {items.get('BODY[]<0>')!r}")


@pytest.mark.requirement("IMAP-UID-FETCH-UID")
def test_imap_uid_fetch_includes_uid(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[int, str, list[dict[str, object]]]:
        async with session(target, evidence) as client, scratch(client) as name:
            await append(client, name, message(token()))
            await select(client, name)
            uid = await only_uid(client)
            result, found = await client.fetch(str(uid), "(FLAGS)", uid=True)
            return uid, result.status, list(found.values())

    uid, status, responses = run(scenario())
    # RFC 9051 §6.4.9: "UID data items ... MUST be included in the FETCH response of a UID
    # FETCH even if the UID data item was not requested".
    check("IMAP-UID-FETCH-UID", status == "OK" and bool(responses),
          f"UID FETCH {uid} (FLAGS) answered {status} with {len(responses)} FETCH responses")
    check("IMAP-UID-FETCH-UID", all(r.get("UID") == uid for r in responses),
          f"FETCH responses without UID {uid}: {responses}")


#: One FETCH of every kind of message data RFC 9051 §7.5.2 defines (and FLAGS on its own), so
#: that each production of msg-att (§9) goes through the strict response parser.
GRAMMAR_FETCHES: tuple[str, ...] = (
    "(FLAGS)",
    "(UID FLAGS INTERNALDATE RFC822.SIZE)",
    "(ENVELOPE BODYSTRUCTURE BODY)",
    "(BODY.PEEK[] BODY.PEEK[HEADER] BODY.PEEK[TEXT] BODY.PEEK[1] BODY.PEEK[1.MIME])",
    "(BODY.PEEK[HEADER.FIELDS (Subject MIME-Version)] BODY.PEEK[HEADER.FIELDS.NOT (Subject)])",
    "(BODY.PEEK[]<0.10> BODY.PEEK[2]<2.4>)",
    "(RFC822.HEADER RFC822.SIZE)",
    "FAST",
    "ALL",
    "FULL",
)


@pytest.mark.requirement("IMAP-RESPONSE-SYNTAX")
def test_imap_fetch_responses_follow_grammar(target: Target, evidence: Evidence) -> None:
    async def scenario() -> int:
        async with session(target, evidence) as client, scratch(client) as name:
            await append(client, name, multipart(token()), ["\\Flagged", "$Grammar"])
            await append(client, name, message(token()))
            await select(client, name)
            fetched = 0
            for items in GRAMMAR_FETCHES:
                result = await client.command(f"UID FETCH 1:* {items}")
                fetched += sum(1 for r in result.untagged if isinstance(r, Fetch))
            # A non-silent STORE answers with FETCH FLAGS too (RFC 9051 §6.4.6).
            result = await client.command("STORE 1:* +FLAGS ($Grammar2)")
            fetched += sum(1 for r in result.untagged if isinstance(r, Fetch))
            return fetched

    fetched = run(scenario())
    # RFC 9051 §9: "the precise syntax of server responses" (§7); the strict response parser
    # raised for any response that broke it, which fails this requirement with its bytes.
    check("IMAP-RESPONSE-SYNTAX", True,
          f"every response of the session parsed, {fetched} FETCH responses among them")
