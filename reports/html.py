"""Render one or several runs as a self-contained HTML report (flow diagram, matrix, tests, failures)."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path

import jinja2

from reports.results import (
    OUTCOMES,
    RequirementDoc,
    RunResults,
    StepDoc,
    TestResult,
    TranscriptDoc,
    VerdictDoc,
    requirements_from_registry,
    steps_from_registry,
)

DEFAULT_TITLE = "mailharness conformance report"

# Flow diagram geometry (SVG user units; the drawing scales to the page width).
BOX_W = 120
GAP = 22
MARGIN = 2
NAME_WIDTH = 13  # characters per line of a step name before it wraps

_FAILING = frozenset({"failed", "error"})

#: The headline's verdict counts, in the order shown: label, CSS class.
HEADLINE: tuple[tuple[str, str], ...] = (
    ("MUST fail", "v-fail"), ("SHOULD fail", "v-should"), ("pass", "v-pass"),
    ("offered", "v-offered"), ("not_offered", "v-not_offered"), ("not_reached", "v-not_reached"),
    ("not_applicable", "v-not_applicable"),
)
_INVISIBLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def visible(text: str) -> str:
    """Control characters and lone surrogates as ``\\xNN`` / ``\\uNNNN``; tab and newline kept."""

    def show(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _INVISIBLE.sub(show, text)


@dataclass(frozen=True, slots=True)
class BoxLine:
    """One line of text in a step box: its CSS class, text and baseline."""

    cls: str
    text: str
    y: int


@dataclass(frozen=True, slots=True)
class StepBox:
    number: int
    lines: tuple[BoxLine, ...]
    verdict: str
    label: str
    tooltip: str
    x: int

    @property
    def center(self) -> int:
        return self.x + BOX_W // 2


@dataclass(frozen=True, slots=True)
class Flow:
    boxes: tuple[StepBox, ...]
    width: int
    height: int
    box_h: int
    box_w: int = BOX_W
    gap: int = GAP

    @property
    def mid(self) -> int:
        return MARGIN + self.box_h // 2

    @property
    def label_y(self) -> int:
        return MARGIN + self.box_h - 10


@dataclass(frozen=True, slots=True)
class Cell:
    verdict: str
    label: str
    tooltip: str


@dataclass(frozen=True, slots=True)
class MatrixRow:
    req: RequirementDoc
    cells: tuple[Cell, ...]


@dataclass(frozen=True, slots=True)
class MatrixGroup:
    anchor: str
    title: str
    subtitle: str
    rows: tuple[MatrixRow, ...]


@dataclass(frozen=True, slots=True)
class Exchange:
    """One transcript entry, split into display lines."""

    dir: str
    offset: str
    lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TranscriptView:
    name: str
    exchanges: tuple[Exchange, ...]


@dataclass(frozen=True, slots=True)
class VerdictView:
    """One requirement's verdict in a failed test: the requirement, its verdict, the detail of
    the check that decided it, and (for a red one) the transcripts up to that check."""

    req: RequirementDoc | None
    doc: VerdictDoc
    css: str
    transcripts: tuple[TranscriptView, ...]


@dataclass(frozen=True, slots=True)
class FailureView:
    test: TestResult
    anchor: str
    requirements: tuple[RequirementDoc, ...]
    transcripts: tuple[TranscriptView, ...]
    verdicts: tuple[VerdictView, ...] = ()


@dataclass(frozen=True, slots=True)
class TestRow:
    __test__ = False  # not a pytest test class

    test: TestResult
    steps: str
    failure_anchor: str


@dataclass(frozen=True, slots=True)
class RunView:
    index: int
    anchor: str
    run: RunResults
    summary: tuple[tuple[str, int], ...]
    total: int
    overall: str
    started: str
    flow: Flow
    tests: tuple[TestRow, ...]
    failures: tuple[FailureView, ...]
    requirement_counts: tuple[tuple[str, int, str], ...] = ()
    harness_errors: int = 0


def _format_started(started: str) -> str:
    try:
        moment = datetime.fromisoformat(started)
    except ValueError:
        return started
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    offset = moment.utcoffset()
    if offset is not None:
        text += " UTC" if not offset else moment.strftime(" %z")
    return text


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _outcome_counts(tests: Iterable[TestResult]) -> str:
    counts: dict[str, int] = {}
    for test in tests:
        counts[test.outcome] = counts.get(test.outcome, 0) + 1
    return ", ".join(f"{counts[o]} {o}" for o in OUTCOMES if o in counts)


def _agent_lines(agent: str) -> tuple[str, ...]:
    head, arrow, tail = agent.partition(" → ")
    return (head + " →", tail) if arrow else (agent,)


def _box_lines(step: StepDoc) -> tuple[BoxLine, ...]:
    lines = [BoxLine("num", f"STEP {step.number}", MARGIN + 15)]
    y = MARGIN + 17
    for n, text in enumerate(textwrap.wrap(step.name, NAME_WIDTH) or [step.name]):
        y += 17 if n == 0 else 15
        lines.append(BoxLine("step-name", text, y))
    for n, text in enumerate(_agent_lines(step.agent)):
        y += 16 if n == 0 else 13
        lines.append(BoxLine("agent", text, y))
    return tuple(lines)


def _flow(run: RunResults, steps: Sequence[StepDoc]) -> Flow:
    boxes = []
    texts = [_box_lines(step) for step in steps]
    box_h = max((t[-1].y for t in texts), default=MARGIN + 40) - MARGIN + 26
    for i, step in enumerate(steps):
        tests = run.tests_for_step(step.number)
        verdict = run.step_verdict(step.number)
        if not tests:
            label = "no tests"
        elif verdict in ("fail", "should"):
            failing = sum(t.outcome in _FAILING for t in tests)
            word = "FAIL" if verdict == "fail" else "SHOULD"
            label = f"{word} · {failing} of {len(tests)}"
        else:
            label = f"{verdict.upper()} · {_plural(len(tests), 'test')}"
        tooltip = f"Step {step.number} — {step.name} ({step.agent}): {step.summary}"
        if tests:
            tooltip += f"\n{_outcome_counts(tests)}"
        boxes.append(
            StepBox(
                number=step.number,
                lines=texts[i],
                verdict=verdict,
                label=label,
                tooltip=tooltip,
                x=MARGIN + i * (BOX_W + GAP),
            )
        )
    width = 2 * MARGIN + len(steps) * BOX_W + max(len(steps) - 1, 0) * GAP
    return Flow(boxes=tuple(boxes), width=width, height=box_h + 2 * MARGIN, box_h=box_h)


def _offset_ms(t: float, t0: float) -> str:
    return f"+{(t - t0) * 1000:,.0f} ms"


def verdict_css(verdict: str, level: str) -> str:
    """The CSS class of a requirement verdict: a failed SHOULD has its own colour."""
    if verdict == "fail":
        return "v-should" if level == "SHOULD" else "v-fail"
    return f"v-{verdict}"


def _transcript(doc: TranscriptDoc, upto: int | None = None) -> TranscriptView:
    t0 = doc.entries[0].t if doc.entries else 0.0
    exchanges = []
    for entry in doc.entries[:upto]:
        data = entry.data.removesuffix("\n").removesuffix("\r")
        lines = tuple(visible(line.removesuffix("\r")) for line in data.split("\n"))
        exchanges.append(Exchange(dir=entry.dir, offset=_offset_ms(entry.t, t0), lines=lines))
    return TranscriptView(name=doc.name, exchanges=tuple(exchanges))


def _run_view(index: int, run: RunResults, steps: Sequence[StepDoc]) -> RunView:
    anchor = f"run-{index}"
    known = {r.id: r for r in run.requirements} or {r.id: r for r in requirements_from_registry()}
    failures = []
    rows = []
    for n, test in enumerate(run.tests):
        failure_anchor = ""
        if test.outcome in _FAILING:
            failure_anchor = f"{anchor}-failure-{n}"
            failures.append(
                FailureView(
                    test=test,
                    anchor=failure_anchor,
                    requirements=tuple(known[r] for r in test.requirements if r in known),
                    transcripts=tuple(_transcript(t) for t in test.transcripts),
                    verdicts=tuple(_verdict_view(test, v, known) for v in test.verdicts),
                )
            )
        test_steps = sorted(run.test_steps(test))
        rows.append(
            TestRow(test, ", ".join(str(s) for s in test_steps), failure_anchor)
        )
    counts = run.summary()
    req_counts = run.requirement_summary()
    errors = len(run.harness_errors())
    if req_counts.get("MUST fail") or errors:
        overall = "fail"
    elif req_counts.get("SHOULD fail"):
        overall = "should"
    elif counts.get("failed"):
        overall = "fail"  # a failed test with no requirement red: the dialogue ended early
    else:
        overall = "pass" if run.tests else "skip"
    return RunView(
        index=index,
        anchor=anchor,
        run=run,
        summary=tuple((o, counts[o]) for o in OUTCOMES if counts.get(o)),
        total=len(run.tests),
        overall=overall,
        started=_format_started(run.started),
        flow=_flow(run, steps),
        tests=tuple(rows),
        failures=tuple(failures),
        requirement_counts=tuple(
            (label.replace("_", " "), req_counts[label], css) for label, css in HEADLINE
            if req_counts.get(label)
        ),
        harness_errors=errors,
    )


def _verdict_view(test: TestResult, doc: VerdictDoc, known: dict[str, RequirementDoc]) -> VerdictView:
    req = known.get(doc.id)
    transcripts: tuple[TranscriptView, ...] = ()
    if doc.verdict == "fail":
        marks = {m.transcript: m.entries for m in doc.evidence}
        transcripts = tuple(
            _transcript(t, marks[i]) for i, t in enumerate(test.transcripts) if i in marks
        )
    return VerdictView(req, doc, verdict_css(doc.verdict, req.level if req else "MUST"), transcripts)


def _merged_steps(runs: Sequence[RunResults]) -> tuple[StepDoc, ...]:
    steps: dict[int, StepDoc] = {}
    for run in runs:
        for step in run.steps:
            steps.setdefault(step.number, step)
    if not steps:
        return steps_from_registry()
    return tuple(steps[n] for n in sorted(steps))


def _merged_requirements(runs: Sequence[RunResults]) -> tuple[RequirementDoc, ...]:
    reqs: dict[str, RequirementDoc] = {}
    for run in runs:
        for req in run.requirements:
            reqs.setdefault(req.id, req)
    if not reqs:
        return requirements_from_registry()
    return tuple(reqs.values())


def _cell(run: RunResults, req: RequirementDoc) -> Cell:
    tests = run.tests_for_requirement(req.id)
    verdict = run.requirement_verdict(req.id)
    if not tests:
        reason = req.untestable_reason if not req.testable else ""
        return Cell(verdict, "n/a" if reason else "untested", reason or "no test checks this")
    shown = verdict.replace("_", " ")
    label = shown if len(tests) == 1 else f"{shown} ({len(tests)})"
    lines = []
    for t in tests:
        doc = t.verdict_of(req.id)
        lines.append(f"{doc.verdict if doc else t.outcome}: {t.name}" + (f" — {doc.detail}" if doc and doc.detail else ""))
    return Cell(verdict_css(verdict, req.level).removeprefix("v-"), label, "\n".join(lines))


def _matrix(
    runs: Sequence[RunResults], steps: Sequence[StepDoc], reqs: Sequence[RequirementDoc]
) -> tuple[MatrixGroup, ...]:
    groups = []
    by_number = {s.number: s for s in steps}
    numbers = sorted({s.number for s in steps} | {r.step for r in reqs})
    for number in numbers:
        rows = tuple(
            MatrixRow(req, tuple(_cell(run, req) for run in runs))
            for req in reqs
            if req.step == number
        )
        if not rows:
            continue
        step = by_number.get(number)
        title = f"Step {number} — {step.name}" if step else f"Step {number}"
        groups.append(
            MatrixGroup(
                anchor=f"step-{number}",
                title=title,
                subtitle=f"{step.agent}: {step.summary}" if step else "",
                rows=rows,
            )
        )
    return tuple(groups)


def _template() -> jinja2.Template:
    env = jinja2.Environment(
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["visible"] = visible
    source = resources.files("reports").joinpath("templates/report.html.j2").read_text("utf-8")
    return env.from_string(source)


def render_html(runs: Sequence[RunResults], *, title: str = DEFAULT_TITLE) -> str:
    """The whole report as one HTML page: inline CSS and SVG, no external resources."""
    steps = _merged_steps(runs)
    reqs = _merged_requirements(runs)
    views = tuple(_run_view(i + 1, run, steps) for i, run in enumerate(runs))
    return _template().render(
        title=title,
        runs=views,
        steps=steps,
        matrix=_matrix(runs, steps, reqs),
        outcomes=OUTCOMES,
    )


def write_report(path: Path, runs: Sequence[RunResults]) -> None:
    """Write the report as UTF-8 (anything unencodable shown as a backslash escape), making
    the file's directory if it is not there yet."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(render_html(runs), encoding="utf-8", errors="backslashreplace")
