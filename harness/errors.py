"""Errors about a user's file (target, results, config): always one line naming file, key and problem."""

from __future__ import annotations


class FileProblem(Exception):
    """A problem in a file a user wrote or gave; ``str()`` is ``<file>: <key>: <problem>``."""

    def __init__(self, problem: str, *, source: str = "", key: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.source = source
        self.key = key

    def __str__(self) -> str:
        text = ": ".join(part for part in (self.source, self.key, self.problem) if part)
        return " ".join(text.split("\n"))
