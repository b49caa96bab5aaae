"""Without DNS control the relay checks still judge: a recipient for a foreign domain answered
250 to an unauthenticated client reds ROUTE-NO-OPEN-RELAY on the MX, by the RCPT reply alone.
Shown against the reference agents through a target file with update = false."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.targets import dump_target, load_target
from reference_agents.topology import TopologySettings, TopologyThread

RELAY = Path(__file__).resolve().parents[2] / "suites" / "security" / "test_smtp_relay.py"


@pytest.fixture(scope="module", params=[(), ("mta_open_relay",)], ids=["plain", "mta_open_relay"])
def target_without_dns(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    data_dir = tmp_path_factory.mktemp("relay-agents")
    runner = TopologyThread(TopologySettings(data_dir=data_dir, quirks=frozenset(request.param)))
    target = runner.start()
    try:
        assert target.dns is not None
        path = data_dir / "target.toml"
        path.write_text(dump_target(dataclasses.replace(target, dns=dataclasses.replace(target.dns, update=False))),
                        encoding="utf-8")
        assert not load_target(path).dns.update  # type: ignore[union-attr]
        yield path
    finally:
        runner.stop()


def test_relay_judged_by_the_rcpt_reply(pytester: pytest.Pytester, target_without_dns: Path) -> None:
    out = pytester.path / "results.json"
    pytester.runpytest_inprocess(
        str(RELAY), "--target", str(target_without_dns), "-p", "no:cacheprovider",
        "-W", "ignore::pytest.PytestAssertRewriteWarning", "--results-json", str(out),
    )
    doc = json.loads(out.read_text(encoding="utf-8"))
    verdicts = {(t["nodeid"].rsplit("_", 1)[-1], v["id"]): v["verdict"] for t in doc["tests"] for v in t["verdicts"]}
    quirk = "mta_open_relay" in target_without_dns.read_text(encoding="utf-8")
    assert verdicts == {
        ("mx", "ROUTE-NO-OPEN-RELAY"): "fail" if quirk else "pass",
        ("mx", "RELAY-ADDRESS-FORMS"): "not_reached" if quirk else "pass",
        ("submission", "AUTH-REQUIRED"): "pass",
        ("submission", "RELAY-ADDRESS-FORMS"): "pass",
    }, verdicts
    if quirk:
        # Judged by the reply to a recipient at the reserved foreign domain, not by a sink.
        message = next(t["message"] for t in doc["tests"] if t["outcome"] == "failed")
        assert "RCPT TO:<victim@example.com>" in message and "answered 250" in message, message
