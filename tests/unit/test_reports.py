"""Tests for the results document (schema, verdicts, loading) and the HTML report."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from harness.requirements import REGISTRY, STEPS
from reports.html import render_html, visible, write_report
from reports.results import (
    SCHEMA,
    RequirementDoc,
    ResultsError,
    RunResults,
    StepDoc,
    TestResult,
    TranscriptDoc,
    TranscriptEntryDoc,
    VerdictDoc,
    decode_wire,
    load_results,
    requirements_from_registry,
    results_from_json,
    results_to_json,
    steps_from_registry,
)

T0 = 1_700_000_000.0


def make_test(
    name: str,
    outcome: str,
    requirements: tuple[str, ...] = (),
    *,
    step: int | None = None,
    message: str = "",
    longrepr: str = "",
    transcripts: tuple[TranscriptDoc, ...] = (),
) -> TestResult:
    return TestResult(
        nodeid=f"suites/test_x.py::{name}",
        name=name,
        outcome=outcome,
        requirements=requirements,
        step=step,
        duration=0.25,
        message=message,
        longrepr=longrepr,
        transcripts=transcripts,
    )


def make_run(name: str, tests: tuple[TestResult, ...]) -> RunResults:
    return RunResults(
        target_name=name,
        target_description=f"description of {name}",
        started="2024-05-01T12:00:00+00:00",
        duration=12.5,
        tests=tests,
        requirements=requirements_from_registry(),
        steps=steps_from_registry(),
        environment={"python": "3.11.9", "mailharness": "0.1.0"},
    )


EVIL = "<script>alert('x')</script>"

SMTP_TRANSCRIPT = TranscriptDoc(
    name="smtp 127.0.0.2:587",
    entries=(
        TranscriptEntryDoc("*", T0, "connected to 127.0.0.2:587"),
        TranscriptEntryDoc("S", T0 + 0.012, f"554 go away {EVIL}\r\n"),
        TranscriptEntryDoc("C", T0 + 0.020, "EHLO client.example.org\r\n"),
        TranscriptEntryDoc("S", T0 + 0.031, "250-mail.example.org\r\n250 SIZE 1000\x00\r\n"),
        TranscriptEntryDoc("*", T0 + 1.5, "connection closed"),
    ),
)


def passing_run() -> RunResults:
    tests = tuple(
        make_test(f"test_{req.id.lower().replace('-', '_')}", "passed", (req.id,), step=req.step)
        for req in REGISTRY.values()
    )
    return make_run("all good", tests)


def failing_run() -> RunResults:
    return make_run(
        "quirky",
        (
            make_test(
                "test_greeting",
                "failed",
                ("SMTP-GREETING-220",),
                step=1,
                message="expected 220, got 554",
                longrepr="E   AssertionError: expected 220, got 554\nsuites/step1/test_x.py:12",
                transcripts=(SMTP_TRANSCRIPT,),
            ),
            make_test("test_ehlo", "passed", ("SMTP-EHLO-250",), step=1),
            make_test("test_auth", "error", ("AUTH-REQUIRED",), step=2, message="fixture broke"),
            make_test(
                "test_mx", "skipped", ("MX-PREFERENCE",), step=4, message="target has no DNS control"
            ),
            make_test("test_idle", "xfailed", ("IMAP-IDLE",), step=9, message="known"),
            make_test("test_login", "passed", ("IMAP-LOGIN",), step=8),
        ),
    )


# --- results: verdicts --------------------------------------------------------------------


def test_summary_counts_every_outcome() -> None:
    summary = failing_run().summary()
    assert summary == {
        "passed": 2, "failed": 1, "skipped": 1, "error": 1, "xfailed": 1, "xpassed": 0,
    }


@pytest.mark.parametrize(
    ("outcomes", "verdict"),
    [
        ((), "untested"),
        (("passed",), "pass"),
        (("passed", "skipped"), "pass"),
        (("xpassed",), "pass"),
        (("passed", "failed"), "fail"),
        (("skipped", "error"), "not_reached"),
        (("error",), "not_reached"),
        (("skipped",), "not_applicable"),
        (("skipped", "xfailed"), "not_applicable"),
    ],
)
def test_requirement_verdict_of_tests_without_verdicts(outcomes: tuple[str, ...], verdict: str) -> None:
    tests = tuple(make_test(f"t{i}", o, ("IMAP-LOGIN",)) for i, o in enumerate(outcomes))
    other = make_test("other", "failed", ("IMAP-SELECT",))
    run = make_run("r", (*tests, other))
    assert run.requirement_verdict("IMAP-LOGIN") == verdict


def _verdict(req_id: str, verdict: str, detail: str = "") -> VerdictDoc:
    return VerdictDoc(id=req_id, verdict=verdict, detail=detail, checks=1)


def test_requirement_verdict_comes_from_the_tests_verdicts_not_its_outcome() -> None:
    # One failed test checked two requirements: only the one whose check failed is red.
    failed = replace(
        make_test("t", "failed", ("AUTH-ONCE", "SMTP-REPLY-CODES")),
        verdicts=(_verdict("AUTH-ONCE", "pass"), _verdict("SMTP-REPLY-CODES", "fail", "HELP: 250")),
    )
    run = make_run("r", (failed,))
    assert run.requirement_verdict("AUTH-ONCE") == "pass"
    assert run.requirement_verdict("SMTP-REPLY-CODES") == "fail"


@pytest.mark.parametrize(
    ("verdicts", "combined"),
    [
        (("pass", "not_reached"), "pass"),
        (("not_reached", "not_applicable"), "not_reached"),
        (("pass", "fail"), "fail"),
        (("not_offered", "offered"), "offered"),
        (("not_applicable",), "not_applicable"),
    ],
)
def test_verdicts_of_one_requirement_over_several_tests(
    verdicts: tuple[str, ...], combined: str
) -> None:
    tests = tuple(
        replace(make_test(f"t{i}", "passed", ("AUTH-ONCE",)), verdicts=(_verdict("AUTH-ONCE", v),))
        for i, v in enumerate(verdicts)
    )
    assert make_run("r", tests).requirement_verdict("AUTH-ONCE") == combined


def test_requirement_summary_counts_must_and_should_failures_apart() -> None:
    tests = (
        replace(make_test("a", "failed", ("SMTP-GREETING-220",)),
                verdicts=(_verdict("SMTP-GREETING-220", "fail"),)),
        replace(make_test("b", "failed", ("IMAP-BAD-COMMAND",)),
                verdicts=(_verdict("IMAP-BAD-COMMAND", "fail"),)),
        replace(make_test("c", "passed", ("SMTP-EHLO-250", "AUTH-FAILURE-THROTTLE")),
                verdicts=(_verdict("SMTP-EHLO-250", "pass"), _verdict("AUTH-FAILURE-THROTTLE", "not_offered"))),
    )
    run = make_run("r", tests)
    assert run.requirement_summary() == {"MUST fail": 1, "SHOULD fail": 1, "pass": 1, "not_offered": 1}
    assert run.step_verdict(1) == "fail"
    assert run.step_verdict(9) == "should"  # only a SHOULD of step 9 is red
    html = render_html([run])
    assert 'data-verdict="MUST fail">1 MUST fail' in html
    assert 'data-verdict="SHOULD fail">1 SHOULD fail' in html
    assert 'class="target-card v-fail"' in html


def test_step_verdict_uses_test_step_and_requirement_steps() -> None:
    run = make_run(
        "r",
        (
            make_test("a", "passed", ("IMAP-LOGIN",)),  # step 8 via its requirement
            make_test("b", "failed", ("TRANSFER-RETRY",), step=5),  # step 5
            make_test("c", "skipped", ("MX-PREFERENCE",)),  # step 4
            make_test("d", "failed", ("UNKNOWN-REQ",)),  # no step at all
        ),
    )
    assert run.step_verdict(8) == "pass"
    assert run.step_verdict(5) == "fail"
    assert run.step_verdict(4) == "skip"
    assert run.step_verdict(1) == "skip"


def test_registry_conversion_matches_registry() -> None:
    reqs = requirements_from_registry()
    assert [r.id for r in reqs] == list(REGISTRY)
    assert reqs[0].level in ("MUST", "SHOULD", "MAY")
    assert reqs[0].citation == REGISTRY[reqs[0].id].citation
    assert [s.number for s in steps_from_registry()] == [s.number for s in STEPS]


def test_decode_wire_keeps_bad_bytes_visible() -> None:
    assert decode_wire(b"250 ok\xff\r\n") == "250 ok\\xff\r\n"


# --- results: JSON ------------------------------------------------------------------------


def test_json_round_trip(tmp_path: Path) -> None:
    run = failing_run()
    text = results_to_json(run)
    doc = json.loads(text)
    assert doc["schema"] == SCHEMA
    path = tmp_path / "results.json"
    path.write_text(text, encoding="utf-8")
    assert load_results(path) == run


def test_json_round_trip_odd_text() -> None:
    odd = make_test("t", "failed", message="\udcff \x00 é ☃", step=None)
    run = make_run("r", (odd,))
    assert results_from_json(results_to_json(run)) == run


def _doc() -> dict[str, object]:
    loaded = json.loads(results_to_json(failing_run()))
    assert isinstance(loaded, dict)
    return loaded


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.update(schema="other/2"), "schema: expected 'mailharness.results/2'"),
        (lambda d: d.pop("target_name"), "target_name: missing"),
        (lambda d: d.update(duration="long"), "duration: expected a number, got a string"),
        (lambda d: d["tests"][0].update(outcome="won"), "tests[0].outcome: expected one of"),
        (
            lambda d: d["tests"][0]["transcripts"][0]["entries"][1].update(dir="X"),
            "tests[0].transcripts[0].entries[1].dir",
        ),
        (lambda d: d["requirements"][2].update(rfc="5321"), "requirements[2].rfc: expected an integer"),
        (lambda d: d.update(steps={}), "steps: expected a list, got an object"),
        (lambda d: d["tests"].append(3), "tests[6]: expected an object, got a number"),
        (lambda d: d.update(environment={"a": 1}), "environment: expected an object of strings"),
    ],
)
def test_bad_results_give_one_line_error(tmp_path: Path, mutate: object, expected: str) -> None:
    doc = _doc()
    assert callable(mutate)
    mutate(doc)
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ResultsError) as info:
        load_results(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert expected in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"{not json", "invalid JSON"),
        (b"[1, 2]", "expected a JSON object, got a list"),
        (b"\xff\xfe", "not UTF-8"),
        (b"{}", "schema: expected"),
    ],
)
def test_unreadable_results(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "r.json"
    path.write_bytes(content)
    with pytest.raises(ResultsError, match=re.escape(expected)) as info:
        load_results(path)
    assert "\n" not in str(info.value)


def test_missing_results_file(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="cannot read"):
        load_results(tmp_path / "absent.json")


# --- HTML ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report() -> str:
    return render_html([passing_run(), failing_run()])


def test_flow_diagram_has_nine_boxes_per_run(report: str) -> None:
    boxes = re.findall(r'<g class="step-box (v-\w+)" data-step="(\d)"', report)
    assert len(boxes) == 2 * len(STEPS)
    first, second = boxes[: len(STEPS)], boxes[len(STEPS) :]
    assert [int(n) for _, n in first] == [s.number for s in STEPS]
    assert all(cls == "v-pass" for cls, _ in first)
    verdicts = {int(n): cls for cls, n in second}
    assert verdicts[1] == "v-fail"  # greeting failed
    assert verdicts[2] == "v-skip"  # a harness error reds nothing: not reached
    assert verdicts[4] == "v-skip"  # only skipped
    assert verdicts[8] == "v-pass"
    assert verdicts[9] == "v-skip"  # only xfailed
    assert verdicts[3] == "v-skip"  # no tests


def test_matrix_has_one_row_per_requirement_and_a_column_per_run(report: str) -> None:
    rows = re.findall(r'<tr class="requirement" data-requirement="([^"]+)">(.*?)</tr>', report, re.S)
    assert [r for r, _ in rows] == sorted(REGISTRY, key=lambda i: REGISTRY[i].step)
    cells = dict(rows)
    assert re.findall(r'class="verdict (v-\w+)"', cells["SMTP-GREETING-220"]) == ["v-pass", "v-fail"]
    assert re.findall(r'class="verdict (v-\w+)"', cells["TRANSFER-RETRY"]) == ["v-pass", "v-untested"]
    assert "RFC 5321 §4.3.1" in cells["SMTP-GREETING-220"]
    assert report.count('<tr class="group" id="step-') == len(STEPS)


def test_failures_show_message_longrepr_and_escaped_transcript(report: str) -> None:
    assert report.count('<details class="failure"') == 2
    assert "expected 220, got 554" in report
    assert '<pre class="longrepr">E   AssertionError: expected 220, got 554' in report
    assert EVIL not in report
    assert "554 go away &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in report
    assert '<span class="who">C: </span>EHLO client.example.org' in report
    assert "250 SIZE 1000\\x00" in report  # control characters made visible
    assert "\x00" not in report
    assert "+1,500 ms" in report  # relative timestamps
    assert '<td class="note" colspan="2">connection closed</td>' in report


def test_skip_reason_shown(report: str) -> None:
    assert '<div class="reason">target has no DNS control</div>' in report


def test_report_is_self_contained(report: str) -> None:
    assert not re.search(r"https?:", report)
    assert not re.search(r"""(src|href)=["'](?!#)""", report)
    assert "@import" not in report


