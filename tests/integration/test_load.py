"""`mailharness load` against the embedded reference agents: a short bounded run delivers every
accepted message once and intact; with the agents losing mail after the 250, the run names
HANDOFF-RESPONSIBILITY and nothing else, and exits 1; bad options are one line and exit 2."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from harness.load.runner import LoadOptions, run_load
from mailharness.embedded import embedded_target

MAILHARNESS = [sys.executable, "-m", "mailharness.cli"]


def test_a_short_run_delivers_every_accepted_message_once() -> None:
    with embedded_target(prefix="mailharness-load-test-") as target:
        out = io.StringIO()
        result = run_load(target, LoadOptions(duration=10, max_messages=60, senders=3),
                          out=out)
    counts = result.ledger.counts()
    assert result.ok, result.summary()
    assert counts["accepted"] == 60 and counts["delivered"] == 60
    assert counts["duplicates"] == 0 and counts["refused"] == 0
    assert result.ledger.latency["delivery"].count == 60
    assert result.ledger.latency["imap"].count > 0
    data = result.to_json()
    assert data["counts"]["violations"] == 0 and data["latency"]["submit"]["p99"] > 0
    assert "load: no invariant violated" in result.summary()


def test_mx_injectors_alone_deliver_unauthenticated_mail_once() -> None:
    with embedded_target(prefix="mailharness-load-test-") as target:
        result = run_load(target, LoadOptions(duration=10, max_messages=30, senders=0,
                                              injectors=2), out=io.StringIO())
    counts = result.ledger.counts()
    assert result.ok, result.summary()
    assert counts["accepted"] == 30 and counts["delivered"] == 30 and counts["errors"] == 0


def test_mail_lost_after_the_250_is_named_and_fails_the_run(tmp_path: Path) -> None:
    results = tmp_path / "load.json"
    done = subprocess.run([*MAILHARNESS, "load", "--quirk", "mta_lose_after_accept",
                           "--duration", "5", "--max-messages", "10", "--delivery-timeout", "2",
                           "--json", str(results), "--report", str(tmp_path / "load.html")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "HANDOFF-RESPONSIBILITY" in (tmp_path / "load.html").read_text()
    data = json.loads(results.read_text())
    assert data["counts"]["accepted"] == 10 and data["counts"]["delivered"] == 0
    assert {v["requirement"] for v in data["violations"]} == {"HANDOFF-RESPONSIBILITY"}
    assert len(data["violations"]) == 10
    assert "VIOLATION HANDOFF-RESPONSIBILITY: 10" in done.stdout


def test_bad_options_are_one_line(tmp_path: Path) -> None:
    for args, problem in ((["--duration", "0"], "must be positive"),
                          (["--senders", "0"], "at least one sender or injector"),
                          (["--target", str(tmp_path / "none.toml")], "none.toml"),
                          (["--quirk", "no_such_quirk"], "no_such_quirk")):
        done = subprocess.run([*MAILHARNESS, "load", *args], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 2, (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and problem in lines[0], (args, done.stderr)


def test_a_profile_sets_the_mix_and_options_given_win(tmp_path: Path) -> None:
    profile = tmp_path / "profile.toml"
    profile.write_text("[load]\nduration = 20\nmax_messages = 500\nsenders = 2\nmanagers = 1\n"
                       "sizes = [[300, 1], [40000, 1]]\n", encoding="utf-8")
    results = tmp_path / "load.json"
    done = subprocess.run([*MAILHARNESS, "load", "--profile", str(profile), "--max-messages",
                           "16", "--json", str(results), "--report", str(tmp_path / "l.html")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(results.read_text())
    assert data["counts"]["accepted"] == 16 == data["counts"]["delivered"]  # --max-messages won
    bad = tmp_path / "bad.toml"
    bad.write_text("[load]\nsenders = \"many\"\n", encoding="utf-8")
    done = subprocess.run([*MAILHARNESS, "load", "--profile", str(bad)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"mailharness load: {bad}: load.senders: must be an integer"]
