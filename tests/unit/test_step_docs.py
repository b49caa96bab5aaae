"""docs/steps/: the per-step pages are what `mailharness docs` generates from the registry, the
quotes and the suites (a registry, quote, suite or quirk change comes with its pages); every
quote names a requirement, and, where the RFC texts are at hand, is found verbatim in the
section its requirement cites."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.requirements import REGISTRY
from mailharness.steps_doc import quotes

ROOT = Path(__file__).resolve().parents[2]
#: The RFC texts the quotes were taken from (outside the repository; tools/rfc_quotes.py).
RFC_DIR = ROOT.parent / "shared" / "rfc"


def test_the_committed_pages_are_up_to_date() -> None:
    done = subprocess.run([sys.executable, "-m", "mailharness.cli", "docs", "--check"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr + done.stdout


def test_every_quote_names_a_requirement_and_is_one_sentence_or_two() -> None:
    said = quotes()
    assert said, "no quotes"
    assert set(said) <= set(REGISTRY), sorted(set(said) - set(REGISTRY))
    assert all(20 <= len(q) <= 700 and "\n" not in q for q in said.values())


def test_every_quote_is_in_its_section() -> None:
    if not RFC_DIR.is_dir():
        pytest.skip(f"no RFC texts at {RFC_DIR}")
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import rfc_quotes
    finally:
        sys.path.pop(0)
    assert rfc_quotes.check(RFC_DIR, quotes()) == []
