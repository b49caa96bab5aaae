"""`mailharness check` (and `run`, its alias): the progress per flow step, the one-screen summary
with the failed MUSTs by requirement id and RFC section, the exit status by policy, and a JUnit
file whose test names carry the requirement ids."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

MAILHARNESS = [sys.executable, "-m", "mailharness.cli"]
#: Two tests of step 2 that AUTH-ONCE's quirk reaches (one red, one green).
SELECTION = "test_smtp_second_auth_is_503 or test_wrong_password_is_refused"


def _check(tmp_path: Path, command: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MAILHARNESS, command, "--report", str(tmp_path / "r.html"), *extra],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)


def test_check_summary_names_the_failed_must_and_exits_1(tmp_path: Path) -> None:
    done = _check(tmp_path, "check", "--quirk", "msa_auth_twice", "--", "-k", SELECTION)
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert out.startswith("mailharness check: reference agents"), out
    row = re.search(r"^2 authenticate \(MSA\)\s*│\s*(\d+)\s*│\s*(\d+)\s*│\s*(\d+)$", out, re.M)
    assert row is not None, out
    assert int(row.group(2)) == 1 and int(row.group(1)) >= 1, out
    failure = re.search(r"^  AUTH-ONCE\s+MUST\s+RFC 4954 §4\s+\S*test_smtp_second_auth_is_503$",
                        out, re.M)
    assert failure is not None, out
    assert "1 failed MUST requirement(s):" in out
    assert f"report: {tmp_path / 'r.html'}" in out and "verdict: FAIL (--fail-on must, exit status 1)" in out
    # The progress (stderr): a bar per step with the tests done of the tests collected.
    assert re.search(r"2 authenticate \(MSA\).*2/2\s+1 failed", done.stderr), done.stderr
    assert (tmp_path / "r.html").stat().st_size > 0 and (tmp_path / "r.json").stat().st_size > 0
    cases = {case.get("name", ""): case for case in
             ET.parse(tmp_path / "r.junit.xml").getroot().iter("testcase")}
    red = cases["test_smtp_second_auth_is_503 [AUTH-ONCE]"]
    assert red.find("failure") is not None
    props = {p.get("name"): p.get("value") for p in red.iter("property")}
    assert props == {"requirements": "AUTH-ONCE", "verdict AUTH-ONCE": "fail"}
    assert len(out.splitlines()) < 25  # one screen


def test_run_is_check_and_exits_0_when_green(tmp_path: Path) -> None:
    done = _check(tmp_path, "run", "--", "-k", "test_wrong_password_is_refused")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verdict: PASS (--fail-on must, exit status 0)" in done.stdout
    assert "failed MUST" not in done.stdout


def test_check_with_no_test_selected_says_so(tmp_path: Path) -> None:
    done = _check(tmp_path, "check", "--", "-k", "no_test_has_this_name")
    assert done.returncode == 5
    assert done.stderr.strip().splitlines()[-1] == "mailharness check: no test ran"
