"""IMAP in depth — UTF8=ACCEPT (RFC 6855): ENABLE UTF8=ACCEPT, UTF-8 mailbox names and search
strings, the UTF8 APPEND data extension, malformed UTF-8, and what a client that did not enable
it is sent of (and may append as) a message with raw UTF-8 header fields (RFC 6532).

Skipped where the server does not advertise UTF8=ACCEPT. Expected names and octets are written
out here by hand ("Grüße" in modified UTF-7 is "Gr&APwA3w-e", RFC 3501 §5.1.3).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from harness.clients.imap import IMAPClient
from harness.clients.transcript import SERVER
from harness.protocol.imap.responses import Enabled, Fetch, List, Search, Status
from harness.suite import Evidence, check, need, precondition, run, token
from harness.targets import Target
from suites.imap.imap_helpers import cleanup, mbox, raw, scratch, select, session

pytestmark = pytest.mark.step(9)

WORD = "Grüße"
#: "Grüße" in modified UTF-7 (RFC 3501 §5.1.3): ü U+00FC and ß U+00DF as UTF-16 00FC 00DF,
#: in modified base64 "APwA3w", between "&" and "-".
WORD_MUTF7 = "Gr&APwA3w-e"


def _utf8_message(mark: str) -> bytes:
    """A message whose header fields hold raw UTF-8 (RFC 6532 §3.2), with a US-ASCII body."""
    return (
        f"From: Jörg Müller <joerg@example.org>\r\n"
        f"To: rcpt@example.net\r\n"
        f"Subject: {WORD} aus Köln [{mark}]\r\n"
        f"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
        f"Message-ID: <{mark}@client.mailharness.invalid>\r\n"
        f"MIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n"
        f"\r\n"
        f"Hello.\r\n"
    ).encode()


async def _offered(client: IMAPClient) -> None:
    if not client.capabilities:
        await client.capability()
    need("UTF8=ACCEPT" in client.capabilities or "UTF8=ONLY" in client.capabilities,
         "the server does not offer UTF8=ACCEPT (RFC 6855)")


async def _enable(client: IMAPClient, requirement: str | None = None) -> None:
    result = await client.command("ENABLE UTF8=ACCEPT")
    enabled = {c.upper() for r in result.untagged if isinstance(r, Enabled) for c in r.caps}
    detail = f"ENABLE UTF8=ACCEPT answered {result.status}, ENABLED {sorted(enabled)}"
    if requirement is None:
        precondition(result.ok and "UTF8=ACCEPT" in enabled, detail)
    else:
        # RFC 6855 §3: the client "MUST use the "ENABLE" command [RFC5161] with the
        # "UTF8=ACCEPT" option"; RFC 5161 §3.1: "If the ENABLE command is successful, the
        # server MUST send an untagged ENABLED response" that lists "capabilities that were
        # enabled".
        check(requirement, result.ok and "UTF8=ACCEPT" in enabled, detail)


@contextlib.asynccontextmanager
async def _enabled(target: Target, evidence: Evidence) -> AsyncIterator[IMAPClient]:
    """A logged-in session that has enabled UTF8=ACCEPT (skipped where it is not offered)."""
    async with session(target, evidence) as client:
        await _offered(client)
        await _enable(client)
        yield client


def _quoted(text: str) -> bytes:
    """*text* as a UTF-8 quoted string (RFC 6855 §3: uQUOTED-CHAR)."""
    return b'"' + text.encode().replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


async def _append_utf8(client: IMAPClient, mailbox: str, data: bytes,
                       requirement: str | None = None) -> None:
    result = await client.append(mailbox, data, utf8=True)
    detail = f"APPEND {mailbox} UTF8 (~{{{len(data)}}}) answered {result.status}"
    if requirement is None:
        precondition(result.ok, detail)
    else:
        # RFC 6855 §4: "If the server supports "UTF8=ACCEPT", then the server accepts UTF-8
        # headers in the "APPEND" command message argument.  A client that sends a message
        # with UTF-8 headers to the server MUST send them using the "UTF8" data extension".
        check(requirement, result.ok, detail)


def _received_since(client: IMAPClient, mark: int) -> bytes:
    return b"".join(e.data for e in client.transcript.entries[mark:] if e.direction == SERVER)


def _envelope_strings(data: bytes) -> list[tuple[str, bytes]]:
    """Every string of the first ENVELOPE in *data*, as ("quoted" | "literal", octets); read
    here by hand, so that the server's octets are judged as they came."""
    start = data.find(b"ENVELOPE (")
    if start < 0:
        return []
    pos, depth = start + len(b"ENVELOPE "), 0
    found: list[tuple[str, bytes]] = []
    while pos < len(data):
        c = data[pos]
        if c == ord("("):
            depth += 1
        elif c == ord(")"):
            depth -= 1
            if depth == 0:
                break
        elif c == ord('"'):
            end, out = pos + 1, bytearray()
            while end < len(data) and data[end] != ord('"'):
                if data[end] == ord("\\"):
                    end += 1
                out.append(data[end])
                end += 1
            found.append(("quoted", bytes(out)))
            pos = end
        elif c == ord("{") or (c == ord("~") and data[pos + 1:pos + 2] == b"{"):
            close = data.index(b"}", pos)
            size = int(data[pos + (2 if c == ord("~") else 1):close].rstrip(b"+"))
            body = close + 3  # "}" CRLF
            found.append(("literal", data[body:body + size]))
            pos = body + size - 1
        pos += 1
    return found


