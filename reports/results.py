"""The results document (schema mailharness.results/1): dataclasses, verdicts, JSON writing and strict loading."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from harness.checks import PRECEDENCE, combine, summarise
from harness.errors import FileProblem
from harness.requirements import REGISTRY, STEPS

SCHEMA = "mailharness.results/2"

OUTCOMES: tuple[str, ...] = ("passed", "failed", "skipped", "error", "xfailed", "xpassed")
DIRECTIONS: tuple[str, ...] = ("C", "S", "*")
LEVELS: tuple[str, ...] = ("MUST", "SHOULD", "MAY")
#: Per-requirement verdicts inside a test (harness/checks.py).
VERDICTS: tuple[str, ...] = PRECEDENCE



class ResultsError(FileProblem):
    """A bad results file; ``str()`` is one line: ``<file>: <key>: <problem>``."""


def decode_wire(data: bytes) -> str:
    """Wire bytes as text for a transcript: UTF-8, undecodable bytes as ``\\xNN``."""
    return data.decode("utf-8", errors="backslashreplace")


@dataclass(frozen=True, slots=True)
class TranscriptEntryDoc:
    """One transcript entry: ``dir`` C (client→server), S (server→client) or * (note);
    ``t`` is ``time.time()``; ``data`` the bytes as text (see decode_wire)."""

    dir: str
    t: float
    data: str


@dataclass(frozen=True, slots=True)
class TranscriptDoc:
    name: str
    entries: tuple[TranscriptEntryDoc, ...]


@dataclass(frozen=True, slots=True)
class EvidenceMark:
    """The check was decided when transcript number ``transcript`` held ``entries`` entries."""

    transcript: int
    entries: int


@dataclass(frozen=True, slots=True)
class VerdictDoc:
    """One requirement's verdict in one test, with the detail of the check that decided it."""

    id: str
    verdict: str
    detail: str
    checks: int
    evidence: tuple[EvidenceMark, ...] = ()


@dataclass(frozen=True, slots=True)
class TestResult:
    """One pytest test. ``message`` is one line (failure summary or skip reason)."""

    __test__ = False  # not a pytest test class

    nodeid: str
    name: str
    outcome: str
    requirements: tuple[str, ...]
    step: int | None
    duration: float
    message: str
    longrepr: str
    transcripts: tuple[TranscriptDoc, ...] = ()
    verdicts: tuple[VerdictDoc, ...] = ()

    def verdict_of(self, req_id: str) -> VerdictDoc | None:
        return next((v for v in self.verdicts if v.id == req_id), None)

    def checked(self) -> tuple[str, ...]:
        """Every requirement this test has a verdict for (its own and any it checked on the way)."""
        ids = list(self.requirements)
        ids += [v.id for v in self.verdicts if v.id not in ids]
        return tuple(ids)


@dataclass(frozen=True, slots=True)
class RequirementDoc:
    id: str
    rfc: int
    section: str
    level: str
    text: str
    step: int
    testable: bool
    untestable_reason: str

    @property
    def citation(self) -> str:
        return f"RFC {self.rfc} §{self.section}"


@dataclass(frozen=True, slots=True)
class StepDoc:
    number: int
    name: str
    agent: str
    summary: str


def _legacy_verdict(outcome: str) -> str:
    """A verdict for a test without per-requirement verdicts, from its outcome."""
    return {"passed": "pass", "xpassed": "pass", "failed": "fail", "skipped": "not_applicable",
            "xfailed": "not_applicable"}.get(outcome, "not_reached")


