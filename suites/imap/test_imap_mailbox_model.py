"""Step 9 in depth — the stateful mailbox model: two sessions, random operations, invariants."""

from __future__ import annotations

import pytest

from harness.models.imap_mailbox import REQUIREMENTS, run_model
from harness.suite import Evidence
from harness.targets import Target

pytestmark = pytest.mark.step(9)

#: Examples per run unless --model-examples says otherwise (CI passes 200).
DEFAULT_EXAMPLES = 25
#: Rules per example: enough for append → flag → expunge → fetch in the other session.
STEPS = 20


@pytest.mark.requirement(*REQUIREMENTS)
def test_mailbox_model(target: Target, evidence: Evidence, request: pytest.FixtureRequest) -> None:
    """Random APPEND/STORE/COPY/MOVE/EXPUNGE/SEARCH/FETCH/SELECT in two sessions of one mailbox;
    every response checked against the model (see harness/models/imap_mailbox.py)."""
    examples = request.config.getoption("model_examples", default=None) or DEFAULT_EXAMPLES
    run_model(target, evidence, examples=int(examples), steps=STEPS)
