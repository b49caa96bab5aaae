"""Replay every dialogue under suites/smtp_model/dialogues/ against the target: the tricky
cases of command order and reply codes, each expectation naming the requirement it checks
and citing the RFC sentence in the comment above it."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.dialogue import DialogueError, load_dialogue
from harness.replay import ReplayError, replay
from harness.suite import Evidence, check, need, precondition, run
from harness.targets import Target

pytestmark = pytest.mark.step(1)

DIALOGUES = Path(__file__).parent / "dialogues"
#: Requirement ids of a dialogue file that does not parse (the test fails with file:line).
DEFAULT_REQUIREMENTS = ("SMTP-REPLY-CODES",)


def _params() -> list[object]:
    params: list[object] = []
    for path in sorted(DIALOGUES.glob("*.dialogue")):
        marks: list[pytest.MarkDecorator] = []
        try:
            dialogue = load_dialogue(path)
        except DialogueError:
            marks.append(pytest.mark.requirement(*DEFAULT_REQUIREMENTS))
        else:
            marks.append(pytest.mark.requirement(*(dialogue.requirements or DEFAULT_REQUIREMENTS)))
            if "mx" in dialogue.services and "submission" not in dialogue.services:
                marks.append(pytest.mark.step(5))
        params.append(pytest.param(path, marks=marks, id=path.stem))
    return params


@pytest.mark.parametrize("path", _params())
def test_dialogue(path: Path, target: Target, evidence: Evidence) -> None:
    dialogue = load_dialogue(path)  # a malformed file fails here with file:line
    try:
        result = run(replay(dialogue, target))
    except ReplayError as exc:
        need(False, str(exc))
        raise
    evidence.transcripts.extend(result.transcripts)
    # The lines that held pass their requirements; the first that did not fails its own (a
    # [precondition] step leaves the rest not reached, a [need] line makes them not applicable).
    for matched in result.matched:
        check(matched.requirement, True, str(matched))
    need(result.not_applicable is None, result.not_applicable or "")
    mismatch = result.mismatch
    if mismatch is not None:
        precondition(mismatch.requirement is not None, str(mismatch))
        assert mismatch.requirement is not None
        check(mismatch.requirement, False, str(mismatch))
