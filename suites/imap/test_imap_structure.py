"""IMAP in depth — the structure corpus: ENVELOPE, BODYSTRUCTURE, sizes, body sections and
BINARY of hard messages (suites/imap/corpus), each judged against the answers written by hand
from RFC 9051 §7.5.2 and §6.4.5, RFC 5322 and RFC 2045/2046/2047/2231 beside the message.

Each message is APPENDed to a fresh scratch mailbox; every corpus message is its own test id
in each test. The properties over built multiparts are in test_imap_structure_built.py.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable

import pytest

from harness.clients.imap import IMAPClient
from harness.protocol.imap.responses import Fetch
from harness.suite import Evidence, check, need, not_applicable, precondition, run
from harness.targets import Target
from suites.imap.corpus import Case, cases
from suites.imap.expectations import (
    ENVELOPE_FIELDS,
    SIZE,
    body_differences,
    has_group,
    matches,
    part_encoding,
    shown,
    without_extension,
)
from suites.imap.imap_helpers import (
    append_literal8,
    enable_rev2,
    ensure_binary,
    fetch_uid,
    scratch,
    select,
    session,
)

pytestmark = pytest.mark.step(9)

CASES = cases()


def _with(key: str, *more: str) -> list[object]:
    """The corpus cases whose expectations have any of the keys, one test id each."""
    return [pytest.param(c, id=c.name) for c in CASES
            if any(k in c.expected for k in (key, *more))]


async def _store(client: IMAPClient, name: str, case: Case) -> int:
    """APPEND the case's message to mailbox *name*, select it, and return its UID."""
    if case.expected.get("enable") == "IMAP4rev2":
        await enable_rev2(client)
    how = case.expected.get("append")
    if how == "literal8":
        await ensure_binary(client)
        tagged = await append_literal8(client, name, case.data)
        code = tagged.code.name if tagged is not None and tagged.code else None
        # RFC 3516 §4.4: "If the destination mailbox does not support the storage of binary
        # content, the server MUST fail the request and issue a "NO" response that contains
        # the "UNKNOWN-CTE" extended response code."
        need(not (tagged is not None and tagged.status == "NO" and code == "UNKNOWN-CTE"),
             "the mailbox does not store binary content (APPEND answered NO [UNKNOWN-CTE])")
        precondition(tagged is not None and tagged.ok,
                     f"setup APPEND (literal8) answered {tagged.status if tagged else 'nothing'}")
    else:
        result = await client.append(name, case.data)
        # RFC 9051 §6.3.12: "NO - append error: ... message text" (a message in bare LFs).
        need(result.ok or not (how == "may-refuse" and result.status == "NO"),
             "the server refused the message, as RFC 9051 §6.3.12 allows")
        precondition(result.ok, f"setup APPEND answered {result.status}")
    await select(client, name)
    # FETCH, not SEARCH: after ENABLE IMAP4rev2 a server answers SEARCH with ESEARCH.
    result = await client.command("FETCH 1:* (UID)")
    found = [r.items.get("UID") for r in result.untagged if isinstance(r, Fetch)]
    precondition(result.ok and len(found) == 1 and isinstance(found[0], int),
                 f"FETCH 1:* (UID) answered {result.status} with UIDs {found}, not the one "
                 "message appended")
    assert isinstance(found[0], int)
    return found[0]


def _scenario(target: Target, evidence: Evidence, case: Case,
              probe: Callable[[IMAPClient, int], Awaitable[None]]) -> None:
    async def scenario() -> None:
        async with session(target, evidence) as client, scratch(client) as name:
            uid = await _store(client, name, case)
            await probe(client, uid)

    run(scenario())


def _fetch_item(section: str) -> str:
    """``BODY[1]<2.5>`` → ``BODY.PEEK[1]<2.5>`` (no \\Seen flag set: RFC 9051 §6.4.5)."""
    name, _, rest = section.partition("[")
    return f"{name}.PEEK[{rest}"


