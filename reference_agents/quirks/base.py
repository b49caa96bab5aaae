"""What a quirk is: a named, off-by-default fault of one agent, violating the requirements it names."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Quirk:
    name: str
    agent: str
    requirements: tuple[str, ...]
    description: str