def test_user_urls_are_escaped_not_linked() -> None:
    run = make_run("r", (make_test("t", "failed", message="see http://evil.example/"),))
    html = render_html([run])
    assert "http://evil.example/" in html
    assert 'href="http' not in html


def test_header_names_targets_and_counts(report: str) -> None:
    assert "all good" in report and "quirky" in report
    assert "2024-05-01 12:00:00 UTC" in report
    assert '<span class="badge o-failed" data-outcome="failed">1 failed</span>' in report


def test_render_without_runs_or_registry_copies() -> None:
    empty = replace(make_run("bare", ()), requirements=(), steps=())
    html = render_html([empty], title="t <b>")
    assert "t &lt;b&gt;" in html
    assert html.count('class="step-box ') == len(STEPS)
    assert "No tests were run." in html


def test_custom_steps_and_unknown_requirement() -> None:
    steps = (StepDoc(1, "only", "MSA → MTA", "one step"),)
    reqs = (RequirementDoc("X-1", 1234, "5", "MAY", "text", 1, False, "cannot be tested"),)
    run = replace(make_run("r", (make_test("t", "passed", ("NOPE",)),)), steps=steps, requirements=reqs)
    html = render_html([run])
    assert html.count('class="step-box ') == 1
    assert "cannot be tested" in html


def test_write_report(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    write_report(path, [failing_run()])
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_visible() -> None:
    assert visible("a\tb\x1b[0m\x7f\ud800") == "a\tb\\x1b[0m\\x7f\\ud800"
