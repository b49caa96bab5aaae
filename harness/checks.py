"""Verdicts per requirement, inside a test.

A *check* is a claim about the server that names the one requirement it tests::

    check("AUTH-ONCE", reply.code == 503, f"a second AUTH answered {reply.code}")

A test names the requirements it may check (``@pytest.mark.requirement(...)``); each of them
ends the test with one verdict:

- ``pass``            every check of it held;
- ``fail``            a check of it failed (MUST or SHOULD): the test stops there;
- ``not_reached``     an earlier check of another requirement failed, or the dialogue ended
                      before its check;
- ``not_applicable``  a precondition was missing (a feature not offered, no second account),
                      with the reason;
- ``offered`` / ``not_offered``  for a MAY: never red.

A failed check raises :class:`CheckFailed`, which ends the test. The failure is taken from the
exception that ends the test, never from a record made on the way, so hypothesis (which runs
failing examples many times while it shrinks) reds exactly the requirement of the final,
minimal example, and a group of distinct failures reds each of their requirements.

This module holds the data and the rules; the pytest plugin (``harness.plugin``) opens a
:class:`Checks` for each test and turns the exception that ended it into the final verdicts.
"""

from __future__ import annotations

import enum
import ssl
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.protocol.errors import RemoteProtocolError
from harness.requirements import REGISTRY, Level

if TYPE_CHECKING:
    from harness.suite import Evidence


class Verdict(enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    NOT_REACHED = "not_reached"
    NOT_APPLICABLE = "not_applicable"
    OFFERED = "offered"
    NOT_OFFERED = "not_offered"


#: The grammar requirement a malformed reply or response of each protocol breaks.
GRAMMAR_REQUIREMENTS = {"smtp": "SMTP-REPLY-SYNTAX", "imap": "IMAP-RESPONSE-SYNTAX"}

#: Exceptions that mean the server ended or stalled the dialogue, not a bug of the harness. The
#: clients' own errors (SMTPConnectionClosed, IMAPTimeout, ...) are ConnectionError and
#: TimeoutError, so OSError covers them.
SERVER_ERRORS: tuple[type[BaseException], ...] = (OSError, TimeoutError, EOFError, ssl.SSLError)


def is_server_error(exc: BaseException) -> bool:
    return isinstance(exc, SERVER_ERRORS)


class CheckFailed(AssertionError):
    """A check of *requirement* failed. Ends the test; pytest reports it as a failure."""

    def __init__(self, requirement: str, detail: str, marks: Sequence[Mark] = ()) -> None:
        super().__init__(f"{requirement}: {detail}")
        self.requirement = requirement
        self.detail = detail
        self.marks = tuple(marks)


class PreconditionFailed(Exception):
    """A step the test depends on, but does not judge, went wrong on the server (a login, a
    setup APPEND): the test's open requirements are *not reached*, with this detail. The
    tests that judge that step red it there."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotOffered(Exception):
    """A MAY requirement's feature is not offered. Ends the test, which passes: a MAY is never red."""

    def __init__(self, requirement: str, detail: str) -> None:
        super().__init__(f"{requirement} not offered: {detail}")
        self.requirement = requirement
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Mark:
    """Where a check was made: transcript *transcript* held *entries* entries then."""

    transcript: int
    entries: int


@dataclass(slots=True)
class RequirementVerdict:
    """The verdict of one requirement in one test, with the detail of its deciding check and the
    transcript positions it was decided at (the report shows the lines up to them)."""

    id: str
    verdict: Verdict
    detail: str = ""
    marks: tuple[Mark, ...] = ()
    checks: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id, "verdict": self.verdict.value, "detail": self.detail, "checks": self.checks,
            "evidence": [{"transcript": m.transcript, "entries": m.entries} for m in self.marks],
        }


def _level(requirement: str) -> Level:
    try:
        return REGISTRY[requirement].level
    except KeyError:
        raise KeyError(f"check of unknown requirement id {requirement!r}") from None


