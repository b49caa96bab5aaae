"""Quirks of the IMAP suites in depth: named faults of the reference agents, off by default."""

from __future__ import annotations

from reference_agents.quirks import Quirk

IMAP_QUIRKS: tuple[Quirk, ...] = ()
