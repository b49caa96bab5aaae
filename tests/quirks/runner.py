"""Run one suite test against the embedded reference agents with a quirk on, and read its outcome."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest


def suite_test(ref: str) -> tuple[Path, str, set[str]]:
    """``"flow.test_1_submit:test_greeting_is_220"`` → (file, function, requirement ids)."""
    module_name, function = ref.split(":")
    module = importlib.import_module(f"suites.{module_name}")
    func = getattr(module, function)
    marks = getattr(func, "pytestmark", [])
    requirements = {a for m in marks if m.name == "requirement" for a in m.args}
    return Path(module.__file__ or ""), function, requirements


def outcomes_with_quirk(
    pytester: pytest.Pytester, ref: str, quirks: list[str], *extra: str
) -> dict[str, int]:
    path, function, _ = suite_test(ref)
    args = [f"{path}::{function}", "--delivery-timeout", "3", "-p", "no:cacheprovider", "-q",
            "-o", "filterwarnings=error", "-W", "ignore::pytest.PytestAssertRewriteWarning",
            "--hypothesis-seed=0", *extra]
    for quirk in quirks:
        args += ["--quirk", quirk]
    return pytester.runpytest_inprocess(*args).parseoutcomes()


def assert_fails_with(pytester: pytest.Pytester, ref: str, quirk: str, *extra: str) -> None:
    outcomes = outcomes_with_quirk(pytester, ref, [quirk], *extra)
    assert outcomes.get("failed", 0) >= 1, f"{ref} did not fail with {quirk}: {outcomes}"
    assert outcomes.get("passed", 0) == 0, f"{ref} partly passed with {quirk}: {outcomes}"
