"""IMAP in depth — CATENATE (RFC 4469): a message built by APPEND from TEXT literals and URLs of
messages and sections on the same server (RFC 5092 relative URLs), and BADURL.

The tests run where the server advertises CATENATE; they are skipped elsewhere.
"""

from __future__ import annotations

import pytest

from harness.clients.imap import IMAPClient
from harness.protocol.imap.commands import AppendMessage, CatPart
from harness.protocol.imap.responses import Fetch
from harness.suite import Evidence, check, need, precondition, run, token
from harness.targets import Target
from suites.imap.imap_helpers import (
    append,
    fetch_uid,
    flags_of,
    message,
    message_count,
    multipart,
    only_uid,
    scratch,
    select,
    session,
)

pytestmark = pytest.mark.step(9)


def _need_catenate(client: IMAPClient) -> None:
    need("CATENATE" in client.capabilities, "the server does not advertise CATENATE")


def _text(data: bytes) -> CatPart:
    return CatPart("TEXT", data)


def _url(url: str) -> CatPart:
    return CatPart("URL", url.encode("utf-8"))


async def _bodies(client: IMAPClient, name: str) -> list[bytes]:
    """BODY[] of every message of mailbox *name*, in UID order (selects it)."""
    await select(client, name)
    result = await client.command("UID FETCH 1:* (UID BODY.PEEK[])")
    precondition(result.ok, f"UID FETCH 1:* answered {result.status}")
    found: dict[int, bytes] = {}
    for r in result.untagged:
        if not isinstance(r, Fetch):
            continue
        uid, body = r.items.get("UID"), r.items.get("BODY[]")
        if isinstance(uid, int) and isinstance(body, bytes):
            found[uid] = body
    return [found[u] for u in sorted(found)]


async def _source(client: IMAPClient, mailbox: str, data: bytes) -> tuple[int, int]:
    """Append the message URLs will name and select its mailbox: (UIDVALIDITY, UID)."""
    await append(client, mailbox, data)
    selected = await select(client, mailbox)
    return selected.uidvalidity, await only_uid(client)


@pytest.mark.requirement("IMAP-CATENATE-TEXT")
def test_imap_catenate_text_parts(target: Target, evidence: Evidence) -> None:
    whole = message(token())
    head, _, body = whole.partition(b"\r\n\r\n")
    parts = (head + b"\r\n\r\n", body[:10], body[10:])

    async def scenario() -> None:
        async with session(target, evidence) as client, scratch(client) as name:
            _need_catenate(client)
            result = await client.append_messages(name, [AppendMessage(
                ("\\Seen",), None, b"", tuple(_text(p) for p in parts))])
            # RFC 4469 §3: "The APPEND command concatenates all the message parts and appends
            # them as a new message"; "If a message literal is specified (indicated by "TEXT"),
            # the octets following the count are appended."
            check("IMAP-CATENATE-TEXT", result.ok,
                  f"APPEND CATENATE of three TEXT parts answered {result.status}")
            got = await _bodies(client, name)
            check("IMAP-CATENATE-TEXT", got == [whole],
                  f"the mailbox holds {len(got)} messages; BODY[] "
                  f"{'is' if got == [whole] else 'is not'} the three parts joined: "
                  f"{got[-1][-60:] if got else b''!r}")
            if "MULTIAPPEND" not in client.capabilities:
                return
            # RFC 4469 §1: "The CATENATE extension can also coexist with the MULTIAPPEND
            # extension [3] to APPEND multiple messages in a single command."
            second = message(token())
            result = await client.append_messages(name, [
                AppendMessage((), None, second),
                AppendMessage((), None, b"", tuple(_text(p) for p in parts))])
            check("IMAP-CATENATE-TEXT", result.ok,
                  f"MULTIAPPEND of a literal and a CATENATE answered {result.status}")
            got = await _bodies(client, name)
            check("IMAP-CATENATE-TEXT", got == [whole, second, whole],
                  f"after the MULTIAPPEND the mailbox holds {len(got)} messages, not the "
                  f"literal then the catenated message")

    run(scenario())


