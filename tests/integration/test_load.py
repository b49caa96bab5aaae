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


def test_ctrl_c_ends_the_load_and_still_writes_the_results(tmp_path: Path) -> None:
    import signal
    import threading

    results, report = tmp_path / "load.json", tmp_path / "load.html"
    process = subprocess.Popen([*MAILHARNESS, "load", "--duration", "120", "--json", str(results),
                                "--report", str(report)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    started = threading.Event()

    def watch() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            if line.startswith("load "):  # the first progress line: the load is running
                started.set()

    threading.Thread(target=watch, daemon=True).start()
    try:
        assert started.wait(60), "no progress line"
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, out
    data = json.loads(results.read_text())
    assert data["interrupted"] is True and data["seconds"] < 60
    assert data["counts"]["violations"] == 0
    assert "(interrupted)" in out and report.read_text().startswith("<!DOCTYPE html>")


def test_a_target_that_refuses_connections_is_measured_not_run_into(tmp_path: Path) -> None:
    import dataclasses
    import socket

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        closed = free.getsockname()[1]
    with embedded_target(prefix="mailharness-load-test-") as live:
        submission = live.sender.submission
        assert submission is not None
        sender = dataclasses.replace(live.sender, submission=dataclasses.replace(
            submission, port=closed))
        target = dataclasses.replace(live, sender=sender)
        result = run_load(target, LoadOptions(duration=3, max_messages=50, senders=2,
                                              managers_per_mailbox=0, delivery_timeout=1),
                          out=io.StringIO())
    counts = result.ledger.counts()
    assert counts["accepted"] == 0 and result.ok
    refused = sum(n for kind, n in result.ledger.errors.items() if kind.startswith("sender:"))
    # Back-off: two senders doubling their wait from 0.1 s reach at most a few tries in 3 s.
    assert 2 <= refused <= 30, dict(result.ledger.errors)
    assert result.seconds < 10


def test_a_rate_paces_the_senders_over_one_schedule() -> None:
    with embedded_target(prefix="mailharness-load-test-") as target:
        result = run_load(target, LoadOptions(duration=3, senders=4, rate=10,
                                              managers_per_mailbox=0), out=io.StringIO())
    accepted = result.ledger.counts()["accepted"]
    # One slot every 0.1 s whatever the number of senders: at most 31 in 3 s (and some).
    assert 5 <= accepted <= 31, accepted
    assert result.ok, result.summary()
