"""Hostile input (RFC 5321 §3.8, §7.8): too many errors end the session with 421; one hostile session does not block others."""

from __future__ import annotations

import asyncio
import time

import pytest

from harness.clients.smtp import SMTPConnectionClosed
from harness.protocol.smtp import Reply
from harness.suite import (
    Evidence,
    account,
    check,
    make_message,
    need,
    open_mx_plain,
    open_submission,
    run,
    token,
)
from harness.targets import Target

pytestmark = pytest.mark.step(1)

#: Erroneous commands the error-limit check sends at most, in pipelined batches.
MAX_ERRORS = 100
BATCH = 10
#: How long the hostile session trickles its endless line at most.
HOSTILE_FOR = 3.0


async def _errors_until_cut_off(target: Target, evidence: Evidence) -> tuple[list[int], bool]:
    client = await open_submission(target, evidence, login=False)
    codes: list[int] = []
    try:
        while len(codes) < MAX_ERRORS:
            lines = ["RCPT TO:<x@example.com>", "DATA"] * (BATCH // 2)
            try:
                await client.send_raw("".join(f"{line}\r\n" for line in lines).encode())
                for _ in lines:
                    codes.append((await client.read_reply(5.0)).code)
            except SMTPConnectionClosed:
                return codes, True
        return codes, False
    finally:
        await client.close()


@pytest.mark.requirement("SMTP-ERROR-LIMIT")
def test_smtp_too_many_errors_cut_off(target: Target, evidence: Evidence) -> None:
    codes, closed = run(_errors_until_cut_off(target, evidence))
    # RFC 5321 §7.8: "it would be reasonable for the server to close the connection after
    # generating an appropriate number of 5yz (normally 550) replies."
    # A MAY: shown as offered or not offered, never red.
    check("SMTP-ERROR-LIMIT", closed, f"the server answered {len(codes)} erroneous commands and kept the session open")


@pytest.mark.requirement("SMTP-CLOSE-421")
def test_smtp_cut_off_only_after_421(target: Target, evidence: Evidence) -> None:
    codes, closed = run(_errors_until_cut_off(target, evidence))
    need(closed, f"the server did not close the session within {MAX_ERRORS} errors")
    # RFC 5321 §3.8: "An SMTP server MUST NOT intentionally close the connection under normal
    # operational circumstances (see Section 7.8) except: ... After detecting the need to shut down
    # the SMTP service and returning a 421 response code."
    check("SMTP-CLOSE-421", bool(codes) and codes[-1] == 421,
          f"the server closed after {len(codes)} replies; the last was {codes[-1:]}, not 421")


@pytest.mark.requirement("SMTP-HOSTILE-SESSION")
@pytest.mark.step(6)
def test_smtp_hostile_session_does_not_block_others(target: Target, evidence: Evidence) -> None:
    rcpt = account(target.receiver)
    mark = token()
    message = make_message(sender="someone@example.com", recipient=rcpt.address,
                           subject="while under attack", body="Still serving?\r\n", mark=mark)

    async def scenario() -> tuple[Reply | None, float, int]:
        hostile = await open_mx_plain(target, evidence, target.receiver)
        done = asyncio.Event()
        sent = 0

        async def trickle() -> None:
            nonlocal sent
            deadline = time.monotonic() + HOSTILE_FOR
            await hostile.send_raw(b"NOOP ")
            try:
                while not done.is_set() and time.monotonic() < deadline:
                    await hostile.send_raw(b"x" * 64)
                    sent += 64
                    try:
                        await asyncio.wait_for(done.wait(), 0.05)
                    except TimeoutError:
                        pass
            except SMTPConnectionClosed:
                pass  # cutting the hostile session off is a fine answer

        async def good() -> Reply | None:
            try:
                async with asyncio.timeout(HOSTILE_FOR - 0.5):
                    client = await open_mx_plain(target, evidence, target.receiver)
                    try:
                        result = await client.send_message("someone@example.com", [rcpt.address], message)
                        await client.quit()
                        return result.data
                    finally:
                        await client.close()
            except TimeoutError:
                return None
            finally:
                done.set()

        started = time.monotonic()
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(trickle())
                served = group.create_task(good())
        finally:
            await hostile.close()
        return served.result(), time.monotonic() - started, sent

    data, took, sent = run(scenario())
    evidence.note(f"the hostile session trickled {sent} octets of one line meanwhile")
    # RFC 5321 §7.8: servers may defend themselves against denial of service; one session that
    # never ends its line must not keep the server from serving the others.
    check("SMTP-HOSTILE-SESSION", data is not None,
          f"a second session was not served within {took:.1f} s while one session trickled an endless line")
    assert data is not None
    check("SMTP-HOSTILE-SESSION", data.code == 250, f"the second session's message was answered {data.code}")
