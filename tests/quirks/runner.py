"""Run suite tests against the embedded reference agents with a quirk (or an allowance) on, and
read the per-requirement verdicts they wrote."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.checks import combine
from harness.requirements import REGISTRY, Level
from reference_agents.quirks import QUIRKS

#: Verdicts that are not red: what every requirement but the quirk's own must end with.
NOT_RED = frozenset({"pass", "not_reached", "not_applicable", "offered", "not_offered"})

#: The options every run gets: short delivery timeout, warnings as errors, a fixed seed.
#: --tb=native: the verdicts come from the JSON, and pytest's own traceback formatting re-parses
#: sources, which on CPython 3.11 can end in "SystemError: AST constructor recursion depth
#: mismatch" after a RecursionError (python/cpython#106905) in a nested in-process run.
BASE_ARGS = ("--delivery-timeout", "3", "-p", "no:cacheprovider", "-q", "-o", "filterwarnings=error",
             "-W", "ignore::pytest.PytestAssertRewriteWarning", "--hypothesis-seed=0", "--tb=native")


def suite_test(ref: str) -> tuple[Path, str, set[str]]:
    """``"flow.test_1_submit:test_greeting_is_220"`` → (file, function, requirement ids)."""
    module_name, function = ref.split(":")
    module = importlib.import_module(f"suites.{module_name}")
    func = getattr(module, function)
    marks = getattr(func, "pytestmark", [])
    requirements = {a for m in marks if m.name == "requirement" for a in m.args}
    return Path(module.__file__ or ""), function, requirements


@dataclass(frozen=True)
class Run:
    """What one run of suite tests wrote: each requirement's verdict over the run, the tests'
    outcomes, and the detail of every red verdict."""

    verdicts: dict[str, str]
    outcomes: dict[str, str]
    details: dict[str, str]

    def red(self) -> set[str]:
        return {r for r, v in self.verdicts.items() if v == "fail"}

    def errors(self) -> list[str]:
        return [name for name, outcome in self.outcomes.items() if outcome == "error"]

    def shown(self) -> str:
        return json.dumps({"verdicts": self.verdicts, "outcomes": self.outcomes,
                           "red": self.details}, indent=1, sort_keys=True)


def run_suites(
    pytester: pytest.Pytester, selection: list[str], *, quirks: list[str] = (),  # type: ignore[assignment]
    allowances: list[str] = (), extra: tuple[str, ...] = (),  # type: ignore[assignment]
) -> Run:
    """Run *selection* and gather its verdicts."""
    out = pytester.path / "mailharness-results.json"
    args = [*selection, *BASE_ARGS, "--results-json", str(out), *extra]
    for quirk in quirks:
        args += ["--quirk", quirk]
    for allowance in allowances:
        args += ["--allowance", allowance]
    result = pytester.runpytest_inprocess(*args)
    assert result.ret in (0, 1), f"pytest exited {result.ret}:\n{result.stdout.str()[-3000:]}"
    doc = json.loads(out.read_text(encoding="utf-8"))
    seen: dict[str, list[str]] = {}
    details: dict[str, str] = {}
    for test in doc["tests"]:
        for verdict in test["verdicts"]:
            seen.setdefault(verdict["id"], []).append(verdict["verdict"])
            if verdict["verdict"] == "fail":
                details[verdict["id"]] = f"{test['name']}: {verdict['detail']}"
    return Run(
        verdicts={r: combine(v) for r, v in seen.items()},
        outcomes={t["name"]: t["outcome"] for t in doc["tests"]},
        details=details,
    )


def assert_only_its_requirement_red(pytester: pytest.Pytester, ref: str, quirk: str, *extra: str) -> None:
    """With *quirk* on, the test *ref* reds exactly the quirk's requirement(s); every other
    requirement of the test passes, is not reached or is not applicable; no harness error.
    A MAY is never red: its quirk must make it *not offered* instead."""
    path, function, _ = suite_test(ref)
    run = run_suites(pytester, [f"{path}::{function}"], quirks=[quirk], extra=extra)
    wanted = set(QUIRKS[quirk].requirements)
    assert not run.errors(), f"{ref} had a harness error with {quirk}:\n{run.shown()}"
    mays = {r for r in wanted if REGISTRY[r].level is Level.MAY}
    for req in mays:
        assert run.verdicts.get(req) == "not_offered", f"{ref} with {quirk}: {req} not 'not offered'\n{run.shown()}"
    expected = wanted - mays
    assert run.red() == expected, (
        f"{ref} with {quirk}: red {sorted(run.red())}, expected exactly {sorted(expected)}\n{run.shown()}"
    )
    others = {r: v for r, v in run.verdicts.items() if r not in wanted and v not in NOT_RED}
    assert not others, f"{ref} with {quirk}: {others}"


#: Kept under its old name for the tables that call it.
assert_fails_with = assert_only_its_requirement_red
