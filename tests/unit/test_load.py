"""The pieces of `mailharness load` that need no server: self-verifying messages, the latency
histogram, the ledger's invariants and the loopback rule."""

from __future__ import annotations

import random

import pytest

from harness.load.ledger import Histogram, Ledger
from harness.load.messages import inspect, make_message
from harness.load.runner import LoadError, check_addresses
from harness.targets import Endpoint, Target


def test_a_message_names_its_token_and_proves_its_body() -> None:
    message = make_message("tok-1", "a@example.org", "b@example.net", 1500, random.Random(1))
    assert 1100 < len(message) < 1700
    found = inspect(b"Received: from x\r\n" + message)  # trace fields above change nothing
    assert found is not None and found.token == "tok-1" and found.intact
    head, _, body = message.partition(b"\r\n\r\n")
    damaged = inspect(head + b"\r\n\r\n" + body.replace(b"mail", b"MAIL", 1))
    assert damaged is not None and not damaged.intact
    assert inspect(b"Subject: other mail\r\n\r\nbody\r\n") is None
    assert inspect(b"no header end") is None


def test_percentiles_are_within_the_bucket_width() -> None:
    histogram = Histogram()
    for ms in range(1, 1001):
        histogram.add(ms / 1000)
    summary = histogram.summary()
    assert summary["count"] == 1000 and summary["max"] == 1.0
    for share, exact in ((0.5, 0.5), (0.9, 0.9), (0.99, 0.99)):
        assert exact <= histogram.percentile(share) <= exact * 1.1 + 1e-9
    assert Histogram().percentile(0.5) == 0.0
    assert len(histogram.counts) == len(Histogram().counts)  # memory does not grow


def test_the_ledger_finds_lost_corrupt_and_duplicated_mail() -> None:
    now = [0.0]
    ledger = Ledger(clock=lambda: now[0])
    for token in ("a", "b", "c"):
        ledger.accepted(token, "bob@example.net", 0.01)
    ledger.refused("r")
    now[0] = 0.5
    ledger.found("a", "bob@example.net", 1, intact=True)
    ledger.found("a", "bob@example.net", 1, intact=True)  # read again: nothing new
    ledger.found("a", "bob@example.net", 7, intact=True)  # a second copy
    ledger.found("b", "bob@example.net", 2, intact=False)
    ledger.found("r", "bob@example.net", 3, intact=True)
    ledger.found("elsewhere", "bob@example.net", 4, intact=True)
    ledger.accepted("d", "bob@example.net", 0.01)
    ledger.found("d", "carol@example.org", 5, intact=True)  # the wrong mailbox
    ledger.found("d", "bob@example.net", 6, intact=True)  # and the right one: once there
    assert ledger.outstanding() == 1
    ledger.finish()
    counts = ledger.counts()
    assert (counts["accepted"], counts["delivered"], counts["duplicates"],
            counts["refused_but_arrived"]) == (4, 3, 1, 1)
    assert sorted((v.requirement, v.token) for v in ledger.violations) == [
        ("DELIVER-INTACT", "b"), ("DELIVER-ONCE", "a"), ("DELIVER-ONCE", "d"),
        ("DELIVER-ONCE", "r"), ("HANDOFF-RESPONSIBILITY", "c")]
    assert counts["violations"] == 5 and ledger.violation_counts["DELIVER-ONCE"] == 3
    assert ledger.latency["delivery"].count == 3
    assert ledger.latency["delivery"].maximum == pytest.approx(0.5)