@pytest.mark.requirement("IMAP-CATENATE-URL")
def test_imap_catenate_url_parts(target: Target, evidence: Evidence) -> None:
    source = multipart(token())

    async def scenario() -> None:
        async with session(target, evidence) as client, scratch(client) as src, \
                scratch(client) as dst:
            _need_catenate(client)
            validity, uid = await _source(client, src, source)
            items = await fetch_uid(client, uid, "(BODY.PEEK[] BODY.PEEK[HEADER] "
                                    "BODY.PEEK[1.MIME] BODY.PEEK[1] BODY.PEEK[2])")
            pieces = {k: items.get(f"BODY[{k}]") for k in ("", "HEADER", "1.MIME", "1", "2")}
            precondition(all(isinstance(v, bytes) for v in pieces.values()),
                         f"FETCH of the source's sections returned {sorted(items)}")
            await client.command("CLOSE")
            base = f"/{src};UIDVALIDITY={validity}/;UID={uid}"
            # RFC 4469 §3: "the octets of the body part pointed to by that URL are appended,
            # as if the literal returned in a FETCH BODY response were put in place of the
            # message part specifier"; relative URLs only, base "imap://user@server/". RFC
            # 5092 makes ";UIDVALIDITY=" optional; the RFC 4469 examples spell ";section=".
            cases: list[tuple[str, tuple[CatPart, ...], bytes]] = [
                ("the whole message", (_url(base),), pieces[""]),
                ("header, TEXT, 1.MIME and 1",
                 (_url(base + "/;SECTION=HEADER"), _text(b"--b1\r\n"),
                  _url(base + "/;SECTION=1.MIME"), _url(base + "/;SECTION=1"),
                  _text(b"\r\n--b1--\r\n")),
                 pieces["HEADER"] + b"--b1\r\n" + pieces["1.MIME"] + pieces["1"]
                 + b"\r\n--b1--\r\n"),
                ("no UIDVALIDITY, lower-case section",
                 (_url(f"/{src}/;UID={uid}/;section=HEADER"), _url(f"/{src}/;UID={uid}/;section=2")),
                 pieces["HEADER"] + pieces["2"]),
                # An irelative-path (no leading "/") against the base "imap://user@server/",
                # and RFC 5092's ";PARTIAL=" of a section.
                ("a relative path, a partial section",
                 (_url(f"{src}/;UID={uid}/;SECTION=HEADER"),
                  _url(f"{src}/;UID={uid}/;SECTION=1/;PARTIAL=0.5")),
                 pieces["HEADER"] + pieces["1"][:5]),
            ]
            for what, cat, expected in cases:
                result = await client.append_messages(dst, [AppendMessage((), None, b"", cat)])
                check("IMAP-CATENATE-URL", result.ok,
                      f"APPEND CATENATE ({what}) answered {result.status} {result.code}")
                got = await _bodies(client, dst)
                check("IMAP-CATENATE-URL", bool(got) and got[-1] == expected,
                      f"CATENATE ({what}) made {got[-1][:80] if got else None!r}, not the "
                      f"FETCH BODY[...] octets of the URLs")
                await client.command("CLOSE")
            await select(client, src)
            flags = flags_of(await fetch_uid(client, uid, "(FLAGS)"))
            # "The APPEND command does not cause the \Seen flag to be set for any catenated
            # body part."
            check("IMAP-CATENATE-URL", "\\Seen" not in flags,
                  f"the source message has FLAGS {sorted(flags)} after being catenated")

    run(scenario())


@pytest.mark.requirement("IMAP-CATENATE-BADURL")
def test_imap_catenate_bad_url_appends_nothing(target: Target, evidence: Evidence) -> None:
    source = message(token())

    async def scenario() -> None:
        async with session(target, evidence) as client, scratch(client) as src, \
                scratch(client) as dst:
            _need_catenate(client)
            validity, uid = await _source(client, src, source)
            await client.command("CLOSE")
            good = f"/{src};UIDVALIDITY={validity}/;UID={uid}"
            bad_urls = [
                f"/{src};UIDVALIDITY={validity}/;UID={uid + 1000}",  # no such UID
                f"/{src};UIDVALIDITY={validity}/;UID=x{uid}",  # bad syntax
                f"/{token()}/;UID={uid}",  # no such mailbox
            ]
            for bad in bad_urls:
                result = await client.append_messages(dst, [AppendMessage(
                    (), None, b"", (_text(b"X-Head: 1\r\n\r\n"), _url(good + "/;SECTION=TEXT"),
                                    _url(bad), _text(b"end\r\n")))])
                code = result.code.name if result.code else None
                value = str(result.code.value).strip() if result.code else None
                # RFC 4469 §4.1: "The BADURL response code is returned if the APPEND fails to
                # process one of the specified URLs.  Possible reasons for this are bad URL
                # syntax, unrecognized URL schema, invalid message UID, or invalid body part.
                # The BADURL response code contains the first URL specified as a parameter to
                # the APPEND command that has caused the operation to fail."
                check("IMAP-CATENATE-BADURL", (result.status, code) == ("NO", "BADURL"),
                      f"APPEND CATENATE with URL {bad!r} answered {result.status} [{code}]")
                check("IMAP-CATENATE-BADURL", value == bad,
                      f"BADURL names {value!r}, not the failing URL {bad!r}")
                held = await message_count(client, dst)
                check("IMAP-CATENATE-BADURL", held == 0,
                      f"after a failed CATENATE the mailbox holds {held} messages")
            if "MULTIAPPEND" not in client.capabilities:
                return
            # With MULTIAPPEND: a good literal, then a CATENATE that fails — RFC 3502 §6.3.11
            # "no partial appending is permitted".
            result = await client.append_messages(dst, [
                AppendMessage((), None, message(token())),
                AppendMessage((), None, b"", (_url(bad_urls[0]),))])
            code = result.code.name if result.code else None
            check("IMAP-CATENATE-BADURL", (result.status, code) == ("NO", "BADURL"),
                  f"MULTIAPPEND with a bad CATENATE URL answered {result.status} [{code}]")
            held = await message_count(client, dst)
            check("IMAP-CATENATE-BADURL", held == 0,
                  f"after a failed MULTIAPPEND with CATENATE the mailbox holds {held} messages")

    run(scenario())
