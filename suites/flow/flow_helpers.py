"""Waiting for a test's message where it may land, for flow tests that judge its arrival."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from harness.checks import is_server_error
from harness.clients.imap import IMAPClientError
from harness.suite import Evidence, precondition, wait_delivery
from harness.targets import ProviderTarget, Target


@dataclass(frozen=True, slots=True)
class Place:
    """A mailbox of one account of *provider* where a message may arrive."""

    provider: ProviderTarget
    account_index: int = 0
    mailbox: str = "INBOX"

    def shown(self) -> str:
        return f"{self.provider.accounts[self.account_index].address} {self.mailbox}"


@dataclass(frozen=True, slots=True)
class Arrival:
    """Where the marked message was found, its UID there and its bytes."""

    place: Place
    uid: int
    data: bytes


async def arrival(
    target: Target, evidence: Evidence, provider: ProviderTarget, mark: str, *,
    mailbox: str = "INBOX", account_index: int = 0,
) -> Arrival | None:
    """The message carrying *mark* in *mailbox*, or None when it does not arrive within the
    target's delivery timeout."""
    return await first_arrival(target, evidence, [Place(provider, account_index, mailbox)], mark)


async def first_arrival(
    target: Target, evidence: Evidence, places: Sequence[Place], mark: str
) -> Arrival | None:
    """Watch every place at once; the first one the message carrying *mark* reaches, or None
    when it reaches none of them within the target's delivery timeout. A place the server
    will not let the harness watch (LOGIN or SELECT refused) is a failed precondition, unless
    the message turns up in another."""
    tasks = {
        asyncio.ensure_future(wait_delivery(target, evidence, p.provider, mark,
                                            mailbox=p.mailbox, account_index=p.account_index)): p
        for p in places
    }
    pending = set(tasks)
    refused: list[str] = []
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                exc = task.exception()
                if exc is None:
                    uid, data = task.result()
                    return Arrival(tasks[task], uid, data)
                if isinstance(exc, IMAPClientError) and not is_server_error(exc):
                    refused.append(f"{tasks[task].shown()}: {exc}")
                    evidence.note(f"could not watch {refused[-1]}")
                elif not isinstance(exc, AssertionError):  # wait_delivery's "not in time"
                    raise exc
        precondition(not refused, f"could not watch {refused[0] if refused else ''}")
        return None
    finally:
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def readable(provider: ProviderTarget) -> bool:
    """Whether the harness can read *provider*'s mailboxes (it gives an IMAP endpoint)."""
    return provider.imap is not None or provider.imaps is not None


def waited(target: Target) -> str:
    """How long a test waited for a message, for the detail of its check."""
    return f"within {target.delivery_timeout:.0f} s"
