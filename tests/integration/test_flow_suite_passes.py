"""The whole flow suite passes against the embedded reference agents, and the report is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import suites.flow


def test_flow_suite_is_green_and_reported(pytester: pytest.Pytester, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    result = pytester.runpytest_inprocess(
        str(Path(suites.flow.__file__).parent), "--report", str(report),
        "-p", "no:cacheprovider", "-q", "-o", "filterwarnings=error", "-W", "ignore::pytest.PytestAssertRewriteWarning",
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, result.stdout.str()[-3000:]
    assert outcomes.get("passed", 0) >= 30
    data = json.loads(report.with_suffix(".json").read_text())
    verdicts = {t["outcome"] for t in data["tests"]}
    assert verdicts == {"passed"}
    html = report.read_text()
    assert "<html" in html.lower()
