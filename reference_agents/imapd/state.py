"""IMAP connection states (RFC 9051 §3), their one transition table, and command results."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from harness.protocol.imap.commands import Command

if TYPE_CHECKING:
    from reference_agents.imapd.session import Session


class State(enum.Enum):
    """RFC 9051 §3: the states of an IMAP connection."""

    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


class Transition(enum.Enum):
    AUTHENTICATE = "authenticate"  # LOGIN / AUTHENTICATE succeeded
    SELECT = "select"  # SELECT / EXAMINE succeeded
    DESELECT = "deselect"  # CLOSE, UNSELECT, or a failed SELECT/EXAMINE
    LOGOUT = "logout"  # LOGOUT, BYE, connection closed


#: RFC 9051 §3 "Flow of IMAP4 Connection": the one transition table.
TRANSITIONS: dict[tuple[State, Transition], State] = {
    (State.NOT_AUTHENTICATED, Transition.AUTHENTICATE): State.AUTHENTICATED,
    (State.NOT_AUTHENTICATED, Transition.LOGOUT): State.LOGOUT,
    (State.AUTHENTICATED, Transition.SELECT): State.SELECTED,
    (State.AUTHENTICATED, Transition.DESELECT): State.AUTHENTICATED,
    (State.AUTHENTICATED, Transition.LOGOUT): State.LOGOUT,
    (State.SELECTED, Transition.SELECT): State.SELECTED,
    (State.SELECTED, Transition.DESELECT): State.AUTHENTICATED,
    (State.SELECTED, Transition.LOGOUT): State.LOGOUT,
    (State.LOGOUT, Transition.LOGOUT): State.LOGOUT,
}


def next_state(state: State, transition: Transition) -> State:
    """The one place that refuses a transition the table does not have."""
    try:
        return TRANSITIONS[(state, transition)]
    except KeyError:
        raise RuntimeError(f"no transition {transition.name} from {state.name}") from None


@dataclass(frozen=True, slots=True)
class Result:
    """The tagged completion of a command: OK, NO or BAD, with an optional response code."""

    status: str
    text: str
    code: str | None = None


#: A command handler; None means it wrote its own tagged response.
Handler: TypeAlias = "Callable[[Session, Command], Awaitable[Result | None]]"

#: RFC 9051 §6.2.3 recommends slowing down guessing; the connection closes after this many.
MAX_AUTH_FAILURES = 5