@dataclass(frozen=True, slots=True)
class RunResults:
    """One run of the suites against one target."""

    target_name: str
    target_description: str
    started: str
    duration: float
    tests: tuple[TestResult, ...]
    requirements: tuple[RequirementDoc, ...]
    steps: tuple[StepDoc, ...]
    environment: dict[str, str] = field(default_factory=dict)
    #: What the headline must say about how the run was made (a plaintext target, ...).
    notes: tuple[str, ...] = ()

    def summary(self) -> dict[str, int]:
        """Number of tests per outcome (every outcome present, zeros included)."""
        counts = dict.fromkeys(OUTCOMES, 0)
        for test in self.tests:
            counts[test.outcome] = counts.get(test.outcome, 0) + 1
        return counts

    def tests_for_requirement(self, req_id: str) -> tuple[TestResult, ...]:
        return tuple(t for t in self.tests if req_id in t.checked())

    def requirement_verdict(self, req_id: str) -> str:
        """The requirement's verdict over every test that names it (see VERDICTS), or
        "untested" when none does."""
        seen = []
        for test in self.tests_for_requirement(req_id):
            doc = test.verdict_of(req_id)
            seen.append(doc.verdict if doc is not None else _legacy_verdict(test.outcome))
        return combine(seen)

    def requirement_summary(self) -> dict[str, int]:
        """How many requirements ended with each verdict; ``fail`` is split into ``MUST fail``,
        ``SHOULD fail`` (a MAY never fails)."""
        levels = {r.id: r.level for r in self.requirements}
        per_requirement = {req_id: [self.requirement_verdict(req_id)]
                           for req_id in dict.fromkeys(r for t in self.tests for r in t.checked())}
        return summarise(per_requirement, lambda r: levels.get(r, "MUST"))

    def harness_errors(self) -> tuple[TestResult, ...]:
        return tuple(t for t in self.tests if t.outcome == "error")

    def test_steps(self, test: TestResult) -> frozenset[int]:
        """The steps a test belongs to: its own step and the steps of its requirements."""
        req_steps = {r.id: r.step for r in self.requirements}
        steps = {req_steps[r] for r in test.requirements if r in req_steps}
        if test.step is not None:
            steps.add(test.step)
        return frozenset(steps)

    def tests_for_step(self, step: int) -> tuple[TestResult, ...]:
        return tuple(t for t in self.tests if step in self.test_steps(t))

    def step_verdict(self, step: int) -> str:
        """fail if a MUST of the step is red, should if only SHOULDs are; pass if one passed or
        was offered; else skip (nothing of the step could be checked)."""
        verdicts = {r.id: self.requirement_verdict(r.id) for r in self.requirements if r.step == step}
        seen = set(verdicts.values())
        if "fail" in seen:
            levels = {r.id: r.level for r in self.requirements}
            must = any(levels[i] == "MUST" for i, v in verdicts.items() if v == "fail")
            return "fail" if must else "should"
        if seen & {"pass", "offered", "not_offered"}:
            return "pass"
        return "skip"


def requirements_from_registry() -> tuple[RequirementDoc, ...]:
    return tuple(
        RequirementDoc(
            id=r.id,
            rfc=r.rfc,
            section=r.section,
            level=r.level.value,
            text=r.text,
            step=r.step,
            testable=r.testable,
            untestable_reason=r.untestable_reason,
        )
        for r in REGISTRY.values()
    )


def steps_from_registry() -> tuple[StepDoc, ...]:
    return tuple(StepDoc(s.number, s.name, s.agent, s.summary) for s in STEPS)


# --- JSON ---------------------------------------------------------------------------------


def _transcript_json(doc: TranscriptDoc) -> dict[str, object]:
    return {
        "name": doc.name,
        "entries": [{"dir": e.dir, "t": e.t, "data": e.data} for e in doc.entries],
    }


def _test_json(test: TestResult) -> dict[str, object]:
    return {
        "nodeid": test.nodeid,
        "name": test.name,
        "outcome": test.outcome,
        "requirements": list(test.requirements),
        "step": test.step,
        "duration": test.duration,
        "message": test.message,
        "longrepr": test.longrepr,
        "transcripts": [_transcript_json(t) for t in test.transcripts],
        "verdicts": [_verdict_json(v) for v in test.verdicts],
    }


def _verdict_json(doc: VerdictDoc) -> dict[str, object]:
    return {
        "id": doc.id, "verdict": doc.verdict, "detail": doc.detail, "checks": doc.checks,
        "evidence": [{"transcript": m.transcript, "entries": m.entries} for m in doc.evidence],
    }


def _requirement_json(req: RequirementDoc) -> dict[str, object]:
    return {
        "id": req.id,
        "rfc": req.rfc,
        "section": req.section,
        "level": req.level,
        "text": req.text,
        "step": req.step,
        "testable": req.testable,
        "untestable_reason": req.untestable_reason,
    }


def _step_json(step: StepDoc) -> dict[str, object]:
    return {"number": step.number, "name": step.name, "agent": step.agent, "summary": step.summary}


def results_to_json(run: RunResults) -> str:
    """The results document as JSON text (ASCII, indented, stable key order)."""
    doc: dict[str, object] = {
        "schema": SCHEMA,
        "target_name": run.target_name,
        "target_description": run.target_description,
        "started": run.started,
        "duration": run.duration,
        "environment": dict(run.environment),
        "notes": list(run.notes),
        "summary": run.summary(),
        "requirement_summary": run.requirement_summary(),
        "steps": [_step_json(s) for s in run.steps],
        "requirements": [_requirement_json(r) for r in run.requirements],
        "tests": [_test_json(t) for t in run.tests],
    }
    return json.dumps(doc, indent=2) + "\n"


