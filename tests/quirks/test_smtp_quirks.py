"""Each SMTP quirk of the reference agents makes the suite test that checks its requirement fail."""

from __future__ import annotations

import pytest

from tests.quirks.runner import assert_fails_with

#: quirk -> the suite test (module:function under suites/) that must fail with it on.
CATCHES_SMTP: dict[str, str] = {}


@pytest.mark.parametrize("quirk", sorted(CATCHES_SMTP))
def test_smtp_test_fails_with_quirk_on(quirk: str, pytester: pytest.Pytester) -> None:
    assert_fails_with(pytester, CATCHES_SMTP[quirk], quirk)
