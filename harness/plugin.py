"""The pytest plugin: target options and fixtures, requirement markers, results for the report."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Generator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from harness import checks as checks_mod
from harness.checks import Checks, NotOffered, is_harness_error
from harness.requirements import REGISTRY, TLS_REQUIREMENTS
from harness.suite import Evidence
from harness.targets import Target, TargetError, load_target, target_from_urls

EVIDENCE_KEY = pytest.StashKey[Evidence]()
CHECKS_KEY = pytest.StashKey[Checks]()
NOT_OFFERED_KEY = pytest.StashKey[NotOffered]()
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
    group.addoption("--allow-plaintext", action="store_true",
                    help="the target has no TLS: LOGIN and AUTH in plain text, TLS checks not applicable")
    group.addoption("--quirk", action="append", default=[], metavar="NAME",
                    help="start the embedded reference agents with this named fault (repeatable)")
    group.addoption("--allowance", action="append", default=[], metavar="NAME",
                    help="start the embedded reference agents with this RFC-permitted variant (repeatable)")
    group.addoption("--delivery-timeout", type=float, metavar="SECONDS",
                    help="how long to wait for a message to arrive")
    group.addoption("--model-examples", type=int, metavar="N",
                    help="examples per run of the stateful SMTP/IMAP models (default 25)")
    group.addoption("--report", metavar="PATH.html",
                    help="write the HTML conformance report here (and the JSON results beside it)")
    group.addoption("--results-json", metavar="PATH.json", help="write the JSON results here")
    group.addoption("--fail-on", choices=("must", "should"), default="must",
                    help="which failed requirements make the exit status non-zero: MUST only "
                         "(default) or SHOULD too; a MAY never does")


def _uses_external_target(config: pytest.Config) -> bool:
    return bool(config.getoption("target") or config.getoption("submission")
                or config.getoption("mx") or config.getoption("imap"))


#: Why there is nothing to test when the composition root is not installed.
NO_AGENTS = ("the embedded reference agents are not installed (the mailharness package "
             "registers them); give --target FILE")


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from harness import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


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
    if target is not None and (config.getoption("quirk") or config.getoption("allowance")):
        raise pytest.UsageError("--quirk and --allowance apply to the embedded reference agents, not to --target")
    if config.getoption("quirk") or config.getoption("allowance"):
        try:
            checked = config.hook.pytest_mailharness_check_agent_names(
                quirks=config.getoption("quirk"), allowances=config.getoption("allowance"))
        except ValueError as exc:
            raise pytest.UsageError(f"--quirk/--allowance: {exc}") from None
        if not checked:
            raise pytest.UsageError(f"--quirk/--allowance: {NO_AGENTS}")
    if target is not None and config.getoption("allow_plaintext"):
        target = replace(target, allow_plaintext=True)
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
    embedded = config.hook.pytest_mailharness_embedded_target(
        quirks=config.getoption("quirk"), allowances=config.getoption("allowance"),
        delivery_timeout=timeout)
    if embedded is None:
        raise pytest.UsageError(f"no --target given, and {NO_AGENTS}")
    with embedded as started:
        yield started


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> Evidence:
    """Transcripts and notes of this test, attached to its result in the report."""
    recorded = Evidence()
    request.node.stash[EVIDENCE_KEY] = recorded
    opened = request.node.stash.get(CHECKS_KEY, None)
    if opened is not None:
        opened.evidence = recorded
    return recorded


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    opened = Checks(tuple(_requirements_of(item)))
    item.stash[CHECKS_KEY] = opened
    checks_mod.begin(opened)
    result = yield
    if opened.declared and set(opened.declared) <= TLS_REQUIREMENTS and _plaintext(item.config):
        pytest.skip(PLAINTEXT_REASON)
    return result


PLAINTEXT_REASON = "the target is tested in plain text (allow_plaintext = true): TLS checks do not apply"


def _plaintext(config: pytest.Config) -> bool:
    chosen = config.stash.get(TARGET_KEY, None)
    return bool(config.getoption("allow_plaintext") or (chosen is not None and chosen.allow_plaintext))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    try:
        return (yield)
    finally:
        checks_mod.begin(None)


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Generator[None, object, object]:
    """A MAY whose feature is not offered ends its test, which passes: a MAY is never red."""
    try:
        return (yield)
    except NotOffered as exc:
        pyfuncitem.stash[NOT_OFFERED_KEY] = exc
        return True


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
        outcome, verdicts = _verdicts(item, call, report)
        payload = {
            "requirements": requirement_ids,
            "step": _step_of(item, requirement_ids),
            "name": item.name,
            "transcripts": [t.to_dict() for t in recorded.transcripts] if recorded else [],
            "notes": recorded.notes if recorded else [],
            "outcome": outcome,
            "verdicts": verdicts,
        }
        report.user_properties.append((USER_PROPERTY, json.dumps(payload)))
    return report


def _verdicts(
    item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport
) -> tuple[str, list[dict[str, object]]]:
    """The test's outcome as the report counts it, and its per-requirement verdicts.

    A failure that is neither a check nor the server's doing (a bug of the harness) is an
    *error*: its requirements are not reached, never red."""
    opened = item.stash.get(CHECKS_KEY, None) or Checks(tuple(_requirements_of(item)))
    exc = call.excinfo.value if call.excinfo is not None else None
    reason = ""
    if report.skipped:
        outcome = "skipped"
        if isinstance(report.longrepr, tuple):
            reason = str(report.longrepr[2]).removeprefix("Skipped: ")
    elif report.failed:
        outcome = "error" if report.when != "call" or (exc is not None and is_harness_error(exc)) else "failed"
    else:
        outcome = "passed"
        exc = item.stash.get(NOT_OFFERED_KEY, None)
    if report.when != "call" and report.passed:
        return outcome, []
    return outcome, [v.to_dict() for v in opened.finish(outcome, exc, reason)]


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
        if report.when == "call" or report.outcome != "passed":
            entry["outcome"] = _outcome(report, payload["outcome"])
            entry["verdicts"] = payload["verdicts"] or entry.get("verdicts", [])
        entry["message"] = _message(report, payload["notes"])
        entry["longrepr"] = str(report.longrepr) if report.failed else entry.get("longrepr", "")

    def target_label(self) -> tuple[str, str]:
        chosen = self.config.stash.get(TARGET_KEY, None)
        if chosen is not None:
            return chosen.name, chosen.description
        label = self.config.hook.pytest_mailharness_embedded_label(
            quirks=self.config.getoption("quirk"), allowances=self.config.getoption("allowance"))
        return label if label is not None else ("embedded reference agents", "")

    def verdict_counts(self) -> dict[str, int]:
        """Each requirement's verdict over the run, counted; failures split by level."""
        per_requirement: dict[str, list[str]] = {}
        for entry in self.results.values():
            for verdict in entry.get("verdicts", ()):
                per_requirement.setdefault(str(verdict["id"]), []).append(str(verdict["verdict"]))
        return checks_mod.summarise(per_requirement, lambda r: REGISTRY[r].level.value)

    def exit_reasons(self) -> list[str]:
        """Why the run fails under --fail-on: red requirements at that level, harness errors,
        tests that failed without a red requirement, and failed tests of no suite."""
        fail_on = self.config.getoption("fail_on")
        reasons = []
        for entry in self.results.values():
            outcome = entry.get("outcome")
            if outcome == "error":
                reasons.append(f"{entry['nodeid']}: harness error")
            if outcome != "failed":
                continue
            reds = [str(v["id"]) for v in entry.get("verdicts", ()) if v["verdict"] == "fail"]
            if not reds:
                reasons.append(f"{entry['nodeid']}: failed with no requirement red")
            reasons += [f"{entry['nodeid']}: {r}" for r in reds if checks_mod.counts_against(r, fail_on)]
        return reasons

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        counts = self.verdict_counts()
        if not counts:
            return
        shown = ", ".join(f"{n} {v.replace('_', ' ')}" for v, n in sorted(counts.items()))
        terminalreporter.write_line(
            f"mailharness requirements: {shown} (exit status: --fail-on {self.config.getoption('fail_on')})"
        )

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if exitstatus == pytest.ExitCode.TESTS_FAILED and self.results and not self.exit_reasons():
            # Only SHOULD failures (under --fail-on must): the run passes, the report shows them.
            session.exitstatus = pytest.ExitCode.OK
        html_path = self.config.getoption("report")
        json_path = self.config.getoption("results_json")
        if not html_path and not json_path:
            return
        name, description = self.target_label()
        notes = (PLAINTEXT_NOTE,) if _plaintext(self.config) else ()
        run = {"name": name, "description": description, "started": self.started,
               "duration": time.monotonic() - self.t0, "tests": list(self.results.values()),
               "notes": notes}
        written = self.config.hook.pytest_mailharness_write_results(run=run, html_path=html_path, json_path=json_path)
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return
        if written is None:
            reporter.write_line("mailharness: no report writer is installed; --report and "
                                "--results-json were ignored")
            return
        if html_path:
            reporter.write_line(f"mailharness report: {html_path}")
        reporter.write_line(f"mailharness results: {written}")


    def pytest_unconfigure(self, config: pytest.Config) -> None:
        # After junitxml wrote its file (in its pytest_sessionfinish).
        xml_path = getattr(config.option, "xmlpath", None)
        if xml_path and self.results:
            from harness.junit import rewrite

            rewrite(Path(xml_path), self.results, getattr(config.option, "junitprefix", None))


def _outcome(report: pytest.TestReport, outcome: str) -> str:
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    return outcome


def _message(report: pytest.TestReport, notes: list[str]) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    if report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        text = crash.message if crash is not None else str(report.longrepr)
        return text.splitlines()[0] if text else "failed"
    return "; ".join(notes[-1:])


PLAINTEXT_NOTE = ("Plain text: the target was tested without TLS (allow_plaintext = true); "
                  "every TLS check is not applicable.")
