"""`mailharness serve` as a separate process: same verdicts through a target file; clean errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import suites.flow

MAILHARNESS = [sys.executable, "-m", "mailharness.cli"]


def _wait_for(path: Path, process: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"serve exited early: {process.stderr.read() if process.stderr else ''}")
        if time.monotonic() > deadline:
            raise AssertionError("serve did not write its target file in time")
        time.sleep(0.05)


def test_serve_then_target_file_gives_same_verdicts(pytester: pytest.Pytester, tmp_path: Path) -> None:
    config = tmp_path / "serve.toml"
    config.write_text('standard_ports = false\ndns_port = 0\ndata_dir = "data"\n')
    target_file = tmp_path / "target.toml"
    process = subprocess.Popen(
        [*MAILHARNESS, "serve", "--config", str(config), "--target-file", str(target_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        _wait_for(target_file, process, 30)
        assert "embedded = false" in target_file.read_text()
        result = pytester.runpytest_inprocess(
            str(Path(suites.flow.__file__).parent), "--target", str(target_file),
            "-p", "no:cacheprovider", "-q", "-o", "filterwarnings=error",
            "-W", "ignore::pytest.PytestAssertRewriteWarning",
        )
        outcomes = result.parseoutcomes()
    finally:
        os.kill(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "Ctrl-C stops" in out
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, result.stdout.str()[-3000:]
    assert outcomes.get("passed", 0) >= 30
    assert (tmp_path / "data" / "example.net" / "mail").is_dir()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("dns_port = 'x'\n", "dns_port"),
        ("quirks = ['no_such_quirk']\n", "no_such_quirk"),
        ("colour = 'blue'\n", "unknown key 'colour'"),
        ("retry_schedule = []\n", "retry_schedule"),
        ("delivery_nice = 20\n", "delivery_nice"),
        ("outbound_session_cache = -1\n", "outbound_session_cache"),
        ("[[accounts]]\nuser = 'x@example.org'\n", "password is missing"),
        ("this is not toml\n", "not valid TOML"),
        ("base_port = 80\n", "base_port"),
        ("base_port = 65000\n", "base_port"),
        ("base_port = 20000\nstandard_ports = true\n", "exclude each other"),
    ],
)
def test_bad_serve_config_is_one_line(tmp_path: Path, text: str, problem: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    done = subprocess.run([*MAILHARNESS, "serve", "--config", str(config)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(config) in lines[0] and problem in lines[0], done.stderr


def test_bad_target_file_is_one_line(tmp_path: Path) -> None:
    target = tmp_path / "target.toml"
    target.write_text('name = "x"\n[sender]\ndomain = "example.org"\nsubmission = "smtp://mail.example.org:587"\n')
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "suites", "--target", str(target), "-p", "no:cacheprovider"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 4  # pytest's usage error
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "host names are not resolved" in errors[0], done.stderr


def test_ca_print_target_and_one_serve_per_data_dir(tmp_path: Path) -> None:
    """`mailharness ca` prints the CA path (made before the first start, and the one serve then
    uses); `serve --print-target` prints the target file serve wrote; a second serve on the same
    data directory is refused in one line with the first one's pid."""
    config = tmp_path / "serve.toml"
    config.write_text('standard_ports = false\ndns_port = 0\ndata_dir = "data"\n')
    none = subprocess.run([*MAILHARNESS, "serve", "--config", str(config), "--print-target"],
                          capture_output=True, text=True, timeout=30)
    assert none.returncode == 2 and len(none.stderr.strip().splitlines()) == 1, none.stderr
    ca = subprocess.run([*MAILHARNESS, "ca", "--config", str(config)],
                        capture_output=True, text=True, timeout=30)
    assert ca.returncode == 0, ca.stderr
    ca_path = Path(ca.stdout.strip())
    assert ca_path == (tmp_path / "data" / "tls" / "ca.pem").resolve()
    ca_pem = ca_path.read_bytes()
    target_file = tmp_path / "data" / "target.toml"
    process = subprocess.Popen([*MAILHARNESS, "serve", "--config", str(config)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(target_file, process, 30)
        shown = subprocess.run([*MAILHARNESS, "serve", "--config", str(config), "--print-target"],
                               capture_output=True, text=True, timeout=30)
        assert shown.returncode == 0 and shown.stdout == target_file.read_text(), shown.stderr
        assert shown.stderr == ""  # running: no note about a stale file
        second = subprocess.run([*MAILHARNESS, "serve", "--config", str(config)],
                                capture_output=True, text=True, timeout=30)
        assert second.returncode == 2
        assert second.stderr.strip().splitlines() == [
            f"mailharness serve: {tmp_path / 'data'}: in use by `mailharness serve` (pid "
            f"{process.pid}); stop it or give another --data-dir"]
    finally:
        os.kill(process.pid, signal.SIGINT)
        process.communicate(timeout=30)
    assert ca_path.read_bytes() == ca_pem
    stale = subprocess.run([*MAILHARNESS, "serve", "--config", str(config), "--print-target"],
                           capture_output=True, text=True, timeout=30)
    assert stale.returncode == 0 and "not running" in stale.stderr
