"""The stateful SMTP session model against the target: random command sequences, every reply
checked against the codes RFC 5321 §4.1.4 and §4.3.2 (RFC 3207, RFC 4954) allow. A failure
shrinks to a minimal sequence and is written as a dialogue that `mailharness replay` replays."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from harness.models.smtp_machine import (
    MODEL_REQUIREMENTS,
    SMTPSessionMachine,
    dialogue_dir,
    probe_sessions,
)
from harness.models.smtp_session import MX, SUBMISSION
from harness.suite import Evidence, need
from harness.targets import Target

pytestmark = pytest.mark.step(1)

DEFAULT_EXAMPLES = 25
STEPS_PER_EXAMPLE = 20


def _settings(request: pytest.FixtureRequest) -> settings:
    examples = request.config.getoption("model_examples", default=None) or DEFAULT_EXAMPLES
    return settings(
        max_examples=int(examples),
        stateful_step_count=STEPS_PER_EXAMPLE,
        deadline=None,
        database=None,
        report_multiple_bugs=False,
        # No explain phase: the last failing run must be the minimal example, whose dialogue
        # is the one left on disk.
        phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
    )


def _run_model(
    request: pytest.FixtureRequest, target: Target, evidence: Evidence, services: Sequence[str],
    name: str,
) -> None:
    need(target.sender.accounts, f"{target.sender.domain}: target lists no account")
    need(target.receiver.accounts, f"{target.receiver.domain}: target lists no account")
    path = dialogue_dir(request.config.getoption("dialogue_dir", default=None)) / f"{name}.dialogue"
    evidence.note(f"a failing run writes its minimal dialogue to {path}")
    # VRFY's replies depend on the session (policy before TLS, before AUTH, in a transaction):
    # every run sends it in each setup and at each step of a transaction, not only by luck.
    probe_sessions(target, evidence, services=services, dialogue_path=path)
    run_state_machine_as_test(
        lambda: SMTPSessionMachine(target, evidence, services=services, dialogue_path=path),
        settings=_settings(request),
    )


@pytest.mark.requirement(*MODEL_REQUIREMENTS)
def test_submission_session_model(
    request: pytest.FixtureRequest, target: Target, evidence: Evidence
) -> None:
    need(target.sender.submission is not None, "target has no submission endpoint")
    # RFC 5321 §4.1.4: "If the commands in a transaction are out of order to the degree that
    # they cannot be processed by the server, a 503 failure reply MUST be returned"; RFC 5321
    # §4.3.2 lists the replies each command may get; RFC 3207 and RFC 4954 add theirs. Each
    # claim on a reply names its requirement (harness/models/smtp_session.py).
    _run_model(request, target, evidence, (SUBMISSION,), "smtp-model-submission")


@pytest.mark.step(5)
@pytest.mark.requirement(*MODEL_REQUIREMENTS)
def test_mx_session_model(request: pytest.FixtureRequest, target: Target, evidence: Evidence) -> None:
    need(target.receiver.mx is not None, "target has no mx endpoint")
    # RFC 5321 §4.1.4 and §4.3.2, as above, on the MX (port 25).
    _run_model(request, target, evidence, (MX,), "smtp-model-mx")
