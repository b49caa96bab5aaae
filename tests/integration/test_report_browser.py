"""The conformance report as a browser shows it: a real `mailharness check` run (one red MUST,
from a quirk) rendered by headless Chromium. The DOM Chromium builds (after the page's script
ran) has the flow diagram's nine steps with step 2 red, the matrix with the red requirement, and
the failure with its transcript; the screenshot shows the failure's red (the flow diagram's step
box, the headline's badge) in the upper half of the page.

Needs /usr/bin/chromium (Debian's chromium package; .ci/run installs it), skipped without."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.test_load_report_browser import CHROMIUM, Image, chromium, decode_png

MAILHARNESS = [sys.executable, "-m", "mailharness.cli"]
WINDOW = (1280, 1400)
#: The report's --fail and --fail-bg colours (reports/templates/report.html.j2).
FAIL, FAIL_BG = (0xCF, 0x22, 0x2E), (0xFF, 0xEB, 0xE9)

pytestmark = pytest.mark.timeout(600)


@dataclass(frozen=True)
class Report:
    path: Path
    work: Path


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Report]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (Debian's chromium package; .ci/run installs "
                    "it): the report cannot be rendered in a browser here")
    work = tmp_path_factory.mktemp("report-browser")
    path = work / "report.html"
    done = subprocess.run(
        [*MAILHARNESS, "check", "--report", str(path), "--quirk", "msa_auth_twice", "--",
         "-k", "test_smtp_second_auth_is_503 or test_wrong_password_is_refused"],
        capture_output=True, text=True, timeout=600, cwd=work)
    assert done.returncode == 1, done.stdout + done.stderr
    yield Report(path, work)


def test_the_dom_has_the_flow_the_matrix_and_the_failure(report: Report) -> None:
    done = chromium(report.work, "--dump-dom", report.path.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    boxes = dict(re.findall(r'<g class="step-box [^"]*" data-step="(\d)" data-verdict="(\w+)"', dom))
    assert sorted(boxes) == [str(n) for n in range(1, 10)], boxes
    assert boxes["2"] == "fail", boxes
    row = re.search(r'<tr class="requirement" data-requirement="AUTH-ONCE">(.*?)</tr>', dom, re.S)
    assert row is not None and 'class="verdict v-fail"' in row.group(1), row
    failures = dom[dom.index('<section id="failures">'):]
    failure = re.search(r'<details class="failure"[^>]*open[^>]*>(.*?)</details>', failures, re.S)
    assert failure is not None and "AUTH-ONCE" in failure.group(1)
    assert 'class="transcript' in failure.group(1) and "AUTH PLAIN" in failure.group(1)
    # The page's script ran: the outcome filters are shown.
    assert re.search(r'<div class="filter">', dom) and not re.search(r'<div class="filter" hidden', dom)


def test_the_red_step_is_drawn_at_the_top(report: Report) -> None:
    png = report.work / "report.png"
    done = chromium(report.work, f"--screenshot={png}", f"--window-size={WINDOW[0]},{WINDOW[1]}",
                    report.path.as_uri())
    assert png.exists() and png.stat().st_size, done.stderr[-2000:]
    image: Image = decode_png(png.read_bytes())
    assert (image.width, image.height) == WINDOW

    def pixels(colour: tuple[int, int, int], rows: range) -> int:
        count = 0
        for y in rows:
            row = image.row(y)
            count += sum(1 for x in range(0, len(row), 3)
                         if all(abs(row[x + i] - colour[i]) <= 8 for i in range(3)))
        return count

    top = range(0, WINDOW[1] // 2)
    # The red box: its pale fill and its red outline, in the upper half of the page.
    assert pixels(FAIL_BG, top) > 2000, "no red step box fill in the upper half"
    assert pixels(FAIL, top) > 200, "no red outline or text in the upper half"
