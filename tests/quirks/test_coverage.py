"""Every quirk is caught by a suite test that names its requirement; every testable requirement has a quirk."""

from __future__ import annotations

import pytest

from harness.requirements import REGISTRY
from reference_agents.quirks import QUIRKS
from tests.integration.test_load_quirks import CATCHES_LOAD
from tests.quirks.runner import suite_test
from tests.quirks.test_flow_quirks import CATCHES_FLOW
from tests.quirks.test_imap_model_quirks import CATCHES_IMAP_MODEL
from tests.quirks.test_imap_quirks import CATCHES_IMAP
from tests.quirks.test_smtp_model_quirks import CATCHES_SMTP_MODEL
from tests.quirks.test_smtp_quirks import CATCHES_SMTP

TABLES = (CATCHES_FLOW, CATCHES_SMTP, CATCHES_SMTP_MODEL, CATCHES_IMAP, CATCHES_IMAP_MODEL)
CATCHES = {quirk: ref for table in TABLES for quirk, ref in table.items()}


def test_tables_do_not_overlap() -> None:
    assert len(CATCHES) == sum(len(table) for table in TABLES)


def test_every_quirk_has_a_check() -> None:
    """Every quirk is caught by a suite test, or (those only concurrency meets) by a load run
    (tests/integration/test_load_quirks.py) — one of the two, not both."""
    assert not set(CATCHES) & set(CATCHES_LOAD)
    caught = set(CATCHES) | set(CATCHES_LOAD)
    assert sorted(set(QUIRKS) - caught) == [], "quirks no suite test or load run is shown to catch"
    assert sorted(caught - set(QUIRKS)) == [], "checks for quirks that do not exist"


@pytest.mark.parametrize("quirk", sorted(CATCHES_LOAD))
def test_load_names_the_quirks_requirement(quirk: str) -> None:
    assert CATCHES_LOAD[quirk] in QUIRKS[quirk].requirements


@pytest.mark.parametrize("quirk", sorted(CATCHES))
def test_check_names_the_quirks_requirement(quirk: str) -> None:
    _, _, requirements = suite_test(CATCHES[quirk])
    assert set(QUIRKS[quirk].requirements) & requirements, (
        f"{CATCHES[quirk]} checks {sorted(requirements)}, not {QUIRKS[quirk].requirements}"
    )


#: Testable requirements that have no quirk of their own yet, and why (none today). Each would
#: be an open defect of the tables, listed here so that it is seen, not hidden.
KNOWN_GAPS: dict[str, str] = {}


def test_every_testable_requirement_has_a_quirk() -> None:
    covered = {r for q in QUIRKS.values() for r in q.requirements}
    missing = [r.id for r in REGISTRY.values() if r.testable and r.id not in covered]
    assert sorted(missing) == sorted(KNOWN_GAPS), f"requirements no quirk violates: {missing}"


def test_untestable_requirements_say_why() -> None:
    for req in REGISTRY.values():
        assert req.testable or req.untestable_reason, f"{req.id} is untestable without a reason"


def _names_the_agents_test() -> dict[str, set[str]]:
    """Every literal name passed to has_quirk / quirk / allows in reference_agents, by call."""
    import ast
    from pathlib import Path

    found: dict[str, set[str]] = {"quirk": set(), "allows": set()}
    for path in Path(__file__).resolve().parents[2].joinpath("reference_agents").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            arg = node.args[0]
            if name in ("has_quirk", "quirk", "allows") and isinstance(arg, ast.Constant) \
                    and isinstance(arg.value, str):
                found["allows" if name == "allows" else "quirk"].add(arg.value)
    return found


def test_agents_name_only_known_quirks_and_allowances() -> None:
    """has_quirk and allows raise KeyError on an unknown name at run time; this finds a
    misspelt name on a path no test reaches."""
    from reference_agents.allowances import ALLOWANCES

    found = _names_the_agents_test()
    assert found["quirk"] and found["allows"]
    assert sorted(found["quirk"] - set(QUIRKS)) == []
    assert sorted(found["allows"] - set(ALLOWANCES)) == []


def test_has_quirk_refuses_an_unknown_name() -> None:
    from reference_agents.config import ProviderConfig

    config = ProviderConfig.__new__(ProviderConfig)
    object.__setattr__(config, "quirks", frozenset({"msa_greeting_554"}))
    assert config.has_quirk("msa_greeting_554")
    with pytest.raises(KeyError, match="msa_greeting_5544"):
        config.has_quirk("msa_greeting_5544")
    with pytest.raises(KeyError, match="unknown allowance"):
        config.allows("msa_greeting_554")
