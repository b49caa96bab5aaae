"""Command results and handler type of the IMAP server; the connection states and their table
are the core's (``harness.protocol.imap.state``), imported here for the handlers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from harness.protocol.imap.commands import Command
from harness.protocol.imap.state import TRANSITIONS, State, Transition, next_state

__all__ = [
    "MAX_AUTH_FAILURES", "TRANSITIONS", "Handler", "Result", "State", "Transition", "next_state",
]

if TYPE_CHECKING:
    from reference_agents.imapd.context import HandlerContext


@dataclass(frozen=True, slots=True)
class Result:
    """The tagged completion of a command: OK, NO or BAD, with an optional response code."""

    status: str
    text: str
    code: str | None = None


#: A command handler; None means it wrote its own tagged response.
Handler: TypeAlias = "Callable[[HandlerContext, Command], Awaitable[Result | None]]"

#: RFC 9051 §6.2.3 recommends slowing down guessing; the connection closes after this many.
MAX_AUTH_FAILURES = 5