def test_the_timeline_has_a_point_per_interval_with_its_latencies() -> None:
    now = [100.0]
    ledger = Ledger(clock=lambda: now[0], interval=2.0)
    ledger.accepted("a", "bob@example.net", 0.010)
    ledger.accepted("b", "bob@example.net", 0.030)
    now[0] = 103.0  # the second interval
    ledger.found("a", "bob@example.net", 1, intact=True)
    ledger.error("sender: refused")
    now[0] = 107.5  # the fourth; the third had nothing
    ledger.imap_command(0.002)
    timeline = ledger.timeline.to_json(now[0])
    assert timeline["interval"] == 2.0
    points = timeline["points"]
    assert [p["t"] for p in points] == [0.0, 2.0, 4.0, 6.0]
    assert [(p["accepted"], p["delivered"], p["errors"], p["imap"]) for p in points] == [
        (2, 0, 0, 0), (0, 1, 1, 0), (0, 0, 0, 0), (0, 0, 0, 1)]
    assert points[0]["latency"]["submit"]["max"] == pytest.approx(0.030)
    assert points[1]["latency"]["delivery"]["p50"] == pytest.approx(3.0, rel=0.1)
    assert points[2]["latency"] == {}
    histogram = ledger.latency["submit"].to_json()
    assert sum(histogram["counts"]) == 2 and histogram["growth"] == 1.1


def test_load_goes_to_loopback_unless_remote_is_allowed() -> None:
    def target(host: str) -> Target:
        from harness.targets import ProviderTarget

        provider = ProviderTarget(domain="example.org", submission=Endpoint("smtp", host, 587),
                                  submissions=None, mx=None, imap=None, imaps=None,
                                  outbound_port=None, accounts=())
        return Target(name="t", description="", sender=provider, receiver=provider, dns=None,
                      ca_file=None, tls_verify=False)

    check_addresses(target("127.0.0.2"), allow_remote=False)
    with pytest.raises(LoadError, match="--allow-remote"):
        check_addresses(target("192.0.2.1"), allow_remote=False)
    check_addresses(target("192.0.2.1"), allow_remote=True)


def test_a_delivered_message_is_remembered_for_the_duplicate_window_only() -> None:
    now = [0.0]
    ledger = Ledger(clock=lambda: now[0], duplicate_window=60.0)
    ledger.accepted("a", "bob@example.net", 0.01)
    ledger.found("a", "bob@example.net", 1, intact=True)
    now[0] = 30.0
    ledger.found("a", "bob@example.net", 2, intact=True)  # within the window: a copy
    ledger.found("a", "bob@example.net", 2, intact=True)  # the same copy, read again
    assert ledger.duplicates == 1 and ledger.violation_counts["DELIVER-ONCE"] == 1
    now[0] = 100.0
    ledger.accepted("b", "bob@example.net", 0.01)
    ledger.found("b", "bob@example.net", 3, intact=True)  # delivering b forgets a
    ledger.found("a", "bob@example.net", 4, intact=True)  # too late to be seen
    assert ledger.duplicates == 1 and len(ledger._delivered) == 1
    assert ledger.counts()["delivered"] == 2 and ledger.outstanding() == 0


def test_a_message_found_before_its_250_was_recorded_counts_when_it_is() -> None:
    """A server may store the message before it replies (RFC 5321 §4.2.5), and a reader in
    another thread may read it before the sender has recorded the 250: the find is held."""
    now = [0.0]
    ledger = Ledger(clock=lambda: now[0])
    ledger.found("early", "bob@example.net", 1, intact=True)
    ledger.found("refused-early", "bob@example.net", 2, intact=True)
    assert ledger.counts()["delivered"] == 0
    now[0] = 0.1
    ledger.accepted("early", "bob@example.net", 0.05)
    ledger.refused("refused-early")
    assert ledger.outstanding() == 0 and ledger.counts()["delivered"] == 1
    assert ledger.violation_counts == {"DELIVER-ONCE": 1}  # the refused one arrived
    ledger.found("elsewhere", "bob@example.net", 3, intact=True)
    now[0] = 1000.0  # another run's message is forgotten after EARLY_WINDOW
    ledger.found("later", "bob@example.net", 4, intact=True)
    assert list(ledger._early) == ["later"]
