"""Replay every dialogue under suites/smtp_model/dialogues/ against the target: the tricky
cases of command order and reply codes, each citing the RFC sentence it checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.dialogue import DialogueError, load_dialogue
from harness.replay import ReplayError, replay
from harness.suite import Evidence, need, run
from harness.targets import Target

pytestmark = pytest.mark.step(1)

DIALOGUES = Path(__file__).parent / "dialogues"
#: Requirement ids of a dialogue that names none.
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
    # Each expectation in the file quotes the RFC sentence it enforces in the comment above it.
    assert result.mismatch is None, f"{result.mismatch}"
