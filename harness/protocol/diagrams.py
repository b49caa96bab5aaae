"""Drawings of a transition table ``{(state, event): state}`` for docs and reports."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TypeVar

_S = TypeVar("_S", bound=enum.Enum)
_E = TypeVar("_E", bound=enum.Enum)


def transitions_markdown(table: Mapping[tuple[_S, _E], _S],
                         event_name: str = "event") -> str:
    """The table as a Markdown table, one row per pair, in the table's order."""
    rows = [f"| state | {event_name} | next state |", "|---|---|---|"]
    for (state, event), nxt in table.items():
        rows.append(f"| {state.name} | {event.name} ({event.value}) | {nxt.name} |")
    return "\n".join(rows) + "\n"


def transitions_mermaid(table: Mapping[tuple[_S, _E], _S],
                        first: _S, last: _S) -> str:
    """The table as a Mermaid state diagram from *first* to *last* (self-loops omitted)."""
    lines = ["stateDiagram-v2", f"    [*] --> {first.name}"]
    for (state, event), nxt in table.items():
        if state is not nxt:
            lines.append(f"    {state.name} --> {nxt.name}: {event.name}")
    lines.append(f"    {last.name} --> [*]")
    return "\n".join(lines) + "\n"
