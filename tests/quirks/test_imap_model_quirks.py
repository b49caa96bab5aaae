"""Quirks caught by the stateful IMAP model: each makes the model's run fail."""

from __future__ import annotations

import pytest

from tests.quirks.runner import assert_fails_with

#: quirk -> the suite test (module:function under suites/) that must fail with it on.
CATCHES_IMAP_MODEL: dict[str, str] = {}


@pytest.mark.parametrize("quirk", sorted(CATCHES_IMAP_MODEL))
def test_imap_model_fails_with_quirk_on(quirk: str, pytester: pytest.Pytester) -> None:
    assert_fails_with(pytester, CATCHES_IMAP_MODEL[quirk], quirk)
