"""Quirks caught by the stateful SMTP model: each makes the model's run fail."""

from __future__ import annotations

import pytest

from tests.quirks.runner import assert_fails_with

#: Examples the model may take to find the fault (as in CI); it stops at the first failure.
MODEL_EXAMPLES = 200

#: quirk -> the suite test (module:function under suites/) that must fail with it on.
CATCHES_SMTP_MODEL: dict[str, str] = {
    "msa_nested_mail_accepted": "smtp_model.test_smtp_session_model:test_submission_session_model",
    "msa_rcpt_before_mail_accepted": "smtp_model.test_smtp_session_model:test_submission_session_model",
}


@pytest.mark.parametrize("quirk", sorted(CATCHES_SMTP_MODEL))
def test_smtp_model_fails_with_quirk_on(quirk: str, pytester: pytest.Pytester) -> None:
    assert_fails_with(pytester, CATCHES_SMTP_MODEL[quirk], quirk, "--model-examples", str(MODEL_EXAMPLES))
