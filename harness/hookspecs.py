"""The plugin's one seam to what lies above the harness (the reference agents and the reports).

harness never imports reference_agents or reports (docs/architecture.md). The composition root
implements these hooks (mailharness/pytest_plugin.py, registered with the plugin), and imports
the agents and the reports only when a hook is called."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import pytest

from harness.targets import Target


@pytest.hookspec(firstresult=True)
def pytest_mailharness_check_agent_names(quirks: list[str], allowances: list[str]) -> bool | None:
    """Validate --quirk and --allowance names; raise ValueError naming an unknown one. Return
    True when checked (None: no embedded agents are installed)."""


@pytest.hookspec(firstresult=True)
def pytest_mailharness_embedded_target(
    quirks: list[str], allowances: list[str], delivery_timeout: float | None
) -> AbstractContextManager[Target] | None:
    """A context manager that starts the embedded reference agents and yields their target
    (None: no embedded agents are installed)."""


@pytest.hookspec(firstresult=True)
def pytest_mailharness_embedded_label(quirks: list[str], allowances: list[str]) -> tuple[str, str] | None:
    """The name and description of a run against the embedded agents."""


@pytest.hookspec(firstresult=True)
def pytest_mailharness_write_results(
    run: dict[str, Any], html_path: str | None, json_path: str | None
) -> str | None:
    """Write the run (target name and description, start, duration, the collected tests, notes)
    as JSON results to *json_path* and, with *html_path*, as the HTML report; return the JSON
    path written (None: no report writer is installed)."""