def _answer(items: dict[str, object], section: str) -> tuple[bool, object]:
    """The value of *section* among *items*: its key is the section as the server echoed it,
    with the partial's origin only (RFC 9051 §7.5.2: BODY[<section>]<<origin octet>>)."""
    name = section.split("[", 1)[0] + "["
    spec, _, partial = section.partition("]")
    origin = "<" + partial[1:].split(".", 1)[0] + ">" if partial.startswith("<") else ""
    wanted = (spec + "]" + origin).upper()
    if wanted in items:
        return True, items[wanted]
    found = [k for k in items if k.startswith(name) and k.endswith(origin or "]")]
    return (True, items[found[0]]) if len(found) == 1 else (False, None)


# --- ENVELOPE -----------------------------------------------------------------------------


@pytest.mark.requirement("IMAP-FETCH-ENVELOPE", "IMAP-ENVELOPE-GROUPS")
@pytest.mark.parametrize("case", _with("envelope"))
def test_corpus_envelope(target: Target, evidence: Evidence, case: Case) -> None:
    expected = case.expected["envelope"]
    assert isinstance(expected, tuple)

    async def probe(client: IMAPClient, uid: int) -> None:
        items = await fetch_uid(client, uid, "(ENVELOPE)", "IMAP-FETCH-ENVELOPE")
        envelope = items.get("ENVELOPE")
        check("IMAP-FETCH-ENVELOPE", isinstance(envelope, tuple) and len(envelope) == 10,
              f"{case.name}: ENVELOPE is {envelope!r}")
        assert isinstance(envelope, tuple)
        grouped = [i for i, e in enumerate(expected) if 2 <= i <= 7 and has_group(e)]
        for index, field in enumerate(ENVELOPE_FIELDS):
            if index not in grouped:
                check("IMAP-FETCH-ENVELOPE", matches(envelope[index], expected[index]),
                      f"{case.name}: ENVELOPE {field} is {envelope[index]!r}, expected "
                      f"{shown(expected[index])} (suites/imap/corpus/{case.name}.expected.py)")
        for index in grouped:
            # RFC 9051 §7.5.2: "[RFC5322] group syntax is indicated by a special form of
            # address structure in which the hostname field is NIL."
            check("IMAP-ENVELOPE-GROUPS", matches(envelope[index], expected[index]),
                  f"{case.name}: ENVELOPE {ENVELOPE_FIELDS[index]} is {envelope[index]!r}, "
                  f"expected {shown(expected[index])}")
        if not grouped:
            not_applicable("IMAP-ENVELOPE-GROUPS", f"{case.name} has no group")

    _scenario(target, evidence, case, probe)


# --- BODYSTRUCTURE, BODY, sizes -----------------------------------------------------------


@pytest.mark.requirement("IMAP-FETCH-BODYSTRUCTURE", "IMAP-BODYSTRUCTURE-SIZES")
@pytest.mark.parametrize("case", _with("bodystructure"))
def test_corpus_bodystructure(target: Target, evidence: Evidence, case: Case) -> None:
    expected = case.expected["bodystructure"]
    assert isinstance(expected, tuple)

    async def probe(client: IMAPClient, uid: int) -> None:
        items = await fetch_uid(client, uid, "(BODYSTRUCTURE BODY)", "IMAP-FETCH-BODYSTRUCTURE")
        where = f"(suites/imap/corpus/{case.name}.expected.py)"
        found = {}
        for item, wanted in (("BODYSTRUCTURE", expected), ("BODY", without_extension(expected))):
            value = items.get(item)
            check("IMAP-FETCH-BODYSTRUCTURE", isinstance(value, tuple),
                  f"{case.name}: no {item} in the FETCH response: {sorted(items)}")
            found[item] = list(body_differences(value, wanted))
        # RFC 9051 §7.5.2: BODYSTRUCTURE is "computed by the server by parsing the [MIME-IMB]
        # header fields"; BODY is "A form of BODYSTRUCTURE without extension data".
        for item, differences in found.items():
            shape = [d for d in differences if d.kind != SIZE]
            check("IMAP-FETCH-BODYSTRUCTURE", not shape,
                  f"{case.name}: {item} {'; '.join(map(str, shape))} {where}")
        # "body size: A number giving the size of the body in octets ... in its transfer
        # encoding"; "A body type of type TEXT contains, immediately after the basic fields,
        # the size of the body in text lines."
        sizes = [d for d in found["BODYSTRUCTURE"] if d.kind == SIZE]
        check("IMAP-BODYSTRUCTURE-SIZES", not sizes,
              f"{case.name}: BODYSTRUCTURE {'; '.join(map(str, sizes))} {where}")

    _scenario(target, evidence, case, probe)


