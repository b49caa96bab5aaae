"""The pytest plugin as installed: the harness's plugin (harness/plugin.py) plus its seam to the
reference agents and the reports (the hooks of harness/hookspecs.py). The agents and the
reports are imported only when a hook is called, so a run against --target never loads the
agents."""

from __future__ import annotations

import platform
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.targets import Target

if TYPE_CHECKING:
    from reports.results import RunResults

pytest_plugins = ("harness.plugin",)


@pytest.hookimpl
def pytest_mailharness_check_agent_names(quirks: list[str], allowances: list[str]) -> bool:
    from mailharness.embedded import check_names

    check_names(quirks, allowances)
    return True


@pytest.hookimpl
def pytest_mailharness_embedded_target(
    quirks: list[str], allowances: list[str], delivery_timeout: float | None
) -> AbstractContextManager[Target]:
    from mailharness.embedded import embedded_target

    return embedded_target(quirks=quirks, allowances=allowances, delivery_timeout=delivery_timeout)


@pytest.hookimpl
def pytest_mailharness_embedded_label(quirks: list[str], allowances: list[str]) -> tuple[str, str]:
    from mailharness.embedded import embedded_label

    return embedded_label(quirks, allowances)


@pytest.hookimpl
def pytest_mailharness_write_results(run: dict[str, Any], html_path: str | None, json_path: str | None) -> str:
    from reports.html import write_report
    from reports.results import results_to_json

    results = build_run(run["name"], run["description"], run["started"], run["duration"],
                        run["tests"], notes=tuple(run["notes"]))
    if html_path:
        write_report(Path(html_path), [results])
        json_path = json_path or str(Path(html_path).with_suffix(".json"))
    assert json_path is not None
    Path(json_path).write_text(results_to_json(results), encoding="utf-8")
    return json_path


def build_run(
    name: str, description: str, started: str, duration: float, tests: list[dict[str, Any]],
    notes: tuple[str, ...] = (),
) -> RunResults:
    """Turn the entries the plugin collected into the report's RunResults."""
    from reports.results import (
        EvidenceMark,
        RunResults,
        TestResult,
        TranscriptDoc,
        TranscriptEntryDoc,
        VerdictDoc,
        requirements_from_registry,
        steps_from_registry,
    )

    docs = tuple(
        TestResult(
            nodeid=t["nodeid"], name=t.get("name", t["nodeid"]), outcome=t.get("outcome", "error"),
            requirements=tuple(t.get("requirements", ())), step=t.get("step"),
            duration=float(t.get("duration", 0.0)), message=t.get("message", ""),
            longrepr=t.get("longrepr", ""),
            transcripts=tuple(
                TranscriptDoc(
                    name=tr["name"],
                    entries=tuple(TranscriptEntryDoc(dir=e["dir"], t=e["t"], data=e["data"])
                                  for e in tr["entries"]),
                )
                for tr in t.get("transcripts", ())
            ),
            verdicts=tuple(
                VerdictDoc(
                    id=v["id"], verdict=v["verdict"], detail=v["detail"], checks=v["checks"],
                    evidence=tuple(EvidenceMark(m["transcript"], m["entries"]) for m in v["evidence"]),
                )
                for v in t.get("verdicts", ())
            ),
        )
        for t in sorted(tests, key=lambda t: t["nodeid"])
    )
    return RunResults(
        target_name=name, target_description=description, started=started, duration=duration,
        tests=docs, requirements=requirements_from_registry(), steps=steps_from_registry(),
        environment={"python": platform.python_version(), "platform": platform.platform()},
        notes=notes,
    )