@pytest.mark.requirement("IMAP-UTF8-ENABLE")
def test_imap_utf8_enable(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with session(target, evidence) as client:
            await _offered(client)
            await _enable(client, "IMAP-UTF8-ENABLE")
            noop = await client.noop()
            check("IMAP-UTF8-ENABLE", noop.ok, f"NOOP after ENABLE UTF8=ACCEPT answered {noop.status}")

    run(scenario())


@pytest.mark.requirement("IMAP-UTF8-NAMES")
def test_imap_utf8_quoted_mailbox_names(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with _enabled(target, evidence) as client, session(target, evidence) as legacy:
            name = f"{WORD}-{token()}"
            created, _ = await raw(client, b"CREATE " + _quoted(name))
            try:
                # RFC 6855 §3: servers that "also support the Mailbox International Naming
                # Convention described in RFC 3501, Section 5.1.3, MUST accept UTF8-quoted
                # mailbox names and convert them to the appropriate internal format."
                check("IMAP-UTF8-NAMES", created is not None and created.status == "OK",
                      f"CREATE of a UTF-8 quoted name answered "
                      f"{created.status if created else 'nothing: the connection closed'}")
                listed, seen = await raw(client, b'LIST "" ' + _quoted(name))
                names = [r.mailbox for r in seen if isinstance(r, List)]
                check("IMAP-UTF8-NAMES", listed is not None and listed.status == "OK"
                      and names == [name], f"LIST of the UTF-8 name found {names}")
                # The same mailbox, seen by a client that did not enable UTF-8: in modified
                # UTF-7, the convention RFC 3501 §5.1.3 gives it.
                mark = len(legacy.transcript.entries)
                seen_legacy = await legacy.list("", name)
                wire = _received_since(legacy, mark)
                check("IMAP-UTF8-NAMES",
                      seen_legacy.ok and name.replace(WORD, WORD_MUTF7).encode() in wire,
                      f"LIST by a client without UTF-8 did not show {WORD_MUTF7!r}: {wire[:200]!r}")
            finally:
                await cleanup(legacy, name)

    run(scenario())


@pytest.mark.requirement("IMAP-UTF8-BAD-UTF8")
def test_imap_utf8_malformed_utf8_is_bad(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with _enabled(target, evidence) as client:
            name = f"x\xc3\x28-{token()}".encode("latin-1")  # C3 28: a lead octet, no trail
            tagged, _ = await raw(client, b'CREATE "' + name + b'"')
            try:
                # RFC 6855 §3: "the server MUST reject, with a "BAD" response, any octet
                # sequences with the high bit set that fail to comply with the formal syntax
                # requirements of UTF-8".
                check("IMAP-UTF8-BAD-UTF8", tagged is not None and tagged.status == "BAD",
                      f"CREATE with malformed UTF-8 answered "
                      f"{tagged.status if tagged else 'nothing: the connection closed'}")
                noop = await client.noop()
                check("IMAP-UTF8-BAD-UTF8", noop.ok, f"NOOP after the BAD answered {noop.status}")
            finally:
                if tagged is not None and tagged.status == "OK":
                    await raw(client, b'DELETE "' + name + b'"')

    run(scenario())


@pytest.mark.requirement("IMAP-UTF8-APPEND")
def test_imap_utf8_append_data_extension(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with _enabled(target, evidence) as client, scratch(client) as name:
            data = _utf8_message(token())
            await _append_utf8(client, name, data, "IMAP-UTF8-APPEND")
            await select(client, name)
            fetched = await client.command("FETCH 1 (BODY.PEEK[])")
            bodies = [r.items.get("BODY[]") for r in fetched.untagged if isinstance(r, Fetch)]
            check("IMAP-UTF8-APPEND", fetched.ok and bodies == [data],
                  f"BODY[] of the message appended with UTF8 is not its octets: {bodies!r:.200}")

    run(scenario())


@pytest.mark.requirement("IMAP-UTF8-APPEND-LEGACY")
def test_imap_utf8_append_refused_without_enable(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with session(target, evidence) as client, scratch(client) as name:
            await _offered(client)
            result = await client.append(name, _utf8_message(token()))
            # RFC 6855 §4: "If an IMAP server supports "UTF8=ACCEPT" and the IMAP client has
            # not issued the "ENABLE UTF8=ACCEPT" command, the server MUST reject, with a "NO"
            # response, an "APPEND" command that includes any 8-bit character in message
            # header fields."
            check("IMAP-UTF8-APPEND-LEGACY", result.status == "NO",
                  f"APPEND of 8-bit header fields without ENABLE UTF8=ACCEPT answered {result.status}")
            status = await client.command(f"STATUS {mbox(name)} (MESSAGES)")
            counts = [r.items.get("MESSAGES") for r in status.untagged if isinstance(r, Status)]
            check("IMAP-UTF8-APPEND-LEGACY", status.ok and counts == [0],
                  f"after the refused APPEND the mailbox holds {counts} messages")

    run(scenario())


@pytest.mark.requirement("IMAP-UTF8-SEARCH")
def test_imap_utf8_search_string_without_charset(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with _enabled(target, evidence) as client, scratch(client) as name:
            await _append_utf8(client, name, _utf8_message(token()))
            await select(client, name)
            found, seen = await raw(client, b"SEARCH SUBJECT " + _quoted(f"{WORD} aus Köln"))
            numbers = [n for r in seen if isinstance(r, Search) for n in r.numbers]
            # RFC 6855 §3: "When the IMAP server supports "UTF8=ACCEPT", it supports UTF-8 in
            # quoted-strings"; "the client MAY use extended quoted syntax with any IMAP
            # argument that permits a string" (a search key's string, RFC 9051 §6.4.4).
            check("IMAP-UTF8-SEARCH", found is not None and found.status == "OK" and numbers == [1],
                  f"SEARCH SUBJECT with a UTF-8 quoted string answered "
                  f"{found.status if found else 'nothing'} with {numbers}")

    run(scenario())


@pytest.mark.requirement("IMAP-UTF8-SEARCH-CHARSET")
def test_imap_utf8_search_with_charset_is_bad(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with _enabled(target, evidence) as client, scratch(client) as name:
            await select(client, name)
            tagged, _ = await raw(client, b'SEARCH CHARSET UTF-8 SUBJECT "x"')
            # RFC 6855 §3: after ENABLE UTF8=ACCEPT a client "MUST NOT issue a "SEARCH" command
            # that contains a charset specification.  If an IMAP server receives such a
            # "SEARCH" command in that situation, it SHOULD reject the command with a "BAD"
            # response".
            check("IMAP-UTF8-SEARCH-CHARSET", tagged is not None and tagged.status == "BAD",
                  f"SEARCH CHARSET UTF-8 after ENABLE UTF8=ACCEPT answered "
                  f"{tagged.status if tagged else 'nothing: the connection closed'}")

    run(scenario())


@pytest.mark.requirement("IMAP-UTF8-QUOTED", "IMAP-UTF8-NO-RAW-HEADERS")
def test_imap_utf8_headers_to_a_client_without_utf8(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with _enabled(target, evidence) as client, scratch(client) as name, \
                session(target, evidence) as legacy:
            await _append_utf8(client, name, _utf8_message(token()))
            selected = await select(legacy, name)
            mark = len(legacy.transcript.entries)
            fetched = await legacy.command("FETCH 1:* (ENVELOPE)")
            wire = _received_since(legacy, mark)
            strings = _envelope_strings(wire)
            precondition(fetched.ok and (strings or selected.exists == 0),
                         f"FETCH ENVELOPE answered {fetched.status} with no ENVELOPE")
            quoted8 = [v for kind, v in strings if kind == "quoted" and any(b > 0x7F for b in v)]
            # RFC 6855 §3: "The IMAP server MUST NOT send UTF-8 in quoted-strings to the client
            # unless the client has indicated support for that syntax by using the "ENABLE
            # UTF8=ACCEPT" command."
            check("IMAP-UTF8-QUOTED", not quoted8,
                  f"quoted strings with 8-bit octets in ENVELOPE to a client without UTF-8: {quoted8}")
            raw8 = [v for _, v in strings if any(b > 0x7F for b in v)]
            # RFC 6855 §7: for such a client "choices available to the server include hiding
            # the problematic message(s), creating in-band or out-of-band notifications or
            # error messages, or somehow trying to create a surrogate of the message".
            check("IMAP-UTF8-NO-RAW-HEADERS", not raw8,
                  f"ENVELOPE strings with raw UTF-8 to a client without UTF-8: {raw8}")

    run(scenario())
