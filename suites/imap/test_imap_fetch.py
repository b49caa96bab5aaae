"""IMAP in depth — FETCH: ENVELOPE, BODYSTRUCTURE, body sections, partial fetches, UID FETCH."""

from __future__ import annotations

import pytest

from harness.suite import Evidence, run, token
from harness.targets import Target
from suites.imap.imap_helpers import append, fetch_uid, message, multipart, scratch, session, uids

pytestmark = pytest.mark.step(9)


async def _fetch(target: Target, evidence: Evidence, data: bytes, items: str) -> dict[str, object]:
    async with session(target, evidence) as client, scratch(client) as name:
        await append(client, name, data)
        await client.select(name)
        (uid,) = await uids(client)
        return await fetch_uid(client, uid, items)


@pytest.mark.requirement("IMAP-FETCH-ENVELOPE")
def test_imap_fetch_envelope(target: Target, evidence: Evidence) -> None:
    mark = token()
    items = run(_fetch(target, evidence, message(mark, subject="envelope test"), "(ENVELOPE)"))
    envelope = items.get("ENVELOPE")
    assert isinstance(envelope, tuple) and len(envelope) == 10, f"ENVELOPE is {envelope!r}"
    date, subject, sender = envelope[0], envelope[1], envelope[2]
    message_id = envelope[9]
    # RFC 9051 §7.5.2: ENVELOPE fields are "date, subject, from, sender, reply-to, to, cc, bcc,
    # in-reply-to, and message-id", taken from the header.
    assert subject is not None and mark in str(subject), f"ENVELOPE subject {subject!r}"
    assert date, "ENVELOPE date is NIL though the message has a Date"
    assert isinstance(sender, tuple) and sender, f"ENVELOPE from is {sender!r}"
    assert message_id and mark in str(message_id), f"ENVELOPE message-id {message_id!r}"


@pytest.mark.requirement("IMAP-FETCH-BODYSTRUCTURE")
def test_imap_fetch_bodystructure(target: Target, evidence: Evidence) -> None:
    items = run(_fetch(target, evidence, multipart(token()), "(BODYSTRUCTURE)"))
    structure = items.get("BODYSTRUCTURE")
    # RFC 9051 §7.5.2: a multipart body is "a parenthesized list of the nested body parts
    # followed by the multipart subtype"; a part starts with its type and subtype.
    assert isinstance(structure, tuple), f"BODYSTRUCTURE is {structure!r}"
    first_atom = next((i for i, p in enumerate(structure) if not isinstance(p, tuple)), 0)
    parts = list(structure[:first_atom])
    subtype = structure[first_atom] if first_atom else structure[0]
    assert len(parts) == 2, f"BODYSTRUCTURE does not list the 2 parts: {structure!r}"
    assert str(subtype).upper() == "MIXED", f"multipart subtype {subtype!r}"
    kinds = [(str(p[0]).upper(), str(p[1]).upper()) for p in parts]
    assert kinds == [("TEXT", "PLAIN"), ("APPLICATION", "OCTET-STREAM")], f"parts {kinds}"


@pytest.mark.requirement("IMAP-FETCH-SECTIONS")
def test_imap_fetch_sections(target: Target, evidence: Evidence) -> None:
    data = multipart(token())
    header, _, text = data.partition(b"\r\n\r\n")
    items = run(_fetch(target, evidence, data,
                       "(BODY.PEEK[HEADER] BODY.PEEK[TEXT] BODY.PEEK[1] "
                       "BODY.PEEK[HEADER.FIELDS (MIME-Version)])"))
    # RFC 9051 §6.4.5.1: "The HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, and TEXT part
    # specifiers can be the sole part specifier or can be prefixed by one or more numeric part
    # specifiers"; HEADER is the header with its blank line, TEXT the body after it.
    assert items.get("BODY[HEADER]") == header + b"\r\n\r\n", "BODY[HEADER] is not the header"
    assert items.get("BODY[TEXT]") == text, "BODY[TEXT] is not the text after the header"
    assert items.get("BODY[1]") == b"first part", f"BODY[1] is {items.get('BODY[1]')!r}"
    fields = items.get("BODY[HEADER.FIELDS (MIME-VERSION)]") or items.get(
        "BODY[HEADER.FIELDS (MIME-Version)]")
    assert fields == b"MIME-Version: 1.0\r\n\r\n", f"BODY[HEADER.FIELDS (MIME-Version)] is {fields!r}"


@pytest.mark.requirement("IMAP-FETCH-PARTIAL")
def test_imap_fetch_partial(target: Target, evidence: Evidence) -> None:
    data = message(token())
    items = run(_fetch(target, evidence, data, "(BODY.PEEK[]<5.20> BODY.PEEK[]<0.3>)"))
    # RFC 9051 §6.4.5: "the first octet is octet 0 ... BODY[]<0.2048> of a 1500-octet message
    # will return BODY[]<0> with a literal of size 1500"; the response names the origin.
    assert items.get("BODY[]<5>") == data[5:25], f"BODY[]<5.20> is {items.get('BODY[]<5>')!r}"
    assert items.get("BODY[]<0>") == data[:3], f"BODY[]<0.3> is {items.get('BODY[]<0>')!r}"


@pytest.mark.requirement("IMAP-UID-FETCH-UID")
def test_imap_uid_fetch_includes_uid(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[int, list[dict[str, object]]]:
        async with session(target, evidence) as client, scratch(client) as name:
            await append(client, name, message(token()))
            await client.select(name)
            (uid,) = await uids(client)
            _, found = await client.fetch(str(uid), "(FLAGS)", uid=True)
            return uid, list(found.values())

    uid, responses = run(scenario())
    # RFC 9051 §6.4.9: "UID data items ... MUST be included in the FETCH response of a UID
    # FETCH even if the UID data item was not requested".
    assert responses, "UID FETCH returned no FETCH response"
    assert all(r.get("UID") == uid for r in responses), f"FETCH responses without UID: {responses}"
