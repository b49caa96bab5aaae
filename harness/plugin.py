"""The pytest plugin: target options and fixtures, requirement markers, results for the report."""

from __future__ import annotations

import datetime as dt
import json
import platform
import shutil
import tempfile
import time
from collections.abc import Generator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from harness.requirements import REGISTRY
from harness.suite import Evidence
from harness.targets import Target, TargetError, load_target, target_from_urls

EVIDENCE_KEY = pytest.StashKey[Evidence]()
TARGET_KEY = pytest.StashKey[Target | None]()
USER_PROPERTY = "mailharness"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mailharness", "mailharness conformance suites")
    group.addoption("--target", metavar="FILE", help="target file (TOML) describing the servers to test")
    group.addoption("--submission", metavar="URL", help="submission endpoint, e.g. smtp://127.0.0.2:587")
    group.addoption("--mx", metavar="URL", help="inbound MX endpoint, e.g. smtp://127.0.0.3:25")
    group.addoption("--imap", metavar="URL", help="IMAP endpoint, e.g. imaps://127.0.0.3:993")
    group.addoption("--account", action="append", default=[], metavar="USER:PASSWORD[:ADDRESS]",
                    help="an account on the target (repeatable)")
    group.addoption("--domain", metavar="DOMAIN", help="mail domain of the target (with URL options)")
    group.addoption("--ca-file", metavar="PEM", help="CA certificates to trust for the target's TLS")
    group.addoption("--no-tls-verify", action="store_true", help="do not verify the target's certificates")
    group.addoption("--quirk", action="append", default=[], metavar="NAME",
                    help="start the embedded reference agents with this named fault (repeatable)")
    group.addoption("--delivery-timeout", type=float, metavar="SECONDS",
                    help="how long to wait for a message to arrive")
    group.addoption("--model-examples", type=int, metavar="N",
                    help="examples per run of the stateful SMTP/IMAP models (default 25)")
    group.addoption("--report", metavar="PATH.html",
                    help="write the HTML conformance report here (and the JSON results beside it)")
    group.addoption("--results-json", metavar="PATH.json", help="write the JSON results here")


