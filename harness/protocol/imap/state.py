"""IMAP connection states (RFC 9051 §3) and their one transition table, for both roles."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

from harness.protocol import diagrams


class State(enum.Enum):
    """RFC 9051 §3: the states of an IMAP connection."""

    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


class Transition(enum.Enum):
    AUTHENTICATE = "authenticate"  # LOGIN / AUTHENTICATE succeeded (or a PREAUTH greeting)
    SELECT = "select"  # SELECT / EXAMINE succeeded
    DESELECT = "deselect"  # CLOSE, UNSELECT, or a failed SELECT/EXAMINE
    LOGOUT = "logout"  # LOGOUT, BYE, connection closed


_S = State
_T = Transition

#: RFC 9051 §3 "Flow of IMAP4 Connection": the one transition table.
TRANSITIONS: Mapping[tuple[State, Transition], State] = MappingProxyType({
    # RFC 9051 §3.1: "In the not authenticated state, the client MUST supply authentication
    # credentials before most commands will be permitted."
    (_S.NOT_AUTHENTICATED, _T.AUTHENTICATE): _S.AUTHENTICATED,
    (_S.NOT_AUTHENTICATED, _T.LOGOUT): _S.LOGOUT,
    # RFC 9051 §3.2: "In the authenticated state, the client is authenticated and MUST select a
    # mailbox to access before commands that affect messages will be permitted."
    (_S.AUTHENTICATED, _T.SELECT): _S.SELECTED,
    (_S.AUTHENTICATED, _T.DESELECT): _S.AUTHENTICATED,
    (_S.AUTHENTICATED, _T.LOGOUT): _S.LOGOUT,
    # RFC 9051 §3.3: "A selected state is entered when a mailbox has been successfully
    # selected." §6.3.2: "If the client is permitted to modify the mailbox ... a failed SELECT
    # ... returns to the authenticated state" (and so do CLOSE and UNSELECT).
    (_S.SELECTED, _T.SELECT): _S.SELECTED,
    (_S.SELECTED, _T.DESELECT): _S.AUTHENTICATED,
    (_S.SELECTED, _T.LOGOUT): _S.LOGOUT,
    # RFC 9051 §3.4: "In the logout state, the connection is being terminated."
    (_S.LOGOUT, _T.LOGOUT): _S.LOGOUT,
})


def next_state(state: State, transition: Transition) -> State:
    """The one place that refuses a transition the table does not have."""
    try:
        return TRANSITIONS[(state, transition)]
    except KeyError:
        raise RuntimeError(f"no transition {transition.name} from {state.name}") from None


def observed_state(state: State, transition: Transition) -> State:
    """The state a peer's answer leads to, for the side that observes it (a client): a
    transition the table does not have (an OK to SELECT before login) leaves the state as it
    was; judging the peer for it is for the checks, not the connection."""
    if (state, transition) in TRANSITIONS:
        return next_state(state, transition)
    return state


def transitions_markdown() -> str:
    """The transition table as a Markdown table (for docs and reports)."""
    return diagrams.transitions_markdown(TRANSITIONS, "transition")


def transitions_mermaid() -> str:
    """The transition table as a Mermaid state diagram (self-loops omitted)."""
    return diagrams.transitions_mermaid(TRANSITIONS, State.NOT_AUTHENTICATED, State.LOGOUT)


#: The transitions a command's tagged completion makes: (on OK, otherwise).
_COMMAND_TRANSITIONS: Mapping[str, tuple[Transition | None, Transition | None]] = (
    MappingProxyType({
        "LOGIN": (Transition.AUTHENTICATE, None),
        "AUTHENTICATE": (Transition.AUTHENTICATE, None),
        # RFC 9051 §6.3.2: a failed SELECT leaves the selected state ("returns to the
        # authenticated state"), as does EXAMINE (§6.3.3).
        "SELECT": (Transition.SELECT, Transition.DESELECT),
        "EXAMINE": (Transition.SELECT, Transition.DESELECT),
        "CLOSE": (Transition.DESELECT, None),
        "UNSELECT": (Transition.DESELECT, None),
        # RFC 9051 §6.1.3: the server sends BYE and closes, whatever its tagged answer.
        "LOGOUT": (Transition.LOGOUT, Transition.LOGOUT),
    })
)


def transition_for(command: str, *, ok: bool) -> Transition | None:
    """The transition the tagged completion (OK or not) of *command* makes, if any."""
    on_ok, otherwise = _COMMAND_TRANSITIONS.get(command.upper(), (None, None))
    return on_ok if ok else otherwise