@pytest.mark.requirement("IMAP-RFC822-SIZE")
@pytest.mark.parametrize("case", _with("size"))
def test_corpus_rfc822_size(target: Target, evidence: Evidence, case: Case) -> None:
    expected = case.expected["size"]

    async def probe(client: IMAPClient, uid: int) -> None:
        items = await fetch_uid(client, uid, "(RFC822.SIZE BODY.PEEK[])", "IMAP-RFC822-SIZE")
        size, whole = items.get("RFC822.SIZE"), items.get("BODY[]")
        # RFC 9051 §2.3.4: "RFC822.SIZE is the number of octets in the message when the
        # message is expressed in [RFC5322] format.  This size SHOULD match the result of a
        # "FETCH BODY[]" command."
        check("IMAP-RFC822-SIZE", matches(size, expected),
              f"{case.name}: RFC822.SIZE is {size!r}, the message appended has {shown(expected)} "
              "octets")
        check("IMAP-RFC822-SIZE", isinstance(whole, bytes) and size == len(whole),
              f"{case.name}: RFC822.SIZE is {size!r}, BODY[] has "
              f"{len(whole) if isinstance(whole, bytes) else whole!r} octets")

    _scenario(target, evidence, case, probe)


# --- sections -----------------------------------------------------------------------------


def _section_requirement(section: str) -> str:
    if "<" in section:
        return "IMAP-FETCH-PARTIAL"
    if "HEADER.FIELDS" in section:
        return "IMAP-HEADER-FIELDS-NAMES"
    return "IMAP-FETCH-SECTIONS"


SECTION_REQUIREMENTS = ("IMAP-FETCH-SECTIONS", "IMAP-HEADER-FIELDS-NAMES", "IMAP-FETCH-PARTIAL")


def _fields_only(data: bytes) -> bytes:
    """Header fields without the blank line that ends them."""
    if data in (b"\r\n", b"\n"):
        return b""
    return data[:-2] if data.endswith(b"\r\n\r\n") else data


def _decode(encoding: str | None, data: bytes) -> bytes | None:
    """*data* decoded from *encoding* by the standard library (RFC 2045 §6.7, §6.8)."""
    try:
        if encoding == "BASE64":
            return base64.b64decode(data)
        if encoding == "QUOTED-PRINTABLE":
            return binascii.a2b_qp(data)
    except (ValueError, binascii.Error):
        return None
    return data if encoding in ("7BIT", "8BIT", "BINARY") else None


@pytest.mark.requirement(*SECTION_REQUIREMENTS)
@pytest.mark.parametrize("case", _with("sections", "decoded"))
def test_corpus_sections(target: Target, evidence: Evidence, case: Case) -> None:
    sections = case.table("sections")
    decoded = case.table("decoded")
    order = sorted(sections, key=lambda s: SECTION_REQUIREMENTS.index(_section_requirement(s)))

    async def probe(client: IMAPClient, uid: int) -> None:
        for section in order:
            requirement = _section_requirement(section)
            items = await fetch_uid(client, uid, f"({_fetch_item(section)})", requirement)
            present, value = _answer(items, section)
            wanted = sections[section]
            if requirement == "IMAP-HEADER-FIELDS-NAMES" and isinstance(value, bytes) \
                    and isinstance(wanted, bytes):
                # The fields the names pick, apart from the blank line after them, are this
                # requirement's; the blank line is the section's (RFC 9051 §6.4.5: "the blank
                # line is included in all header fetches, except in the case of a message that
                # has no body and no blank line").
                check(requirement, _fields_only(value) == _fields_only(wanted),
                      f"{case.name}: {section} is {value!r:.300}, expected the fields of "
                      f"{wanted!r:.300} (suites/imap/corpus/{case.name}.expected.py)")
                check("IMAP-FETCH-SECTIONS", value == wanted,
                      f"{case.name}: {section} is {value!r:.300}, expected {wanted!r:.300}: "
                      "the blank line after the fields")
                continue
            # RFC 9051 §6.4.5: BODY[<section>] is "The text of a particular body section";
            # §6.4.5.1 says which octets each part specifier names.
            check(requirement, present and matches(value, sections[section]),
                  f"{case.name}: {section} is {value!r:.300}, expected "
                  f"{shown(sections[section]):.300} (suites/imap/corpus/{case.name}.expected.py)"
                  if present else f"{case.name}: no {section} in {sorted(items)}")
        for part, wanted in decoded.items():
            items = await fetch_uid(client, uid, f"(BODYSTRUCTURE BODY.PEEK[{part}])",
                                    "IMAP-FETCH-SECTIONS")
            encoding = part_encoding(items.get("BODYSTRUCTURE"), part)
            raw = items.get(f"BODY[{part}]")
            plain = _decode(encoding, raw) if isinstance(raw, bytes) else None
            # RFC 3516 §6: "the results of a FETCH BODY MUST return the message body content
            # in the format described by the corresponding FETCH BODYSTRUCTURE response."
            check("IMAP-FETCH-SECTIONS", plain == wanted,
                  f"{case.name}: BODY[{part}] is {raw!r:.200}, which its BODYSTRUCTURE "
                  f"encoding {encoding!r} decodes to {plain!r:.100}, not {wanted!r}")
        present = {_section_requirement(s) for s in sections} | (
            {"IMAP-FETCH-SECTIONS"} if decoded else set())
        for requirement in SECTION_REQUIREMENTS:
            if requirement not in present:
                not_applicable(requirement, f"{case.name} has no such section in the corpus")

    _scenario(target, evidence, case, probe)


