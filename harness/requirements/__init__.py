"""The requirement registry: id, RFC and section, level, one line of text — what suites,
quirks and reports join on. Entries live in flow.py, smtp.py and imap.py beside this file."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass


class Level(enum.Enum):
    MUST = "MUST"
    SHOULD = "SHOULD"
    MAY = "MAY"


@dataclass(frozen=True, slots=True)
class Requirement:
    """One checkable rule. ``rfc`` is a number; ``section`` as printed in the RFC."""

    id: str
    rfc: int
    section: str
    level: Level
    text: str
    step: int
    testable: bool = True
    untestable_reason: str = ""

    @property
    def citation(self) -> str:
        return f"RFC {self.rfc} §{self.section}"


class Registry(Mapping[str, Requirement]):
    """An immutable id → Requirement map that refuses duplicates."""

    def __init__(self, requirements: Iterable[Requirement]) -> None:
        items: dict[str, Requirement] = {}
        for req in requirements:
            if req.id in items:
                raise ValueError(f"duplicate requirement id {req.id!r}")
            items[req.id] = req
        self._items = items

    def __getitem__(self, key: str) -> Requirement:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def for_step(self, step: int) -> list[Requirement]:
        return [r for r in self._items.values() if r.step == step]


#: Requirements about TLS itself (STARTTLS, implicit TLS, no plaintext passwords before TLS):
#: not applicable to a target declared without TLS (``allow_plaintext = true``).
TLS_REQUIREMENTS: frozenset[str] = frozenset({
    "SUBMIT-STARTTLS", "SUBMIT-IMPLICIT-TLS", "AUTH-NO-PLAINTEXT", "IMPLICIT-TLS-CERT-CHECK",
    "STARTTLS-SYNTAX", "STARTTLS-RESET", "STARTTLS-DISCARD-BUFFER", "STARTTLS-NOT-REOFFERED",
    "STARTTLS-ONCE", "STARTTLS-NOT-REQUIRED-MX", "IMAP-STARTTLS", "IMAP-LOGINDISABLED",
})


@dataclass(frozen=True, slots=True)
class Step:
    number: int
    name: str
    agent: str
    summary: str


#: The nine steps of the flow (DESIGN.md), in order.
STEPS: tuple[Step, ...] = (
    Step(1, "submit", "MSA", "sender client submits over SMTP (587 STARTTLS, 465 implicit TLS)"),
    Step(2, "authenticate", "MSA", "AUTH required before relaying; bad credentials refused"),
    Step(3, "hand-off", "MSA → MTA", "accepted only once safely queued; Message-ID/Date added"),
    Step(4, "resolve", "sender MTA", "MX lookup, preference order, implicit MX"),
    Step(5, "transfer", "sender MTA → receiver MTA", "4xx → retry; 5xx → bounce"),
    Step(6, "route", "receiver MTA", "local domain delivered; no open relay"),
    Step(7, "filter and deliver", "MDA", "spam verdict; message delivered intact"),
    Step(8, "log in", "IMAP server", "STARTTLS, LOGINDISABLED, bad credentials refused"),
    Step(9, "read and manage", "IMAP server", "SELECT, FETCH, STORE, EXPUNGE, IDLE"),
)


def _build() -> Registry:
    from harness.requirements.flow import FLOW
    from harness.requirements.imap import IMAP
    from harness.requirements.smtp import SMTP

    return Registry([*FLOW, *SMTP, *IMAP])


#: Every requirement the suites know: the flow's, SMTP's in depth and IMAP's in depth.
REGISTRY = _build()
