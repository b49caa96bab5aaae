"""Waiting for a message to arrive in a mailbox: IMAP IDLE when offered, NOOP polling otherwise."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable

from harness.clients.imap import IMAPClient, IMAPClientError, IMAPTimeout
from harness.protocol.errors import ProtocolError
from harness.protocol.imap.responses import (
    STATUS_PREAUTH,
    Exists,
    Response,
    Tagged,
    UntaggedStatus,
)

#: Seconds between two NOOPs when the server has no IDLE.
POLL_INTERVAL = 0.5
#: Seconds before IDLE is ended, the mailbox re-checked and IDLE re-issued. RFC 2177 §3 only
#: asks for "at least every 29 minutes"; a short period also catches a message some servers
#: fail to announce because it arrived while the mailbox was being selected.
IDLE_RESTART = 5.0
#: Seconds allowed for LOGOUT when the wait is over.
LOGOUT_TIMEOUT = 5.0


async def fetch_all(client: IMAPClient, *, since_uid: int = 0) -> list[tuple[int, bytes]]:
    """(uid, message) of each message of the selected mailbox whose UID is above *since_uid*,
    in UID order, fetched with BODY.PEEK[] (so \\Seen is not set)."""
    result, items = await client.fetch(f"{since_uid + 1}:*", "(UID BODY.PEEK[])", uid=True)
    if not result.ok:
        raise IMAPClientError(f"UID FETCH failed: {result.status} {result.text}")
    found: list[tuple[int, bytes]] = []
    for data in items.values():
        uid = data.get("UID")
        body = data.get("BODY[]")
        # "n:*" includes the last message even when its UID is below n (RFC 9051 §9 seq-range).
        if isinstance(uid, int) and uid > since_uid and isinstance(body, bytes):
            found.append((uid, body))
    found.sort(key=lambda pair: pair[0])
    return found


def _saw_exists(responses: tuple[Response, ...]) -> bool:
    return any(isinstance(r, Exists) for r in responses)


async def _session(
    client: IMAPClient,
    user: str,
    password: str,
    match: Callable[[bytes], bool],
    mailbox: str,
    starttls_context: ssl.SSLContext | None,
) -> tuple[int, bytes]:
    if starttls_context is not None and not client.is_tls:
        if not client.capabilities:
            await client.capability()
        if "STARTTLS" in client.capabilities:
            started = await client.starttls(starttls_context)
            if not started.ok:
                raise IMAPClientError(f"STARTTLS refused: {started.status} {started.text}")
    preauth = isinstance(client.greeting, UntaggedStatus) and (
        client.greeting.status == STATUS_PREAUTH
    )
    if not preauth:
        login = await client.login(user, password)
        if not login.ok:
            raise IMAPClientError(f"LOGIN as {user!r} failed: {login.status} {login.text}")
    if not client.capabilities:
        await client.capability()
    selected = await client.select(mailbox)
    if not selected.result.ok:
        raise IMAPClientError(
            f"SELECT {mailbox!r} failed: {selected.result.status} {selected.result.text}"
        )
    last_uid = 0
    check_needed = selected.exists > 0
    use_idle = "IDLE" in client.capabilities
    while True:
        if check_needed:
            for uid, body in await fetch_all(client, since_uid=last_uid):
                last_uid = max(last_uid, uid)
                if match(body):
                    return uid, body
            check_needed = False
        if use_idle:
            # RFC 2177 §3: new mail is announced by an untagged EXISTS while idling.
            async with client.idle() as idle:
                while not check_needed:
                    response = await idle.wait(IDLE_RESTART)
                    if response is None or isinstance(response, Tagged):
                        check_needed = True  # look again, then re-issue IDLE
                        break
                    check_needed = isinstance(response, Exists)
        else:
            noop = await client.noop()
            check_needed = _saw_exists(noop.untagged)
            if not check_needed:
                await asyncio.sleep(POLL_INTERVAL)


async def _logout(client: IMAPClient) -> None:
    try:
        async with asyncio.timeout(LOGOUT_TIMEOUT):
            if not client.closed:
                await client.logout()
    except (IMAPClientError, ProtocolError, OSError, TimeoutError):
        pass  # the wait is over either way; the transcript shows what happened
    finally:
        await client.close()


async def wait_for_message(
    connect: Callable[[], Awaitable[IMAPClient]],
    user: str,
    password: str,
    match: Callable[[bytes], bool],
    *,
    timeout: float,  # noqa: ASYNC109 - the documented API; used with asyncio.timeout
    mailbox: str = "INBOX",
    starttls_context: ssl.SSLContext | None = None,
) -> tuple[int, bytes]:
    """Log in, select *mailbox*, and return (uid, message) of the first message for which
    *match* is true, already there or arriving within *timeout* seconds (IDLE when the server
    offers it, else NOOP every POLL_INTERVAL). Raises TimeoutError naming the mailbox and the
    timeout; always logs out and closes the connection it opened."""
    client: IMAPClient | None = None
    try:
        try:
            async with asyncio.timeout(timeout):
                client = await connect()
                return await _session(client, user, password, match, mailbox, starttls_context)
        except TimeoutError as exc:
            if isinstance(exc, IMAPTimeout):
                raise  # the server stopped answering: not the same as "no such message"
            raise TimeoutError(
                f"no matching message in mailbox {mailbox!r} within {timeout:g} s"
            ) from None
    finally:
        if client is not None:
            await _logout(client)
