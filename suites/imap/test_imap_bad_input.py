"""IMAP in depth — bad input: malformed commands, literals over the limit, endless lines, password
guessing, a client vanishing mid-APPEND."""

from __future__ import annotations

import asyncio
import time

import pytest

from harness.clients.imap import IMAPClient, IMAPConnectionClosed, IMAPTimeout
from harness.protocol.imap.responses import (
    STATUS_BYE,
    Continuation,
    Response,
    Status,
    Tagged,
    UntaggedStatus,
)
from harness.suite import (
    Evidence,
    account,
    check,
    imap_connector,
    imap_secure,
    precondition,
    run,
    token,
)
from harness.targets import Target
from suites.imap.imap_helpers import mbox, next_raw_tag, scratch, session, until_tagged

pytestmark = pytest.mark.step(9)

MALFORMED: tuple[bytes, ...] = (
    b"FROBNICATE", b"SELECT", b"LOGIN", b"UID NOPE 1", b"FETCH", b'CREATE "unterminated',
    b"STATUS INBOX (NOSUCHITEM)", b"LIST", b"APPEND", b"SEARCH NOSUCHKEY", b"\xff\xfe",
    b"NOOP extra arguments", b"CAPABILITY (",
)


async def _answer(client: IMAPClient, line: bytes) -> tuple[Tagged | None, list[Response]]:
    """Send ``tag line`` CRLF; read until its tagged response. (None, responses) when the
    connection ended first, the responses including a BYE the server sent before closing,
    even one that came before the line could be sent."""
    tag = next_raw_tag()
    try:
        await client.send_raw(tag.encode("ascii") + b" " + line + b"\r\n")
    except IMAPConnectionClosed:
        pass  # closed already: what the server sent before is still to be read
    return await until_tagged(client, tag)


def _bye(seen: list[Response]) -> bool:
    return any(isinstance(r, UntaggedStatus) and r.status == STATUS_BYE for r in seen)


def _ended_by_bye(line: bytes, bye: bool, answered: int) -> None:
    """The session ended before *line* was answered, after *answered* malformed commands were
    answered BAD in it; *bye* tells whether the server sent BYE in it. RFC 9051 §3.4: the
    logout state can be entered "by unilateral action on the part of either the client or the
    server", and "A server SHOULD NOT unilaterally close the connection without first sending
    an untagged BYE response that contains the reason for doing so": a server may end a
    session that keeps sending bad commands (a defence, as RFC 5321 §7.8 allows an SMTP
    server), with BYE, but not instead of the BAD (RFC 9051 §2.2.2)."""
    check("IMAP-BAD-COMMAND", bye,
          f"the connection closed without BYE before {line!r} was answered "
          f"({answered} malformed commands answered BAD in the session)")
    check("IMAP-BAD-COMMAND", answered > 0,
          f"{line!r}, the first malformed command of a session, was answered BYE, not BAD")


@pytest.mark.requirement("IMAP-BAD-COMMAND")
def test_imap_malformed_commands_get_bad(target: Target, evidence: Evidence) -> None:
    """Every malformed command is answered BAD and the session goes on. A server may end a
    session with BYE after it has answered bad commands BAD; the commands left are then sent
    in a fresh session, where the first of them must be answered BAD."""

    async def scenario() -> None:
        pending = list(MALFORMED)
        while pending:
            async with session(target, evidence) as client:
                answered, bye = 0, False
                while pending:
                    tagged, seen = await _answer(client, pending[0])
                    bye = bye or _bye(seen)
                    if tagged is None:
                        _ended_by_bye(pending[0], bye, answered)
                        break
                    # RFC 9051 §2.2.2: "Any client command with a protocol syntax error,
                    # including (but not limited to) missing or extraneous spaces or arguments,
                    # SHOULD be rejected and the client given a BAD server completion response."
                    check("IMAP-BAD-COMMAND", tagged.status == "BAD",
                          f"{pending[0]!r} answered {tagged.status}, not BAD")
                    answered += 1
                    pending.pop(0)
                else:
                    # The session goes on: a good command after the bad ones still works.
                    tagged, seen = await _answer(client, b"NOOP")
                    if tagged is None:
                        _ended_by_bye(b"NOOP", bye or _bye(seen), answered)
                    else:
                        check("IMAP-BAD-COMMAND", tagged.status == "OK",
                              f"NOOP after {answered} malformed commands answered {tagged.status}")

    run(scenario())