@dataclass
class Checks:
    """The checks made by one test. ``declared`` are the ids of its requirement markers."""

    declared: tuple[str, ...]
    evidence: Evidence | None = None
    _results: dict[str, RequirementVerdict] = field(default_factory=dict)

    def marks(self) -> tuple[Mark, ...]:
        if self.evidence is None:
            return ()
        return tuple(
            Mark(i, len(t.entries)) for i, t in enumerate(self.evidence.transcripts) if t.entries
        )

    def _entry(self, requirement: str) -> RequirementVerdict:
        _level(requirement)
        return self._results.setdefault(requirement, RequirementVerdict(requirement, Verdict.NOT_REACHED))

    def passed(self, requirement: str, detail: str = "") -> None:
        """Record a check of *requirement* that held; *detail* (when given) says what held,
        else the detail counts the checks."""
        entry = self._entry(requirement)
        entry.checks += 1
        if entry.verdict in (Verdict.NOT_REACHED, Verdict.PASS, Verdict.NOT_APPLICABLE):
            offered = _level(requirement) is Level.MAY
            entry.verdict = Verdict.OFFERED if offered else Verdict.PASS
            entry.detail = detail or f"{entry.checks} check{'s' if entry.checks > 1 else ''} held"
            entry.marks = self.marks()

    def not_applicable(self, requirement: str, reason: str) -> None:
        entry = self._entry(requirement)
        if entry.checks == 0:
            entry.verdict = Verdict.NOT_APPLICABLE
            entry.detail = reason

    def check(self, requirement: str, ok: object, detail: str) -> None:
        if ok:
            # The detail describes the failure: a check that held says only that it held.
            self.passed(requirement)
            return
        self._entry(requirement)
        if _level(requirement) is Level.MAY:
            raise NotOffered(requirement, detail)
        raise CheckFailed(requirement, detail, self.marks())

    def finish(self, outcome: str, exc: BaseException | None, reason: str = "") -> list[RequirementVerdict]:
        """The final verdicts, given how the test ended: *outcome* is passed, failed, skipped or
        error, *exc* the exception that ended it (None when it returned), *reason* a skip's."""
        failures = list(_check_failures(exc))
        for failure in failures:
            entry = self._entry(failure.requirement)
            entry.verdict = Verdict.FAIL
            entry.detail = failure.detail
            entry.marks = failure.marks or self.marks()
        if isinstance(exc, NotOffered):
            entry = self._entry(exc.requirement)
            entry.verdict = Verdict.NOT_OFFERED
            entry.detail = exc.detail
        undecided = [r for r in self.declared if self._results.get(r) is None
                     or (self._results[r].verdict is Verdict.NOT_REACHED)]
        if isinstance(exc, PreconditionFailed):
            reason = f"a step it depends on failed: {exc.detail}"
        elif exc is not None and not failures and outcome == "failed" and not isinstance(exc, NotOffered):
            # A plain assert, or the server ended the dialogue: when one requirement is open,
            # that is the one the test was checking.
            detail = _one_line(exc)
            if len(undecided) == 1:
                entry = self._entry(undecided[0])
                entry.verdict = Verdict.FAIL
                entry.detail = detail
                entry.marks = self.marks()
                undecided = undecided[1:]
            reason = reason or f"the dialogue ended before this check: {detail}"
        for requirement in undecided:
            entry = self._entry(requirement)
            if entry.verdict is not Verdict.NOT_REACHED:
                continue
            if outcome == "skipped":
                entry.verdict, entry.detail = Verdict.NOT_APPLICABLE, reason
            elif outcome == "passed":
                # Passing proves nothing about a requirement no check() named: a test written
                # with plain asserts only leaves every id it names not reached.
                entry.detail = "the test never checked it"
            elif outcome == "error":
                entry.detail = f"harness error: {_one_line(exc) if exc else reason}"
            elif failures:
                names = ", ".join(sorted({f.requirement for f in failures}))
                entry.detail = f"not reached: {names} failed first"
            else:
                entry.detail = reason
        order = list(self.declared) + [r for r in self._results if r not in self.declared]
        return [self._results[r] for r in order if r in self._results]


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _walk(exc: BaseException | None) -> Iterator[BaseException]:
    if exc is None:
        return
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _walk(inner)
        return
    yield exc


