"""Quirks of the SMTP suites in depth: named faults of the reference agents, off by default."""

from __future__ import annotations

from reference_agents.quirks import Quirk

SMTP_QUIRKS: tuple[Quirk, ...] = ()
