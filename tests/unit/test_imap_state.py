"""The IMAP state table in the core (RFC 9051 §3): every (state, transition) pair, the command
completions that move it, and the diagrams drawn from it."""

from __future__ import annotations

import pytest

from harness.protocol.imap.state import (
    TRANSITIONS,
    State,
    Transition,
    next_state,
    observed_state,
    transition_for,
    transitions_markdown,
    transitions_mermaid,
)


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("transition", list(Transition))
def test_every_pair(state: State, transition: Transition) -> None:
    if (state, transition) in TRANSITIONS:
        assert next_state(state, transition) is TRANSITIONS[(state, transition)]
        assert observed_state(state, transition) is TRANSITIONS[(state, transition)]
    else:
        with pytest.raises(RuntimeError):
            next_state(state, transition)
        # What the peer should not have answered leaves an observer where it was.
        assert observed_state(state, transition) is state


@pytest.mark.parametrize(
    ("command", "ok", "expected"),
    [
        ("LOGIN", True, Transition.AUTHENTICATE),
        ("login", False, None),
        ("AUTHENTICATE", True, Transition.AUTHENTICATE),
        ("SELECT", True, Transition.SELECT),
        ("EXAMINE", False, Transition.DESELECT),
        ("CLOSE", True, Transition.DESELECT),
        ("UNSELECT", True, Transition.DESELECT),
        ("LOGOUT", False, Transition.LOGOUT),
        ("NOOP", True, None),
        ("", True, None),
    ],
)
def test_command_completions(command: str, ok: bool, expected: Transition | None) -> None:
    assert transition_for(command, ok=ok) is expected


def test_diagrams_come_from_the_table() -> None:
    table = transitions_markdown()
    assert table.count("\n") == len(TRANSITIONS) + 2
    assert "| SELECTED | DESELECT (deselect) | AUTHENTICATED |" in table
    diagram = transitions_mermaid()
    assert "NOT_AUTHENTICATED --> AUTHENTICATED: AUTHENTICATE" in diagram
    assert "LOGOUT --> LOGOUT" not in diagram
