"""Faults that only load finds: each quirk of reference_agents/quirks/load.py breaks its
requirement only while deliveries or sessions overlap, and a short `mailharness load` run names
that requirement and no other. The IMAP quirks that two sessions meet (caught by the stateful
model as well) are caught by load too. And with no quirk, a run with every role violates
nothing."""

from __future__ import annotations

import io

import pytest

from harness.load.runner import LoadOptions, LoadResult, run_load
from mailharness.embedded import embedded_target
from reference_agents.quirks import QUIRKS

#: quirk (reference_agents/quirks/load.py) -> the one requirement a load run names with it on.
CATCHES_LOAD: dict[str, str] = {
    "mda_racing_delivery_lost": "HANDOFF-RESPONSIBILITY",
    "mda_racing_delivery_twice": "DELIVER-ONCE",
    "mda_racing_delivery_torn": "DELIVER-INTACT",
    "imap_expunge_unannounced": "IMAP-SEQ-UID-STABLE",
    "imap_modseq_race": "IMAP-CONDSTORE-MODSEQ-UNIQUE",
    "imap_flags_lost_update": "IMAP-SESSIONS-AGREE",
}

#: Quirks whose home test is elsewhere (the stateful model, suites/flow) that load catches too.
ALSO_CAUGHT_BY_LOAD: dict[str, str] = {
    "imap_expunge_during_fetch": "IMAP-NO-EXPUNGE-DURING-FETCH",
    "imap_uid_reuse": "IMAP-UID-MONOTONIC",
    "imap_flags_not_shared": "IMAP-SESSIONS-AGREE",
    "imap_uidvalidity_changes": "IMAP-UIDVALIDITY-STABLE",
    "imap_modseq_frozen": "IMAP-CONDSTORE-STORE-MODSEQ",
}

#: A short run with every IMAP role: three senders, a reader and three managers per mailbox.
OPTIONS = LoadOptions(duration=15, max_messages=400, senders=3, readers_per_mailbox=1,
                      managers_per_mailbox=3, delivery_timeout=10)


def _run(quirks: list[str]) -> LoadResult:
    with embedded_target(quirks=quirks, prefix="mailharness-load-quirk-") as target:
        return run_load(target, OPTIONS, out=io.StringIO())


def _named(result: LoadResult) -> set[str]:
    return set(result.ledger.violation_counts)


@pytest.mark.parametrize("quirk", sorted({**CATCHES_LOAD, **ALSO_CAUGHT_BY_LOAD}))
def test_a_short_load_run_names_the_quirks_requirement_only(quirk: str) -> None:
    expected = {**CATCHES_LOAD, **ALSO_CAUGHT_BY_LOAD}[quirk]
    assert expected in QUIRKS[quirk].requirements
    result = _run([quirk])
    assert _named(result) == {expected}, result.summary()
    first = next(v for v in result.ledger.violations if v.requirement == expected)
    # The violation names the sessions involved and shows their last lines.
    if expected.startswith("IMAP-"):
        assert first.sessions and all(lines for _, lines in first.transcripts), first


def test_with_no_quirk_every_role_runs_clean() -> None:
    result = _run([])
    counts = result.ledger.counts()
    assert result.ok, result.summary()
    assert counts["accepted"] == OPTIONS.max_messages == counts["delivered"]
    assert counts["duplicates"] == 0 and not result.ledger.errors, result.summary()