def write_results(path: str | Path, run: RunResults) -> None:
    """Write the JSON results, making the file's directory if it is not there yet."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(results_to_json(run), encoding="utf-8")


_T = TypeVar("_T")


class _Obj:
    """Typed access to one JSON object; every error names the file and the key path."""

    def __init__(self, source: str, key: str, value: object) -> None:
        self.source = source
        self.key = key
        if not isinstance(value, dict):
            raise self._error(key, f"expected an object, got {_kind(value)}")
        self.data: Mapping[str, object] = value

    def _error(self, key: str, problem: str) -> ResultsError:
        return ResultsError(problem, source=self.source, key=key)

    def _path(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def _get(self, name: str) -> object:
        if name not in self.data:
            raise self._error(self._path(name), "missing")
        return self.data[name]

    def _wrong(self, name: str, kind: str, value: object) -> ResultsError:
        return self._error(self._path(name), f"expected {kind}, got {_kind(value)}")

    def get_str(self, name: str, choices: Sequence[str] = ()) -> str:
        value = self._get(name)
        if not isinstance(value, str):
            raise self._wrong(name, "a string", value)
        if choices and value not in choices:
            raise self._error(self._path(name), f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    def get_int(self, name: str) -> int:
        value = self._get(name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._wrong(name, "an integer", value)
        return value

    def get_opt_int(self, name: str) -> int | None:
        if self.data.get(name) is None:
            return None
        return self.get_int(name)

    def get_float(self, name: str) -> float:
        value = self._get(name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self._wrong(name, "a number", value)
        return float(value)

    def get_bool(self, name: str) -> bool:
        value = self._get(name)
        if not isinstance(value, bool):
            raise self._wrong(name, "true or false", value)
        return value

    def get_strs(self, name: str) -> tuple[str, ...]:
        value = self._get(name)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._wrong(name, "a list of strings", value)
        return tuple(value)

    def get_str_map(self, name: str) -> dict[str, str]:
        value = self._get(name)
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise self._wrong(name, "an object of strings", value)
        return dict(value)

    def get_objs(self, name: str, build: Callable[[_Obj], _T]) -> tuple[_T, ...]:
        value = self._get(name)
        if not isinstance(value, list):
            raise self._wrong(name, "a list", value)
        path = self._path(name)
        return tuple(build(_Obj(self.source, f"{path}[{i}]", v)) for i, v in enumerate(value))


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _entry(o: _Obj) -> TranscriptEntryDoc:
    return TranscriptEntryDoc(dir=o.get_str("dir", DIRECTIONS), t=o.get_float("t"), data=o.get_str("data"))


def _transcript(o: _Obj) -> TranscriptDoc:
    return TranscriptDoc(name=o.get_str("name"), entries=o.get_objs("entries", _entry))


def _mark(o: _Obj) -> EvidenceMark:
    return EvidenceMark(transcript=o.get_int("transcript"), entries=o.get_int("entries"))


def _verdict(o: _Obj) -> VerdictDoc:
    return VerdictDoc(
        id=o.get_str("id"), verdict=o.get_str("verdict", VERDICTS), detail=o.get_str("detail"),
        checks=o.get_int("checks"), evidence=o.get_objs("evidence", _mark),
    )


def _test(o: _Obj) -> TestResult:
    return TestResult(
        nodeid=o.get_str("nodeid"),
        name=o.get_str("name"),
        outcome=o.get_str("outcome", OUTCOMES),
        requirements=o.get_strs("requirements"),
        step=o.get_opt_int("step"),
        duration=o.get_float("duration"),
        message=o.get_str("message"),
        longrepr=o.get_str("longrepr"),
        transcripts=o.get_objs("transcripts", _transcript),
        verdicts=o.get_objs("verdicts", _verdict),
    )


def _requirement(o: _Obj) -> RequirementDoc:
    return RequirementDoc(
        id=o.get_str("id"),
        rfc=o.get_int("rfc"),
        section=o.get_str("section"),
        level=o.get_str("level", LEVELS),
        text=o.get_str("text"),
        step=o.get_int("step"),
        testable=o.get_bool("testable"),
        untestable_reason=o.get_str("untestable_reason"),
    )


def _step(o: _Obj) -> StepDoc:
    return StepDoc(number=o.get_int("number"), name=o.get_str("name"), agent=o.get_str("agent"), summary=o.get_str("summary"))


def results_from_json(text: str, *, source: str = "<results>") -> RunResults:
    """Parse and validate a results document; any problem is a one-line ResultsError."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultsError(f"invalid JSON: {exc}", source=source) from None
    if not isinstance(data, dict):
        raise ResultsError(f"expected a JSON object, got {_kind(data)}", source=source)
    schema = data.get("schema")
    if schema != SCHEMA:
        raise ResultsError(f"expected {SCHEMA!r}, got {schema!r}", source=source, key="schema")
    top = _Obj(source, "", data)
    return RunResults(
        target_name=top.get_str("target_name"),
        target_description=top.get_str("target_description"),
        started=top.get_str("started"),
        duration=top.get_float("duration"),
        tests=top.get_objs("tests", _test),
        requirements=top.get_objs("requirements", _requirement),
        steps=top.get_objs("steps", _step),
        environment=top.get_str_map("environment") if "environment" in data else {},
        notes=top.get_strs("notes") if "notes" in data else (),
    )


def load_results(path: str | Path) -> RunResults:
    """Read a results JSON file written by the pytest plugin."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ResultsError(f"cannot read: {exc.strerror or exc}", source=source) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ResultsError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", source=source) from None
    return results_from_json(text, source=source)
