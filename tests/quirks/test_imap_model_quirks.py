"""Quirks caught by the stateful IMAP model: each makes the model's run fail."""

from __future__ import annotations

import pytest

from tests.quirks.runner import assert_fails_with

#: Examples the model may take to find the fault (as in CI); it stops at the first failure.
MODEL_EXAMPLES = 200

#: quirk -> the suite test (module:function under suites/) that must fail with it on.
CATCHES_IMAP_MODEL: dict[str, str] = {
    quirk: "imap.test_imap_mailbox_model:test_mailbox_model"
    for quirk in (
        "imap_expunge_during_fetch",
        "imap_uid_reuse",
        "imap_search_ignores_deleted_flag",
        "imap_flags_not_shared",
        "imap_size_changes",
        "imap_recent_not_claimed",
    )
}


@pytest.mark.parametrize("quirk", sorted(CATCHES_IMAP_MODEL))
def test_imap_model_fails_with_quirk_on(quirk: str, pytester: pytest.Pytester) -> None:
    assert_fails_with(pytester, CATCHES_IMAP_MODEL[quirk], quirk, "--model-examples", str(MODEL_EXAMPLES))
