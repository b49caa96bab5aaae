"""Quirks caught by the stateful IMAP model: each makes the model's run red exactly its own
requirement. And the late EXISTS the model must not mistake for a fault."""

from __future__ import annotations

import pytest

from tests.quirks.runner import assert_fails_with, run_suites, suite_test

#: Examples the model may take to find the fault (as in CI); it stops at the first failure.
MODEL_EXAMPLES = 200

MODEL_TEST = "imap.test_imap_mailbox_model:test_mailbox_model"

#: quirk -> the suite test (module:function under suites/) that must fail with it on.
CATCHES_IMAP_MODEL: dict[str, str] = {
    quirk: MODEL_TEST
    for quirk in (
        "imap_expunge_during_fetch",
        "imap_fetch_before_exists",
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


#: Quirks whose home test is in suites/imap (CATCHES_IMAP) that the model catches as well: a
#: keyword set in one session reaching the other's FETCH without FLAGS, and SEARCH FROM / TO
#: matching the header's raw text instead of the address.
ALSO_CAUGHT_BY_MODEL = ("imap_no_flags_for_new_keyword", "imap_search_address_raw")


@pytest.mark.parametrize("quirk", ALSO_CAUGHT_BY_MODEL)
def test_imap_model_also_catches(quirk: str, pytester: pytest.Pytester) -> None:
    assert_fails_with(pytester, MODEL_TEST, quirk, "--model-examples", str(MODEL_EXAMPLES))


def test_imap_model_stays_green_with_late_exists(pytester: pytest.Pytester) -> None:
    """Allowance imap_late_exists: a message another session added is announced (EXISTS, then
    its UID and flags) after the responses of the command in progress, which do not see it. The
    model judges a SEARCH by what the session had been told when the SEARCH response came, so
    nothing is red, at as many examples as the quirks get."""
    path, function, _ = suite_test(MODEL_TEST)
    run = run_suites(pytester, [f"{path}::{function}"], allowances=["imap_late_exists"],
                     extra=("--model-examples", str(MODEL_EXAMPLES)))
    assert not run.errors(), run.shown()
    assert not run.red(), run.shown()
    assert run.verdicts.get("IMAP-SEARCH-CORRECT") == "pass", run.shown()
