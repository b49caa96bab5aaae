"""A target without TLS (the usual development and CI setup on loopback) can be tested with
allow_plaintext = true: the suites LOGIN and AUTH in plain text, and every TLS check is not
applicable with that reason. Shown against the reference agents with TLS turned off."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.requirements import TLS_REQUIREMENTS
from harness.targets import dump_target, load_target
from reference_agents.topology import TopologySettings, TopologyThread

SUITES = Path(__file__).resolve().parents[2] / "suites"
#: Enough of the flow and of IMAP to show every step runs in plain text.
SELECTION = (
    "flow/test_1_submit.py", "flow/test_2_authenticate.py", "flow/test_8_login.py",
    "flow/test_9_read.py", "imap/test_imap_fetch.py", "imap/test_imap_auth.py",
)


@pytest.fixture(scope="module")
def plaintext_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    data_dir = tmp_path_factory.mktemp("plaintext-agents")
    runner = TopologyThread(TopologySettings(data_dir=data_dir, tls=False))
    target = runner.start()
    try:
        assert target.allow_plaintext and target.sender.submissions is None and target.receiver.imaps is None
        path = data_dir / "target.toml"
        path.write_text(dump_target(target), encoding="utf-8")
        yield path
    finally:
        runner.stop()


def _run(pytester: pytest.Pytester, target_file: Path, *extra: str) -> tuple[int, dict[str, object]]:
    out = pytester.path / "results.json"
    result = pytester.runpytest_inprocess(
        *(str(SUITES / s) for s in SELECTION), "--target", str(target_file), "-p", "no:cacheprovider",
        "-W", "ignore::pytest.PytestAssertRewriteWarning", "--delivery-timeout", "10",
        "--results-json", str(out), *extra,
    )
    return int(result.ret), json.loads(out.read_text(encoding="utf-8"))


def test_suites_run_in_plain_text_and_tls_checks_are_not_applicable(
    pytester: pytest.Pytester, plaintext_target: Path
) -> None:
    assert load_target(plaintext_target).allow_plaintext
    code, doc = _run(pytester, plaintext_target)
    verdicts: dict[str, set[str]] = {}
    for test in doc["tests"]:  # type: ignore[union-attr]
        for v in test["verdicts"]:
            verdicts.setdefault(v["id"], set()).add(v["verdict"])
    red = sorted(r for r, seen in verdicts.items() if "fail" in seen)
    assert not red, red
    tls = {r: seen for r, seen in verdicts.items() if r in TLS_REQUIREMENTS}
    assert tls and all(seen == {"not_applicable"} for seen in tls.values()), tls
    # LOGIN, FETCH and delivery all ran over plain text.
    for req in ("IMAP-LOGIN", "IMAP-FETCH-BODY", "AUTH-BAD-CREDENTIALS"):
        assert verdicts.get(req) == {"pass"}, (req, verdicts.get(req))
    assert any("allow_plaintext" in n for n in doc["notes"])  # type: ignore[union-attr]
    assert code == 0


def test_without_the_key_a_plaintext_server_is_refused_with_a_hint(
    pytester: pytest.Pytester, plaintext_target: Path
) -> None:
    text = plaintext_target.read_text(encoding="utf-8").replace("allow_plaintext = true", "allow_plaintext = false")
    strict = plaintext_target.with_name("strict.toml")
    strict.write_text(text, encoding="utf-8")
    _, doc = _run(pytester, strict, "-k", "fetch")
    reasons = {v["detail"] for t in doc["tests"] for v in t["verdicts"]}  # type: ignore[union-attr]
    assert any("allow_plaintext = true" in r for r in reasons), reasons
    outcomes = {t["outcome"] for t in doc["tests"]}  # type: ignore[union-attr]
    assert outcomes == {"skipped"}, outcomes