def _uses_external_target(config: pytest.Config) -> bool:
    return bool(config.getoption("target") or config.getoption("submission")
                or config.getoption("mx") or config.getoption("imap"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "requirement(*ids): the registry requirement(s) this test checks")
    config.addinivalue_line("markers", "step(n): the flow step (1-9) this test belongs to")
    target: Target | None = None
    try:
        if config.getoption("target"):
            target = load_target(config.getoption("target"))
        elif _uses_external_target(config):
            target = target_from_urls(
                submission=config.getoption("submission"), mx=config.getoption("mx"),
                imap=config.getoption("imap"), accounts=config.getoption("account"),
                domain=config.getoption("domain"), ca_file=config.getoption("ca_file"),
                tls_verify=not config.getoption("no_tls_verify"),
            )
    except TargetError as exc:
        raise pytest.UsageError(str(exc)) from None
    if target is not None and config.getoption("quirk"):
        raise pytest.UsageError("--quirk applies to the embedded reference agents, not to --target")
    if config.getoption("quirk"):
        from reference_agents.quirks import check_quirks

        try:
            check_quirks(config.getoption("quirk"))
        except ValueError as exc:
            raise pytest.UsageError(f"--quirk: {exc}") from None
    config.stash[TARGET_KEY] = target
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(ResultsCollector(config), "mailharness-results")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for marker in item.iter_markers("requirement"):
            for req_id in marker.args:
                if req_id not in REGISTRY:
                    raise pytest.UsageError(f"{item.nodeid}: unknown requirement id {req_id!r}")


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """The servers under test: from --target / URL options, else the embedded reference topology."""
    config = request.config
    timeout = config.getoption("delivery_timeout")
    chosen = config.stash[TARGET_KEY]
    if chosen is not None:
        yield replace(chosen, delivery_timeout=timeout) if timeout else chosen
        return
    from reference_agents.topology import TopologySettings, TopologyThread

    data_dir = Path(tempfile.mkdtemp(prefix="mailharness-topology-"))
    settings = TopologySettings(data_dir=data_dir, quirks=frozenset(config.getoption("quirk")))
    if timeout:
        settings = replace(settings, delivery_timeout=timeout)
    runner = TopologyThread(settings)
    try:
        yield runner.start()
    finally:
        runner.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> Evidence:
    """Transcripts and notes of this test, attached to its result in the report."""
    recorded = Evidence()
    request.node.stash[EVIDENCE_KEY] = recorded
    return recorded


def _requirements_of(item: pytest.Item) -> list[str]:
    ids: list[str] = []
    for marker in item.iter_markers("requirement"):
        ids.extend(str(a) for a in marker.args)
    return ids


def _step_of(item: pytest.Item, requirement_ids: list[str]) -> int | None:
    marker = item.get_closest_marker("step")
    if marker is not None and marker.args:
        return int(marker.args[0])
    steps = {REGISTRY[r].step for r in requirement_ids if r in REGISTRY}
    return steps.pop() if len(steps) == 1 else None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" or report.outcome != "passed":
        recorded = item.stash.get(EVIDENCE_KEY, None)
        requirement_ids = _requirements_of(item)
        payload = {
            "requirements": requirement_ids,
            "step": _step_of(item, requirement_ids),
            "name": item.name,
            "transcripts": [t.to_dict() for t in recorded.transcripts] if recorded else [],
            "notes": recorded.notes if recorded else [],
        }
        report.user_properties.append((USER_PROPERTY, json.dumps(payload)))
    return report


class ResultsCollector:
    """Gathers every test's outcome, requirements and transcripts; writes JSON and HTML at the end.

    Registered on the controller only: xdist workers ship the data in ``user_properties``."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.results: dict[str, dict[str, Any]] = {}
        self.started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self.t0 = time.monotonic()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        payload = next((json.loads(str(v)) for k, v in report.user_properties if k == USER_PROPERTY), None)
        if payload is None:
            return
        entry = self.results.setdefault(report.nodeid, {"nodeid": report.nodeid, "duration": 0.0})
        entry.update({k: payload[k] for k in ("requirements", "step", "name")})
        entry["transcripts"] = payload["transcripts"] or entry.get("transcripts", [])
        entry["duration"] += report.duration
        if report.when == "call":
            entry["outcome"] = _outcome(report)
        elif report.outcome == "skipped":
            entry["outcome"] = "skipped"
        elif report.outcome == "failed":
            entry["outcome"] = "error"
        entry["message"] = _message(report, payload["notes"])
        entry["longrepr"] = str(report.longrepr) if report.failed else entry.get("longrepr", "")

    def target_label(self) -> tuple[str, str]:
        chosen = self.config.stash.get(TARGET_KEY, None)
        if chosen is not None:
            return chosen.name, chosen.description
        quirks = self.config.getoption("quirk")
        name = "reference agents (embedded)" + (f" with quirks: {', '.join(quirks)}" if quirks else "")
        return name, "mailharness reference MSA, MTA, MDA and IMAP server on 127.0.0.2-4"

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        html_path = self.config.getoption("report")
        json_path = self.config.getoption("results_json")
        if not html_path and not json_path:
            return
        from reports.html import write_report
        from reports.results import results_to_json

        name, description = self.target_label()
        run = build_run(
            name, description, self.started, time.monotonic() - self.t0, list(self.results.values())
        )
        if html_path:
            write_report(Path(html_path), [run])
            json_path = json_path or str(Path(html_path).with_suffix(".json"))
        Path(json_path).write_text(results_to_json(run), encoding="utf-8")
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            if html_path:
                reporter.write_line(f"mailharness report: {html_path}")
            reporter.write_line(f"mailharness results: {json_path}")


def _outcome(report: pytest.TestReport) -> str:
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    return str(report.outcome)


def _message(report: pytest.TestReport, notes: list[str]) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    if report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        text = crash.message if crash is not None else str(report.longrepr)
        return text.splitlines()[0] if text else "failed"
    return "; ".join(notes[-1:])


def build_run(
    name: str, description: str, started: str, duration: float, tests: list[dict[str, Any]]
) -> Any:
    """Turn the collected entries into the report's RunResults."""
    from reports.results import (
        RunResults,
        TestResult,
        TranscriptDoc,
        TranscriptEntryDoc,
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
        )
        for t in sorted(tests, key=lambda t: t["nodeid"])
    )
    return RunResults(
        target_name=name, target_description=description, started=started, duration=duration,
        tests=docs, requirements=requirements_from_registry(), steps=steps_from_registry(),
        environment={"python": platform.python_version(), "platform": platform.platform()},
    )


