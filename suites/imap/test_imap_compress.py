"""IMAP in depth — COMPRESS=DEFLATE (RFC 4978 §3): the DEFLATE layer both ways, a second COMPRESS
refused, an unknown algorithm refused.

Skipped where the server does not advertise COMPRESS=DEFLATE after login. The client inflates
with raw DEFLATE (RFC 1951, no zlib header) and compresses its commands the same way; the
transcripts show the protocol text.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from harness.clients.imap import IMAPClient
from harness.protocol.errors import RemoteProtocolError
from harness.protocol.imap.responses import Fetch, List
from harness.suite import Evidence, check, need, run, token
from harness.targets import Target
from suites.imap.imap_helpers import append, message, scratch, select, session

pytestmark = pytest.mark.step(9)


@contextlib.asynccontextmanager
async def _session(target: Target, evidence: Evidence) -> AsyncIterator[IMAPClient]:
    """A logged-in session of a server that offers COMPRESS=DEFLATE (skipped elsewhere)."""
    async with session(target, evidence) as client:
        if not client.capabilities:
            await client.capability()
        need("COMPRESS=DEFLATE" in client.capabilities,
             "the server does not offer COMPRESS=DEFLATE (RFC 4978)")
        yield client


@pytest.mark.requirement("IMAP-COMPRESS")
def test_imap_compress_deflate_both_ways(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with _session(target, evidence) as client, scratch(client) as name:
            mark = token()
            body = "compressible line of text\r\n" * 200
            await append(client, name, message(mark, body=body))
            result = await client.compress("DEFLATE")
            # RFC 4978 §3: "OK The server will compress its responses and expects the client to
            # compress its commands."
            check("IMAP-COMPRESS", result.ok, f"COMPRESS DEFLATE answered {result.status}")
            try:
                # RFC 4978 §3: "the server MUST compress starting immediately after the CRLF
                # which ends the tagged OK response"; the stream is raw DEFLATE (§4: "The
                # windowBits value must be in the range -8 to -15, or else deflateInit2() uses
                # the wrong format").
                noop = await client.noop()
                check("IMAP-COMPRESS", noop.ok, f"NOOP through DEFLATE answered {noop.status}")
                listed = await client.list("", name)
                names = [r.mailbox for r in listed.untagged if isinstance(r, List)]
                check("IMAP-COMPRESS", listed.ok and names == [name],
                      f"LIST through DEFLATE answered {listed.status} with {names}")
                await select(client, name)
                fetched = await client.command("FETCH 1 (BODY.PEEK[TEXT])")
                texts = [r.items.get("BODY[TEXT]") for r in fetched.untagged
                         if isinstance(r, Fetch)]
                # make_message adds the mark to the body: the text holds *body* whole.
                check("IMAP-COMPRESS", fetched.ok and len(texts) == 1
                      and isinstance(texts[0], bytes) and body.encode() in texts[0],
                      f"FETCH BODY[TEXT] through DEFLATE answered {fetched.status}, "
                      f"{[len(t) if isinstance(t, bytes) else t for t in texts]} octets")
            except RemoteProtocolError as exc:
                check("IMAP-COMPRESS", False,
                      f"the responses after COMPRESS OK are not raw DEFLATE: {exc.message}")

    run(scenario())


@pytest.mark.requirement("IMAP-COMPRESS-ACTIVE")
def test_imap_compress_twice_is_refused(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with _session(target, evidence) as client:
            first = await client.compress("DEFLATE")
            need(first.ok, f"COMPRESS DEFLATE answered {first.status}: judged by IMAP-COMPRESS")
            second = await client.command("COMPRESS DEFLATE")
            code = second.code.name if second.code else None
            # RFC 4978 §3: "BAD ... or COMPRESS already active"; "If the server responds NO
            # because it knows that the same mechanism is active already ..., it MUST send
            # COMPRESSIONACTIVE as resp-text-code"; "If the server issues a BAD or NO response,
            # the server MUST NOT turn on compression" (a second layer).
            check("IMAP-COMPRESS-ACTIVE",
                  second.status == "BAD" or (second.status == "NO" and code == "COMPRESSIONACTIVE"),
                  f"a second COMPRESS DEFLATE answered {second.status} [{code}]")
            noop = await client.noop()
            check("IMAP-COMPRESS-ACTIVE", noop.ok,
                  f"NOOP after the refused second COMPRESS answered {noop.status}")

    run(scenario())


@pytest.mark.requirement("IMAP-COMPRESS-UNKNOWN")
def test_imap_compress_unknown_algorithm_is_bad(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with _session(target, evidence) as client:
            result = await client.command("COMPRESS X-MAILHARNESS-NONE")
            # RFC 4978 §3: "BAD Command unknown, invalid or unknown argument"; "If the server
            # issues a BAD or NO response, the server MUST NOT turn on compression."
            check("IMAP-COMPRESS-UNKNOWN", result.status == "BAD",
                  f"COMPRESS with an unknown algorithm answered {result.status}")
            noop = await client.noop()
            check("IMAP-COMPRESS-UNKNOWN", noop.ok and not client.compressed,
                  f"NOOP in clear after the refused COMPRESS answered {noop.status}")

    run(scenario())