# --- BINARY ---------------------------------------------------------------------------------


@pytest.mark.requirement("IMAP-FETCH-BINARY", "IMAP-BINARY-SIZE")
@pytest.mark.parametrize("case", _with("binary", "binary_size", "binary_crlf"))
def test_corpus_binary(target: Target, evidence: Evidence, case: Case) -> None:
    binary, sizes = case.table("binary"), case.table("binary_size")
    crlf = case.expected.get("binary_crlf", ())
    assert isinstance(crlf, tuple)

    async def probe(client: IMAPClient, uid: int) -> None:
        await ensure_binary(client)
        for section, wanted in binary.items():
            items = await fetch_uid(client, uid, f"({_fetch_item(section)})", "IMAP-FETCH-BINARY")
            present, value = _answer(items, section)
            # RFC 9051 §7.5.2: "the content of the specified section after removing any
            # encoding specified in the corresponding Content-Transfer-Encoding header field".
            check("IMAP-FETCH-BINARY", present and matches(value, wanted),
                  f"{case.name}: {section} is {value!r:.200}, expected {shown(wanted)}")
        for part in crlf:
            items = await fetch_uid(client, uid, f"(BINARY.PEEK[{part}])", "IMAP-FETCH-BINARY")
            value = items.get(f"BINARY[{part}]")
            bare = isinstance(value, bytes) and value.count(b"\n") != value.count(b"\r\n")
            # "servers MUST ensure that textual line-oriented sections are always transmitted
            # using the IMAP CRLF line termination syntax, regardless of the underlying
            # storage representation of the data on the server."
            check("IMAP-FETCH-BINARY", isinstance(value, bytes) and not bare,
                  f"{case.name}: BINARY[{part}] is {value!r:.200}, with a bare LF")
        for part, wanted in sizes.items():
            items = await fetch_uid(client, uid, f"(BINARY.SIZE[{part}] BINARY.PEEK[{part}])",
                                    "IMAP-BINARY-SIZE")
            size, value = items.get(f"BINARY.SIZE[{part}]"), items.get(f"BINARY[{part}]")
            # "BINARY.SIZE ... The value returned MUST match the size of the <nstring> or
            # <literal8> that will be returned by the corresponding FETCH BINARY request."
            check("IMAP-BINARY-SIZE", size == wanted and isinstance(value, bytes)
                  and size == len(value),
                  f"{case.name}: BINARY.SIZE[{part}] is {size!r}, the decoded part has {wanted} "
                  f"octets and BINARY[{part}] returned "
                  f"{len(value) if isinstance(value, bytes) else value!r}")
        if not binary and not crlf:
            not_applicable("IMAP-FETCH-BINARY", f"{case.name} has no BINARY section in the corpus")
        if not sizes:
            not_applicable("IMAP-BINARY-SIZE", f"{case.name} has no BINARY.SIZE in the corpus")

    _scenario(target, evidence, case, probe)
