"""Verdicts per requirement inside a test (harness/checks.py), and the plugin that ends them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.checks import CheckFailed, Checks, NotOffered, Verdict, combine, fail
from harness.protocol.errors import IMAPSyntaxError, SMTPSyntaxError
from harness.suite import Evidence


def verdicts(checks: Checks, outcome: str, exc: BaseException | None = None, reason: str = "") -> dict[str, str]:
    return {v.id: v.verdict.value for v in checks.finish(outcome, exc, reason)}


def test_a_failed_check_reds_only_its_requirement_and_the_rest_are_not_reached() -> None:
    checks = Checks(("SMTP-EHLO-250", "AUTH-ONCE", "SMTP-QUIT"))
    checks.check("SMTP-EHLO-250", True, "EHLO 250")
    with pytest.raises(CheckFailed) as info:
        checks.check("AUTH-ONCE", False, "second AUTH answered 235")
    assert info.value.requirement == "AUTH-ONCE"
    assert verdicts(checks, "failed", info.value) == {
        "SMTP-EHLO-250": "pass", "AUTH-ONCE": "fail", "SMTP-QUIT": "not_reached",
    }


def test_the_failure_is_taken_from_the_exception_that_ended_the_test() -> None:
    # Hypothesis runs failing examples many times while it shrinks: a CheckFailed raised on
    # the way and caught must not red anything; the final one does.
    checks = Checks(("SMTP-COMMAND-ORDER", "SMTP-REPLY-CODES"))
    with pytest.raises(CheckFailed):
        checks.check("SMTP-COMMAND-ORDER", False, "an intermediate example")
    final = fail("SMTP-REPLY-CODES", "HELP answered 250")
    assert verdicts(checks, "failed", final) == {
        "SMTP-COMMAND-ORDER": "not_reached", "SMTP-REPLY-CODES": "fail",
    }


def test_distinct_failures_in_a_group_red_each_requirement() -> None:
    checks = Checks(("AUTH-ONCE", "SMTP-REPLY-CODES", "SMTP-QUIT"))
    group = ExceptionGroup("two", [fail("AUTH-ONCE", "235"), fail("SMTP-REPLY-CODES", "250")])
    assert verdicts(checks, "failed", group) == {
        "AUTH-ONCE": "fail", "SMTP-REPLY-CODES": "fail", "SMTP-QUIT": "not_reached",
    }


@pytest.mark.parametrize(
    ("error", "grammar"),
    [(SMTPSyntaxError("bad line", b"250 x\n"), "SMTP-REPLY-SYNTAX"),
     (IMAPSyntaxError("bad response", b"* OK [\r\n"), "IMAP-RESPONSE-SYNTAX")],
)
def test_a_malformed_reply_reds_the_grammar_requirement_only(error: Exception, grammar: str) -> None:
    checks = Checks(("SMTP-EHLO-250",))
    result = checks.finish("failed", error)
    assert {v.id: v.verdict for v in result} == {
        "SMTP-EHLO-250": Verdict.NOT_REACHED, grammar: Verdict.FAIL,
    }
    assert repr(error.data)[2:-1] in next(v.detail for v in result if v.id == grammar)


def test_a_skip_makes_the_open_requirements_not_applicable_with_the_reason() -> None:
    checks = Checks(("SMTP-EHLO-250", "STARTTLS-ONCE"))
    checks.check("SMTP-EHLO-250", True, "250")
    result = {v.id: v for v in checks.finish("skipped", None, "STARTTLS not offered")}
    assert result["SMTP-EHLO-250"].verdict is Verdict.PASS
    assert result["STARTTLS-ONCE"].verdict is Verdict.NOT_APPLICABLE
    assert result["STARTTLS-ONCE"].detail == "STARTTLS not offered"


def test_a_may_is_offered_or_not_offered_never_red() -> None:
    checks = Checks(("AUTH-FAILURE-THROTTLE",))
    with pytest.raises(NotOffered) as info:
        checks.check("AUTH-FAILURE-THROTTLE", False, "no delay after 5 failures")
    assert verdicts(checks, "passed", info.value) == {"AUTH-FAILURE-THROTTLE": "not_offered"}
    offered = Checks(("AUTH-FAILURE-THROTTLE",))
    offered.check("AUTH-FAILURE-THROTTLE", True, "delayed")
    assert verdicts(offered, "passed") == {"AUTH-FAILURE-THROTTLE": "offered"}


def test_a_harness_error_reds_nothing() -> None:
    checks = Checks(("SMTP-EHLO-250", "SMTP-QUIT"))
    checks.check("SMTP-EHLO-250", True, "250")
    result = {v.id: v for v in checks.finish("error", KeyError("oops"))}
    assert result["SMTP-EHLO-250"].verdict is Verdict.PASS
    assert result["SMTP-QUIT"].verdict is Verdict.NOT_REACHED
    assert "harness error" in result["SMTP-QUIT"].detail


def test_the_server_ending_the_dialogue_reds_the_one_open_requirement() -> None:
    checks = Checks(("SMTP-EHLO-250", "SMTP-QUIT"))
    checks.check("SMTP-EHLO-250", True, "250")
    assert verdicts(checks, "failed", ConnectionResetError("peer reset")) == {
        "SMTP-EHLO-250": "pass", "SMTP-QUIT": "fail",
    }
    two_open = Checks(("SMTP-EHLO-250", "SMTP-QUIT"))
    assert set(verdicts(two_open, "failed", ConnectionResetError("x")).values()) == {"not_reached"}


def test_a_passed_test_that_never_checked_a_named_requirement_leaves_it_not_reached() -> None:
    checks = Checks(("SMTP-EHLO-250", "SMTP-QUIT"))
    checks.check("SMTP-EHLO-250", True, "250")
    assert verdicts(checks, "passed")["SMTP-QUIT"] == "not_reached"
    # A test written with plain asserts only (no check at all) proves nothing by passing.
    assert verdicts(Checks(("SMTP-QUIT",)), "passed") == {"SMTP-QUIT": "not_reached"}


def test_unknown_requirement_in_a_check_is_an_error() -> None:
    with pytest.raises(KeyError, match="NO-SUCH-ID"):
        Checks(()).check("NO-SUCH-ID", True, "")


def test_a_check_records_where_in_the_transcripts_it_was_made() -> None:
    evidence = Evidence()
    transcript = evidence.transcript("smtp")
    transcript.server(b"220 hi\r\n")
    checks = Checks(("SMTP-GREETING-220",), evidence)
    checks.check("SMTP-GREETING-220", True, "220")
    transcript.client(b"QUIT\r\n")
    (result,) = checks.finish("passed", None)
    assert [(m.transcript, m.entries) for m in result.marks] == [(0, 1)]


def test_combine_prefers_fail_then_pass() -> None:
    assert combine([]) == "untested"
    assert combine(["not_reached", "pass"]) == "pass"
    assert combine(["pass", "fail", "offered"]) == "fail"


# --- through pytest --------------------------------------------------------------------------

SUITE = '''
import pytest
from harness.suite import check, need

@pytest.mark.requirement("SMTP-EHLO-250", "AUTH-ONCE", "SMTP-QUIT")
def test_must(evidence):
    check("SMTP-EHLO-250", True, "250")
    check("AUTH-ONCE", False, "second AUTH answered 235")
    check("SMTP-QUIT", True, "unreachable")

@pytest.mark.requirement("SMTP-EHLO-250", "IMAP-BAD-COMMAND")
def test_should(evidence):
    check("SMTP-EHLO-250", True, "250")
    check("IMAP-BAD-COMMAND", False, "garbage answered OK")

@pytest.mark.requirement("AUTH-FAILURE-THROTTLE")
def test_may(evidence):
    check("AUTH-FAILURE-THROTTLE", False, "no delay")

@pytest.mark.requirement("STARTTLS-ONCE")
def test_precondition(evidence):
    need(False, "server does not offer STARTTLS")

@pytest.mark.requirement("SMTP-QUIT")
def test_harness_bug(evidence):
    {}["missing"]
'''


def _run(pytester: pytest.Pytester, *args: str) -> tuple[int, dict[str, dict[str, str]], dict[str, str]]:
    pytester.makepyfile(test_suite=SUITE)
    out = pytester.path / "results.json"
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning",
        "--results-json", str(out), *args,
    )
    doc = json.loads(Path(out).read_text())
    tests = {t["name"]: {v["id"]: v["verdict"] for v in t["verdicts"]} for t in doc["tests"]}
    outcomes = {t["name"]: t["outcome"] for t in doc["tests"]}
    return int(result.ret), tests, outcomes


def test_the_plugin_writes_per_requirement_verdicts(pytester: pytest.Pytester) -> None:
    code, tests, outcomes = _run(pytester)
    assert tests["test_must"] == {"SMTP-EHLO-250": "pass", "AUTH-ONCE": "fail", "SMTP-QUIT": "not_reached"}
    assert tests["test_should"] == {"SMTP-EHLO-250": "pass", "IMAP-BAD-COMMAND": "fail"}
    assert tests["test_may"] == {"AUTH-FAILURE-THROTTLE": "not_offered"}
    assert tests["test_precondition"] == {"STARTTLS-ONCE": "not_applicable"}
    assert tests["test_harness_bug"] == {"SMTP-QUIT": "not_reached"}
    assert outcomes == {"test_must": "failed", "test_should": "failed", "test_may": "passed",
                        "test_precondition": "skipped", "test_harness_bug": "error"}
    assert code == 1


def test_fail_on_sets_the_exit_status(pytester: pytest.Pytester) -> None:
    # Without the MUST failure and the harness error, only a SHOULD is red: exit 0 under
    # --fail-on must, 1 under --fail-on should.
    code, _, _ = _run(pytester, "-k", "not must and not harness_bug and not precondition")
    assert code == 0
    code, _, _ = _run(pytester, "-k", "should or may", "--fail-on", "should")
    assert code == 1
