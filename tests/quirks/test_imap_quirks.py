"""Each IMAP quirk of the reference agents makes the suite test that checks its requirement fail."""

from __future__ import annotations

import pytest

from tests.quirks.runner import assert_fails_with

#: quirk -> the suite test (module:function under suites/) that must fail with it on.
CATCHES_IMAP: dict[str, str] = {}


@pytest.mark.parametrize("quirk", sorted(CATCHES_IMAP))
def test_imap_test_fails_with_quirk_on(quirk: str, pytester: pytest.Pytester) -> None:
    assert_fails_with(pytester, CATCHES_IMAP[quirk], quirk)
