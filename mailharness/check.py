"""`mailharness check` (and its alias `run`): the suites against a target, for a person.

While the suites run, a progress bar per flow step (rich); at the end one screen: each step's
requirements that passed, failed and did not apply, the MUST (or, with ``--fail-on should``,
SHOULD) failures with their requirement ids and RFC sections, harness errors, and the report's
path. The exit status is pytest's under the plugin's policy: 0 when nothing counts against the
target, 1 when a requirement at the policy's level is red (or a harness error), 2 interrupted
or a usage error, 5 no test ran. ``--plain`` gives pytest's own output instead of the bars."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from harness.requirements import REGISTRY, STEPS

#: The payload the harness's plugin attaches to each test report (harness/plugin.py).
USER_PROPERTY = "mailharness"
#: Requirement verdicts as the summary counts them.
PASSED = frozenset({"pass", "offered"})
NOT_APPLICABLE = frozenset({"not_applicable", "not_offered", "not_reached"})
OTHER_STEP = 0
#: Failures listed on the summary screen before "... and N more".
MAX_LISTED = 15


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--report", default="mailharness-report.html", help="HTML report path "
                        "(the JSON results and the JUnit XML are written beside it)")
    parser.add_argument("--target", help="target file describing the servers to test "
                                         "(default: the embedded reference agents)")
    parser.add_argument("--quirk", action="append", default=[],
                        help="embedded agents with this fault (repeatable)")
    parser.add_argument("--allowance", action="append", default=[],
                        help="embedded agents with this RFC-permitted variant (repeatable)")
    parser.add_argument("--fail-on", choices=("must", "should"), default="must",
                        help="exit non-zero for failed MUSTs only (default), or SHOULDs too")
    parser.add_argument("--plain", action="store_true",
                        help="pytest's own output instead of the progress bars and summary")


def _step_of(report: pytest.TestReport) -> int | None:
    for key, value in report.user_properties:
        if key == USER_PROPERTY:
            step = json.loads(str(value)).get("step")
            return int(step) if step is not None else OTHER_STEP
    return None


def _item_step(item: pytest.Item) -> int:
    marker = item.get_closest_marker("step")
    if marker is not None and marker.args:
        return int(marker.args[0])
    ids = [str(a) for m in item.iter_markers("requirement") for a in m.args]
    steps = {REGISTRY[r].step for r in ids if r in REGISTRY}
    return steps.pop() if len(steps) == 1 else OTHER_STEP


def step_label(number: int) -> str:
    if number == OTHER_STEP:
        return "  other"
    step = STEPS[number - 1]
    return f"{number} {step.name} ({step.agent})"


class ProgressPlugin:
    """A bar per flow step, advanced as each test finishes (in this process or, with xdist,
    as the workers report)."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(TextColumn("{task.description:<34}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("{task.fields[red]}"),
                                 console=console, transient=False)
        self.tasks: dict[int, TaskID] = {}
        self.red: Counter[int] = Counter()
        self.collect_errors: list[str] = []

    def _task(self, step: int, total: int | None = None) -> TaskID:
        if step not in self.tasks:
            self.tasks[step] = self.progress.add_task(step_label(step), total=total, red="")
        return self.tasks[step]

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        totals = Counter(_item_step(item) for item in session.items)
        for step in sorted(totals, key=lambda s: (s == OTHER_STEP, s)):
            self._task(step, totals[step])
        self.progress.start()

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collect_errors.append(f"{report.nodeid or 'collection'}: "
                                       f"{str(report.longrepr).strip().splitlines()[-1]}")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not (report.when == "call" or (report.when == "setup" and not report.passed)):
            return
        step = _step_of(report)
        if step is None:
            step = OTHER_STEP
        task = self._task(step)
        if report.failed:
            self.red[step] += 1
            self.progress.update(task, red=f"[red]{self.red[step]} failed")
        self.progress.advance(task)

    def pytest_sessionfinish(self) -> None:
        self.progress.stop()


