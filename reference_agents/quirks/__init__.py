"""Named, off-by-default faults in the reference agents, each violating one requirement.

A suite's check is only trusted once a quirk makes it fail (tests/quirks). The table is built
from the flow's quirks (``flow``), SMTP's in depth (``smtp``), IMAP's (``imap``) and those only
load finds (``load``); each of those imports only ``base``, so any of them can be imported
first."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from reference_agents.quirks.base import Quirk
from reference_agents.quirks.flow import FLOW_QUIRKS
from reference_agents.quirks.imap import IMAP_QUIRKS
from reference_agents.quirks.load import LOAD_QUIRKS
from reference_agents.quirks.smtp import SMTP_QUIRKS

__all__ = ["FLOW_QUIRKS", "IMAP_QUIRKS", "LOAD_QUIRKS", "QUIRKS", "SMTP_QUIRKS", "Quirk",
           "check_quirks"]


def _build() -> dict[str, Quirk]:
    table: dict[str, Quirk] = {}
    for quirk in (*FLOW_QUIRKS, *SMTP_QUIRKS, *IMAP_QUIRKS, *LOAD_QUIRKS):
        if quirk.name in table:
            raise ValueError(f"duplicate quirk {quirk.name!r}")
        table[quirk.name] = quirk
    return table


#: Every quirk by name.
QUIRKS: Mapping[str, Quirk] = MappingProxyType(_build())


def check_quirks(names: Iterable[str]) -> frozenset[str]:
    """Validate quirk names; raise ValueError naming the first unknown one."""
    result = frozenset(names)
    for name in sorted(result):
        if name not in QUIRKS:
            raise ValueError(f"unknown quirk {name!r} (known: {', '.join(sorted(QUIRKS))})")
    return result
