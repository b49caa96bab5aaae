"""Each allowance of the reference agents (an RFC-permitted variant a careless check could
mistake for a fault) keeps every suite green: nothing red, no harness error."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.requirements import REGISTRY
from reference_agents.allowances import ALLOWANCES, check_allowances
from reference_agents.quirks import QUIRKS
from tests.quirks.runner import run_suites

SUITES = Path(__file__).resolve().parents[2] / "suites"

def test_allowances_guard_known_requirements_and_do_not_shadow_quirks() -> None:
    assert len(ALLOWANCES) >= 7
    for allowance in ALLOWANCES.values():
        assert allowance.guards and set(allowance.guards) <= set(REGISTRY), allowance
        assert allowance.basis.startswith("RFC "), allowance
        assert allowance.name not in QUIRKS
    with pytest.raises(ValueError, match="unknown allowance"):
        check_allowances(["no_such_allowance"])


@pytest.mark.parametrize("allowance", sorted(ALLOWANCES))
def test_every_suite_stays_green_with_the_allowance_on(allowance: str, pytester: pytest.Pytester) -> None:
    # The whole suites run at once here, beside other runs: give deliveries the time they need.
    run = run_suites(pytester, [str(SUITES)], allowances=[allowance], extra=("--delivery-timeout", "20"))
    assert not run.errors(), f"harness errors with {allowance}:\n{run.shown()}"
    assert not run.red(), f"red with {allowance} on: {sorted(run.red())}\n{run.details}"
    guarded = {r: run.verdicts.get(r, "untested") for r in ALLOWANCES[allowance].guards}
    # The checks the allowance guards against still ran (they are not merely skipped).
    assert any(v in ("pass", "offered", "not_offered") for v in guarded.values()), guarded
