"""Helpers the command handlers of several states share."""

from __future__ import annotations

from reference_agents.imapd.context import HandlerContext
from reference_agents.imapd.selected import SelectedMailbox
from reference_agents.imapd.state import Result


def user_of(s: HandlerContext) -> str:
    """The logged-in user (the dispatcher only calls these handlers after authentication)."""
    assert s.user is not None
    return s.user


def selected_of(s: HandlerContext) -> tuple[str, SelectedMailbox]:
    """The user and the selected mailbox (the dispatcher only calls these handlers in the
    selected state)."""
    assert s.user is not None and s.selected is not None
    return s.user, s.selected


def bad_sequence_set() -> Result:
    # RFC 9051 §6.4.5 (and §9 seq-number): a sequence number beyond the mailbox is an error.
    return Result("BAD", "invalid message sequence number")
