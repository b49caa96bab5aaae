"""IMAP in depth — ESEARCH for IMAP4rev1 clients (RFC 4731): SEARCH RETURN (MIN MAX ALL COUNT).

Skipped where the server does not offer ESEARCH. The session stays IMAP4rev1 (no ENABLE): the
ESEARCH responses come from the RETURN option alone.
"""

from __future__ import annotations

import pytest

from harness.protocol.imap.responses import Search
from harness.suite import Evidence, check, run
from harness.targets import Target
from suites.imap.esearch_helpers import esearches, flagged_mailbox, members

pytestmark = pytest.mark.step(9)


@pytest.mark.requirement("IMAP-ESEARCH-RETURN")
def test_imap_esearch_return_options(target: Target, evidence: Evidence) -> None:
    req = "IMAP-ESEARCH-RETURN"

    async def scenario() -> None:
        async with flagged_mailbox(target, evidence, "ESEARCH", [True, False, True]) as (
                client, _, uids):
            # RFC 4731 §3.1: "If one or more result options described above are specified, the
            # extended SEARCH command MUST return a single ESEARCH response [IMAPABNF], instead
            # of the SEARCH response."
            result = await client.command("SEARCH RETURN (MIN MAX ALL COUNT) FLAGGED")
            found = esearches(result)
            plain = [r for r in result.untagged if isinstance(r, Search)]
            check(req, result.ok and len(found) == 1 and not plain,
                  f"SEARCH RETURN (MIN MAX ALL COUNT) answered {result.status} with "
                  f"{len(found)} ESEARCH and {len(plain)} SEARCH responses")
            got = found[0]
            # RFC 4466 §2.6.2 search-correlator: the ESEARCH names its command by its tag.
            check(req, got.tag == result.tag and not got.uid,
                  f"ESEARCH correlator {got.tag!r} (UID {got.uid}) for command {result.tag!r}")
            data = got.data
            check(req, (data.get("MIN"), data.get("MAX"), data.get("COUNT")) == (1, 3, 2)
                  and members(data.get("ALL")) == {1, 3},
                  f"RETURN (MIN MAX ALL COUNT) FLAGGED over messages 1-3 (1 and 3 flagged) gave "
                  f"{data}")
            # "An extended UID SEARCH command MUST cause an ESEARCH response with the UID
            # indicator present." (MIN and MAX are then UIDs.)
            result = await client.command("UID SEARCH RETURN (MIN MAX) FLAGGED")
            found = esearches(result)
            check(req, result.ok and len(found) == 1 and found[0].uid
                  and found[0].tag == result.tag
                  and (found[0].data.get("MIN"), found[0].data.get("MAX")) == (uids[0], uids[2]),
                  f"UID SEARCH RETURN (MIN MAX) FLAGGED answered {result.status} with {found}; "
                  f"the flagged UIDs are {uids[0]} and {uids[2]}")
            # "If the list of result options is empty, that requests the server to return an
            # ESEARCH response instead of the SEARCH response.  This is equivalent to "(ALL)"."
            result = await client.command("SEARCH RETURN () FLAGGED")
            found = esearches(result)
            check(req, result.ok and len(found) == 1 and found[0].tag == result.tag
                  and members(found[0].data.get("ALL")) == {1, 3},
                  f"SEARCH RETURN () FLAGGED answered {result.status} with {found}")

    run(scenario())


@pytest.mark.requirement("IMAP-ESEARCH-EMPTY")
def test_imap_esearch_without_match(target: Target, evidence: Evidence) -> None:
    req = "IMAP-ESEARCH-EMPTY"

    async def scenario() -> None:
        async with flagged_mailbox(target, evidence, "ESEARCH", [False, False]) as (client, _, _):
            for command in ("SEARCH RETURN (MIN MAX ALL COUNT) FLAGGED",
                            "UID SEARCH RETURN (MIN MAX ALL COUNT) FLAGGED"):
                result = await client.command(command)
                found = esearches(result)
                # RFC 4731 §3.1: MIN, MAX, ALL: "If the SEARCH results in no matches, the server
                # MUST NOT include the ... result option in the ESEARCH response; however, it
                # still MUST send the ESEARCH response." COUNT: "This result option MUST always
                # be included in the ESEARCH response."
                check(req, result.ok and len(found) == 1,
                      f"{command} over unflagged messages answered {result.status} with "
                      f"{len(found)} ESEARCH responses")
                check(req, found[0].data == {"COUNT": 0},
                      f"{command} with no match returned {found[0].data}, not COUNT 0 alone")

    run(scenario())
