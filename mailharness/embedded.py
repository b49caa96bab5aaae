"""The one place that starts an embedded topology of the reference agents, for the CLI (`run`,
`replay`) and the pytest plugin (through its seam, mailharness/pytest_plugin.py).

`serve` is not here: it runs a configured, long-lived topology in the foreground."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from harness.targets import Target
from reference_agents.allowances import check_allowances
from reference_agents.quirks import check_quirks
from reference_agents.topology import TopologySettings, TopologyThread


def check_names(quirks: Iterable[str], allowances: Iterable[str]) -> None:
    """Raise ValueError naming the first unknown quirk or allowance."""
    check_quirks(quirks)
    check_allowances(allowances)


def embedded_label(quirks: Iterable[str], allowances: Iterable[str]) -> tuple[str, str]:
    """The name and description a run against the embedded agents is reported under."""
    quirks, allowances = list(quirks), list(allowances)
    name = ("reference agents (embedded)" + (f" with quirks: {', '.join(quirks)}" if quirks else "")
            + (f" with allowances: {', '.join(allowances)}" if allowances else ""))
    return name, "mailharness reference MSA, MTA, MDA and IMAP server on 127.0.0.2-4"


@contextmanager
def embedded_target(
    *, quirks: Iterable[str] = (), allowances: Iterable[str] = (),
    delivery_timeout: float | None = None, prefix: str = "mailharness-topology-",
) -> Iterator[Target]:
    """Start the reference agents in a temporary data directory, on a thread of their own;
    yield their target; stop them and remove the directory."""
    data_dir = Path(tempfile.mkdtemp(prefix=prefix))
    settings = TopologySettings(data_dir=data_dir, quirks=check_quirks(quirks),
                                allowances=check_allowances(allowances))
    if delivery_timeout:
        settings = replace(settings, delivery_timeout=delivery_timeout)
    runner = TopologyThread(settings)
    try:
        yield runner.start()
    finally:
        runner.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