@pytest.mark.requirement("IMAP-TOOBIG")
def test_imap_huge_literal_refused_unread(target: Target, evidence: Evidence) -> None:
    async def scenario() -> str:
        async with session(target, evidence) as client, scratch(client) as name:
            tag = next_raw_tag()
            await client.send_raw(f"{tag} APPEND {mbox(name)} {{4000000000}}\r\n".encode())
            try:
                first = await client.read_response(10.0)
            except IMAPConnectionClosed:
                return "closed"
            if isinstance(first, Continuation):
                await client.close()
                return "continuation"
            if isinstance(first, Tagged | UntaggedStatus):
                return first.status
            return type(first).__name__

    answer = run(scenario())
    # RFC 9051 §7.1 TOOBIG / RFC 7888 §4: a server refuses a literal it will not accept instead
    # of asking for its octets: with a synchronizing literal the client waits for "+", which
    # must not come.
    check("IMAP-TOOBIG", answer != "continuation", "the server asked for the octets of a 4 GB literal")
    check("IMAP-TOOBIG", answer in ("NO", "BAD", "BYE", "closed"), f"a 4 GB literal was answered {answer}")


@pytest.mark.requirement("IMAP-LINE-LIMIT")
def test_imap_endless_line_cut_off(target: Target, evidence: Evidence) -> None:
    async def scenario() -> str:
        async with session(target, evidence) as client:
            tag = next_raw_tag()
            try:
                # SELECT reads its argument (some servers never read the arguments of NOOP).
                await client.send_raw(tag.encode() + b" SELECT " + b"A" * (512 * 1024))
                response = await client.read_response(5.0)
            except IMAPConnectionClosed:
                return "closed"
            except IMAPTimeout:
                return "no answer within 5 s"
            if isinstance(response, Tagged | UntaggedStatus):
                if response.status == "BAD":
                    await client.send_raw(b"\r\n")  # end the refused line; LOGOUT follows
                return response.status
            return type(response).__name__

    answer = run(scenario())
    # RFC 9051 §11.7: servers protect themselves from clients that send unbounded data; a line
    # far past any sane limit is refused (BAD, or BYE and close) before its end comes.
    check("IMAP-LINE-LIMIT", answer in ("BAD", "BYE", "closed"),
          f"half a megabyte without CRLF: {answer}")


@pytest.mark.requirement("IMAP-AUTH-DELAY")
def test_imap_failed_logins_slowed(target: Target, evidence: Evidence) -> None:
    acct = account(target.receiver)

    async def scenario() -> tuple[float, float]:
        client = await imap_connector(target, evidence, target.receiver)()
        try:
            await imap_secure(client, target)
            failed = 0.0
            for _ in range(2):
                started = time.monotonic()
                result = await client.login(acct.user, acct.password + "-wrong")
                failed = time.monotonic() - started
                precondition(result.status == "NO", f"a wrong password answered {result.status}")
            started = time.monotonic()
            result = await client.login(acct.user, acct.password)
            precondition(result.ok, f"the right password answered {result.status} after two failures")
            return failed, time.monotonic() - started
        finally:
            await client.close()

    failed, succeeded = run(scenario())
    # RFC 9051 §11.7: "A server SHOULD have mechanisms in place to limit or delay failed
    # AUTHENTICATE/LOGIN attempts."  Measured against the time a good password takes.
    check("IMAP-AUTH-DELAY", failed >= succeeded + 0.2,
          f"the second failed LOGIN took {failed:.3f} s, a good one {succeeded:.3f} s: no delay")


@pytest.mark.requirement("IMAP-APPEND-ATOMIC")
def test_imap_vanished_append_leaves_nothing(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with session(target, evidence) as client, scratch(client) as name:
            writer = await imap_connector(target, evidence, target.receiver)()
            try:
                acct = account(target.receiver)
                if not writer.is_tls:
                    result = await writer.starttls(target.client_ssl_context())
                    precondition(result.ok, f"IMAP STARTTLS answered {result.status}")
                result = await writer.login(acct.user, acct.password)
                precondition(result.ok, f"IMAP LOGIN for {acct.user} answered {result.status}")
                tag = next_raw_tag()
                await writer.send_raw(f"{tag} APPEND {mbox(name)} {{1000}}\r\n".encode())
                ready = await writer.read_response(10.0)
                precondition(isinstance(ready, Continuation),
                             f"APPEND of a 1000-octet literal was answered {ready!r}, not '+'")
                await writer.send_raw(f"Subject: cut short {token()}\r\n\r\n".encode() + b"x" * 400)
            finally:
                await writer.close()
            counts: list[object] = []
            # Proving an absence takes a wait: look a few times while the server sees the close.
            for _ in range(5):
                result = await client.command(f"STATUS {mbox(name)} (MESSAGES)")
                precondition(result.ok, f"STATUS {name} (MESSAGES) answered {result.status}")
                counts += [r.items.get("MESSAGES") for r in result.untagged
                           if isinstance(r, Status)]
                await asyncio.sleep(0.1)
            precondition(counts, f"STATUS {name} (MESSAGES) sent no STATUS response")
            # RFC 9051 §6.3.12: "If the append is unsuccessful for any reason, the mailbox MUST
            # be restored to its state before the APPEND attempt ...; no partial appending is
            # permitted."
            check("IMAP-APPEND-ATOMIC", all(c == 0 for c in counts),
                  f"MESSAGES after an APPEND cut off mid-literal: {counts}")

    run(scenario())
