"""IMAP in depth — bad input: malformed commands, literals over the limit, endless lines, password
guessing, a client vanishing mid-APPEND."""

from __future__ import annotations

import asyncio
import time

import pytest

from harness.clients.imap import IMAPConnectionClosed
from harness.protocol.imap.responses import Continuation, Status, Tagged, UntaggedStatus
from harness.suite import Evidence, account, imap_connector, need, run, token
from harness.targets import Target
from suites.imap.imap_helpers import mbox, next_raw_tag, raw, scratch, session

pytestmark = pytest.mark.step(9)

MALFORMED: tuple[bytes, ...] = (
    b"FROBNICATE", b"SELECT", b"LOGIN", b"UID NOPE 1", b"FETCH", b'CREATE "unterminated',
    b"STATUS INBOX (NOSUCHITEM)", b"LIST", b"APPEND", b"SEARCH NOSUCHKEY", b"\xff\xfe",
    b"NOOP extra arguments", b"CAPABILITY (",
)


@pytest.mark.requirement("IMAP-BAD-COMMAND")
def test_imap_malformed_commands_get_bad(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[list[tuple[bytes, str | None]], str]:
        async with session(target, evidence) as client:
            answers = []
            for line in MALFORMED:
                tagged, _ = await raw(client, line)
                answers.append((line, tagged.status if tagged else None))
                if tagged is None:
                    return answers, "closed"
            return answers, (await client.noop()).status

    answers, after = run(scenario())
    # RFC 9051 §7.1.3: "The BAD response indicates an error message from the server.  When
    # tagged, it reports a protocol-level error in the client's command"; the session goes on.
    wrong = [(line, status) for line, status in answers if status != "BAD"]
    assert not wrong, f"not answered BAD: {wrong}"
    assert after == "OK", f"NOOP after the malformed commands answered {after}"


@pytest.mark.requirement("IMAP-TOOBIG")
def test_imap_huge_literal_refused_unread(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[str, str | None]:
        async with session(target, evidence) as client, scratch(client) as name:
            tag = next_raw_tag()
            await client.send_raw(f"{tag} APPEND {mbox(name)} {{4000000000}}\r\n".encode())
            try:
                first = await client.read_response(10.0)
            except IMAPConnectionClosed:
                return "closed", None
            if isinstance(first, Continuation):
                await client.close()
                return "continuation", None
            if isinstance(first, Tagged):
                return first.status, first.code.name if first.code else None
            if isinstance(first, UntaggedStatus):
                return first.status, first.code.name if first.code else None
            return type(first).__name__, None

    answer, code = run(scenario())
    # RFC 9051 §7.1 TOOBIG / RFC 7888 §4: a server refuses a literal it will not accept instead
    # of asking for its octets: with a synchronizing literal the client waits for "+", which
    # must not come.
    assert answer != "continuation", "the server asked for the octets of a 4 GB literal"
    assert answer in ("NO", "BAD", "BYE", "closed"), f"a 4 GB literal was answered {answer}"


@pytest.mark.requirement("IMAP-LINE-LIMIT")
def test_imap_endless_line_cut_off(target: Target, evidence: Evidence) -> None:
    async def scenario() -> str:
        async with session(target, evidence) as client:
            tag = next_raw_tag()
            # SELECT reads its argument (some servers never read the arguments of NOOP).
            await client.send_raw(tag.encode() + b" SELECT " + b"A" * (512 * 1024))
            try:
                response = await client.read_response(5.0)
            except IMAPConnectionClosed:
                return "closed"
            if isinstance(response, Tagged | UntaggedStatus):
                if response.status == "BAD":
                    await client.send_raw(b"\r\n")  # end the refused line; LOGOUT follows
                return response.status
            return type(response).__name__

    answer = run(scenario())
    # RFC 9051 §11.7: servers protect themselves from clients that send unbounded data; a line
    # far past any sane limit is refused (BAD, or BYE and close) before its end comes.
    assert answer in ("BAD", "BYE", "closed"), f"half a megabyte without CRLF: {answer}"


@pytest.mark.requirement("IMAP-AUTH-DELAY")
def test_imap_failed_logins_slowed(target: Target, evidence: Evidence) -> None:
    acct = account(target.receiver)

    async def scenario() -> tuple[float, float]:
        client = await imap_connector(target, evidence, target.receiver)()
        try:
            if not client.is_tls:
                need("STARTTLS" in client.capabilities, "IMAP offers neither TLS nor STARTTLS")
                assert (await client.starttls(target.client_ssl_context())).ok
            failed = 0.0
            for _ in range(2):
                started = time.monotonic()
                result = await client.login(acct.user, acct.password + "-wrong")
                failed = time.monotonic() - started
                assert result.status == "NO", f"wrong password answered {result.status}"
            started = time.monotonic()
            result = await client.login(acct.user, acct.password)
            assert result.ok, f"the right password answered {result.status} after two failures"
            return failed, time.monotonic() - started
        finally:
            await client.close()

    failed, succeeded = run(scenario())
    # RFC 9051 §11.7: "A server SHOULD have mechanisms in place to limit or delay failed
    # AUTHENTICATE/LOGIN attempts."  Measured against the time a good password takes.
    assert failed >= succeeded + 0.2, (
        f"the second failed LOGIN took {failed:.3f} s, a good one {succeeded:.3f} s: no delay")


@pytest.mark.requirement("IMAP-APPEND-ATOMIC")
def test_imap_vanished_append_leaves_nothing(target: Target, evidence: Evidence) -> None:
    async def scenario() -> list[object]:
        async with session(target, evidence) as client, scratch(client) as name:
            writer = await imap_connector(target, evidence, target.receiver)()
            acct = account(target.receiver)
            if not writer.is_tls:
                assert (await writer.starttls(target.client_ssl_context())).ok
            assert (await writer.login(acct.user, acct.password)).ok
            tag = next_raw_tag()
            await writer.send_raw(f"{tag} APPEND {mbox(name)} {{1000}}\r\n".encode())
            assert isinstance(await writer.read_response(10.0), Continuation)
            await writer.send_raw(f"Subject: cut short {token()}\r\n\r\n".encode() + b"x" * 400)
            await writer.close()
            counts: list[object] = []
            # Proving an absence takes a wait: look a few times while the server sees the close.
            for _ in range(5):
                result = await client.command(f"STATUS {mbox(name)} (MESSAGES)")
                counts += [r.items.get("MESSAGES") for r in result.untagged
                           if isinstance(r, Status)]
                await asyncio.sleep(0.1)
            return counts

    counts = run(scenario())
    # RFC 9051 §6.3.12: "If the append is unsuccessful for any reason, the mailbox MUST be
    # restored to its state before the APPEND attempt ...; no partial appending is permitted."
    assert counts and all(c == 0 for c in counts), f"MESSAGES after the cut APPEND: {counts}"