def _check_failures(exc: BaseException | None) -> Iterable[CheckFailed]:
    for inner in _walk(exc):
        if isinstance(inner, CheckFailed):
            yield inner
        elif isinstance(inner, RemoteProtocolError):
            yield grammar_failure(inner)


def grammar_failure(exc: RemoteProtocolError, where: str = "") -> CheckFailed:
    """A malformed reply or response as a failure of its protocol's grammar requirement,
    named once with its bytes."""
    requirement = GRAMMAR_REQUIREMENTS.get(getattr(exc, "protocol", ""), "SMTP-REPLY-SYNTAX")
    shown = exc.data if len(exc.data) <= 400 else exc.data[:400] + b"..."
    place = f" ({where})" if where else ""
    opened = current()
    return CheckFailed(requirement, f"malformed response from the server{place}: {exc.message}: {shown!r}",
                       opened.marks() if opened is not None else ())


def is_harness_error(exc: BaseException) -> bool:
    """True when *exc* is a bug of the harness: not a check, a skip, or the server's doing."""
    for inner in _walk(exc):
        if isinstance(inner, AssertionError | NotOffered | PreconditionFailed | RemoteProtocolError):
            continue
        if is_server_error(inner) or type(inner).__module__.startswith(("_pytest", "pytest")):
            continue
        return True
    return False


# --- the current test's checks --------------------------------------------------------------

_current: Checks | None = None


def current() -> Checks | None:
    return _current


def begin(checks: Checks | None) -> None:
    """Make *checks* the recorder ``check()`` writes to (the plugin calls this per test)."""
    global _current
    _current = checks


def check(requirement: str, ok: object, detail: str) -> None:
    """Claim that *ok* holds, as a check of *requirement*; *detail* says what was seen when it
    does not (one line, shown with the failure; a check that holds is shown as held, with its
    place in the transcript). Raises CheckFailed (MUST, SHOULD) or NotOffered (MAY) when it
    does not hold. Outside a test it still raises, so scripts can use it."""
    (_current or Checks(())).check(requirement, ok, detail)


def not_applicable(requirement: str, reason: str) -> None:
    """Mark *requirement* not applicable to this target (the test goes on with the others)."""
    if _current is not None:
        _current.not_applicable(requirement, reason)


def precondition(ok: object, detail: str) -> None:
    """Claim that a step the test depends on (but does not judge) worked; if not, the test
    ends and its open requirements are not reached (see PreconditionFailed)."""
    if not ok:
        raise PreconditionFailed(detail)


def fail(requirement: str, detail: str) -> CheckFailed:
    """The failure of *requirement*, to raise (for models that find a violation themselves)."""
    _level(requirement)
    return CheckFailed(requirement, detail, _current.marks() if _current is not None else ())


# --- one requirement over several tests ---------------------------------------------------------

#: How verdicts of one requirement in several tests combine: the first present wins.
PRECEDENCE: tuple[str, ...] = (
    "fail", "pass", "offered", "not_offered", "not_reached", "not_applicable",
)


def combine(verdicts: Iterable[str]) -> str:
    """One requirement's verdict over every test that named it ("untested" when none did)."""
    seen = set(verdicts)
    return next((v for v in PRECEDENCE if v in seen), "untested")


def summarise(per_requirement: Mapping[str, Iterable[str]], level_of: Callable[[str], str]) -> dict[str, int]:
    """How many requirements ended with each verdict over a run (each requirement's verdicts
    combined), ``fail`` split by level into ``MUST fail`` and ``SHOULD fail``."""
    counts: dict[str, int] = {}
    for requirement, seen in per_requirement.items():
        verdict = combine(seen)
        if verdict == "fail":
            verdict = f"{level_of(requirement)} fail"
        counts[verdict] = counts.get(verdict, 0) + 1
    return counts


def counts_against(requirement: str, fail_on: str) -> bool:
    """Whether a failure of *requirement* makes the exit status non-zero under ``--fail-on``."""
    level = _level(requirement)
    return level is Level.MUST or (level is Level.SHOULD and fail_on == "should")
