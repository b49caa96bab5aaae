"""docs/ci/github-actions.yml: the mailharness command it runs is one the CLI takes, it gates on
MUST failures, and it keeps the report, the JSON and the JUnit file as artifacts."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from mailharness.cli import build_parser

WORKFLOW = Path(__file__).resolve().parents[2] / "docs" / "ci" / "github-actions.yml"


def _folded_runs(text: str) -> list[str]:
    """The `run: >-` blocks, folded into one line each (YAML folded scalars)."""
    runs, lines = [], text.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"\s*run: >-\s*$", line):
            indent, block = None, []
            for follow in lines[i + 1:]:
                if not follow.strip():
                    break
                depth = len(follow) - len(follow.lstrip())
                indent = depth if indent is None else indent
                if depth < indent:
                    break
                block.append(follow.strip())
            runs.append(" ".join(block))
    return runs


def test_the_workflow_runs_a_check_the_cli_accepts_and_keeps_the_reports() -> None:
    text = WORKFLOW.read_text()
    checks = [r for r in _folded_runs(text) if r.startswith("mailharness check")]
    assert len(checks) == 1, _folded_runs(text)
    argv = shlex.split(checks[0])[1:]
    args = build_parser().parse_args(argv)
    assert args.command == "check" and args.target and args.fail_on == "must"
    report = Path(args.report)
    for kept in (report, report.with_suffix(".json"), report.with_suffix(".junit.xml")):
        assert re.search(rf"^\s+{re.escape(str(kept))}$", text, re.M), kept
    assert "uses: actions/upload-artifact@" in text and "if: always()" in text
    assert re.search(r"^    services:\n      mail:\n        image: ", text, re.M)
    assert "python-version: \"3.11\"" in text