def check(args: argparse.Namespace, extra: list[str]) -> int:
    report = Path(args.report)
    results_json = report.with_suffix(".json")
    junit = report.with_suffix(".junit.xml")
    # This process imported `harness` before pytest could mark it for assertion rewriting;
    # only the suites' own asserts need rewriting, and they are not imported yet.
    argv = ["--pyargs", "suites", "-p", "no:cacheprovider", "--report", str(report),
            "--junitxml", str(junit), "-W", "ignore::pytest.PytestAssertRewriteWarning",
            "--fail-on", args.fail_on]
    if args.target:
        argv += ["--target", args.target]
    for quirk in args.quirk:
        argv += ["--quirk", quirk]
    for allowance in args.allowance:
        argv += ["--allowance", allowance]
    if args.plain:
        return int(pytest.main(argv + extra))
    console = Console(stderr=True)
    plugin = ProgressPlugin(console)
    results_json.unlink(missing_ok=True)
    status = int(pytest.main(argv + ["-p", "no:terminal", *extra], plugins=[plugin]))
    plugin.progress.stop()
    out = Console()
    if plugin.collect_errors:
        for problem in plugin.collect_errors:
            out.print(f"[red]collection error[/] {problem}", markup=True, highlight=False)
    if status == pytest.ExitCode.USAGE_ERROR:
        return 2  # pytest has said what, in one line ("ERROR: ...")
    if status == pytest.ExitCode.INTERRUPTED:
        print("mailharness check: interrupted", file=sys.stderr)
        if not results_json.exists():
            return 2
    elif status == pytest.ExitCode.NO_TESTS_COLLECTED or not results_json.exists():
        print("mailharness check: no test ran", file=sys.stderr)
        return status or int(pytest.ExitCode.NO_TESTS_COLLECTED)
    summary(out, json.loads(results_json.read_text(encoding="utf-8")), report=report,
            junit=junit, fail_on=args.fail_on, status=status)
    return 2 if status == pytest.ExitCode.INTERRUPTED else status


def summary(console: Console, results: dict[str, Any], *, report: Path, junit: Path,
            fail_on: str, status: int) -> None:
    """The one-screen verdict of a run, from its JSON results."""
    from reports.results import results_from_json

    run = results_from_json(json.dumps(results))
    steps: dict[int, Counter[str]] = {s.number: Counter() for s in STEPS}
    failures: list[tuple[str, str]] = []
    for requirement in run.requirements:
        verdict = run.requirement_verdict(requirement.id)
        if verdict == "untested":
            continue
        column = ("pass" if verdict in PASSED else "fail" if verdict == "fail" else "n/a")
        steps.setdefault(requirement.step, Counter())[column] += 1
        charged = requirement.level == "MUST" or (requirement.level == "SHOULD"
                                                   and fail_on == "should")
        if verdict == "fail":
            failures.append((requirement.level if charged else f"{requirement.level} (not "
                             "counted)", requirement.id))
    console.print(f"mailharness check: {run.target_name}", highlight=False, markup=False,
                  soft_wrap=True)
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("step")
    for name in ("pass", "fail", "n/a"):
        table.add_column(name, justify="right")
    for number, counts in sorted(steps.items()):
        if not counts:
            continue
        fail = counts["fail"]
        table.add_row(step_label(number), str(counts["pass"]),
                      f"[red]{fail}[/]" if fail else "0", str(counts["n/a"]))
    console.print(table)
    by_id = {r.id: r for r in run.requirements}
    counted = [(level, rid) for level, rid in failures if "not counted" not in level]
    others = [(level, rid) for level, rid in failures if "not counted" in level]
    if counted:
        console.print(f"\n[bold red]{len(counted)} failed {fail_on.upper()}"
                      f"{'' if fail_on == 'must' else ' or MUST'} requirement(s):[/]")
    for level, rid in counted[:MAX_LISTED]:
        req = by_id[rid]
        tests = [t.nodeid for t in run.tests_for_requirement(rid)
                 if (v := t.verdict_of(rid)) is not None and v.verdict == "fail"]
        console.print(f"  {rid:<34} {level:<6} {req.citation:<18} {tests[0] if tests else ''}",
                      highlight=False, markup=False, soft_wrap=True)
    if len(counted) > MAX_LISTED:
        console.print(f"  ... and {len(counted) - MAX_LISTED} more (see the report)")
    if others:
        console.print(f"{len(others)} SHOULD requirement(s) failed too (not counted under "
                      f"--fail-on {fail_on}; see the report)", highlight=False)
    errors = run.harness_errors()
    if errors:
        console.print(f"\n[bold red]{len(errors)} harness error(s)[/] (the harness, not the "
                      "target, failed):")
        for test in errors[:MAX_LISTED]:
            console.print(f"  {test.nodeid}: {test.message}", highlight=False, markup=False,
                          soft_wrap=True)
    totals = run.summary()
    console.print(f"\n{sum(totals.values())} tests in {run.duration:.0f} s: "
                  + ", ".join(f"{n} {o}" for o, n in totals.items() if n), highlight=False)
    console.print(f"report: {report}   results: {report.with_suffix('.json')}   junit: {junit}",
                  highlight=False, soft_wrap=True)
    verdict = "[bold green]PASS[/]" if status == 0 else "[bold red]FAIL[/]"
    console.print(f"verdict: {verdict} (--fail-on {fail_on}, exit status {status})")
