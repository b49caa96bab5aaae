"""IMAP in depth — WITHIN (RFC 5032): SEARCH OLDER n and YOUNGER n against INTERNALDATE.

Skipped where the server does not offer WITHIN. The messages are appended with INTERNALDATEs
ten days and two hours in the past, and one with none (the server's now); the intervals are
chosen far from those ages, so a clock skew of minutes between harness and server does not
matter.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from harness.suite import Evidence, check, need, precondition, run, token
from harness.targets import Target
from suites.imap.esearch_helpers import searched
from suites.imap.imap_helpers import message, scratch, select, session

pytestmark = pytest.mark.step(9)

HOUR = 3600
DAY = 24 * HOUR

#: search -> the messages it finds: 1 is ten days old, 2 two hours old, 3 new.
WITHIN_SEARCHES: dict[str, set[int]] = {
    f"YOUNGER {HOUR}": {3},
    f"YOUNGER {DAY}": {2, 3},
    f"YOUNGER {20 * DAY}": {1, 2, 3},
    f"OLDER {HOUR}": {1, 2},
    f"OLDER {DAY}": {1},
    f"OLDER {20 * DAY}": set(),
    f"OLDER {HOUR} YOUNGER {DAY}": {2},
    f"NOT YOUNGER {HOUR}": {1, 2},
}


@pytest.mark.requirement("IMAP-WITHIN")
def test_imap_within_older_younger(target: Target, evidence: Evidence) -> None:
    req = "IMAP-WITHIN"

    async def scenario() -> None:
        async with session(target, evidence) as client, scratch(client) as name:
            need("WITHIN" in client.capabilities, "the server does not offer WITHIN (RFC 5032)")
            now = datetime.now(UTC).replace(microsecond=0)
            for when in (now - timedelta(days=10), now - timedelta(hours=2), None):
                appended = await client.append(name, message(token()), internaldate=when)
                precondition(appended.ok, f"setup APPEND with date-time {when} answered "
                                          f"{appended.status}")
            await select(client, name)
            # RFC 5032 §2: "the server calculates a target date and time by subtracting the
            # interval, specified in seconds, from the current date and time of the server ...
            # For OLDER, messages match if the INTERNALDATE is less recent than or equal to the
            # target time.  For YOUNGER, messages match if the INTERNALDATE is more recent than
            # or equal to the target time."
            for criteria, expected in WITHIN_SEARCHES.items():
                result = await client.command(f"SEARCH {criteria}")
                found = searched(result)
                check(req, result.ok and found == expected,
                      f"SEARCH {criteria} answered {result.status} with {sorted(found)}, not "
                      f"{sorted(expected)} (messages 10 days, 2 hours and 0 s old)")

    run(scenario())
