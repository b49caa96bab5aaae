"""IMAP in depth — SEARCHRES (RFC 5182): SEARCH RETURN (SAVE) and the "$" message set.

Skipped where the server does not offer SEARCHRES. Each mailbox starts with a message expunged,
so that sequence numbers and UIDs differ and "$" is seen to name messages, not numbers.
"""

from __future__ import annotations

import pytest

from harness.clients.imap import IMAPClient
from harness.protocol.imap.responses import Fetch, Status
from harness.suite import Evidence, check, precondition, run
from harness.targets import Target
from suites.imap.esearch_helpers import flagged_mailbox, searched
from suites.imap.imap_helpers import mbox, scratch, select

pytestmark = pytest.mark.step(9)

CAP = "SEARCHRES"


async def _saved(client: IMAPClient, req: str, *, uid: bool = False) -> set[int]:
    """The messages of "$" (sequence numbers, or UIDs with *uid*), by SEARCH $."""
    command = "UID SEARCH $" if uid else "SEARCH $"
    result = await client.command(command)
    check(req, result.ok, f"{command} answered {result.status}")
    return searched(result)


async def _save(client: IMAPClient, criteria: str, *, uid: bool = False,
                options: str = "SAVE") -> None:
    """SEARCH RETURN (*options*) *criteria*, a step the test builds on."""
    command = f"{'UID ' if uid else ''}SEARCH RETURN ({options}) {criteria}"
    result = await client.command(command)
    precondition(result.ok, f"{command} answered {result.status}")


def _fetched(untagged: tuple[object, ...]) -> dict[int, object]:
    """Sequence number -> UID of the FETCH responses."""
    return {r.seq: r.items.get("UID") for r in untagged if isinstance(r, Fetch)}


async def _message_count(client: IMAPClient, name: str) -> int | None:
    status = await client.command(f"STATUS {mbox(name)} (MESSAGES)")
    counts = [r.items.get("MESSAGES") for r in status.untagged if isinstance(r, Status)]
    precondition(status.ok and len(counts) == 1, f"STATUS answered {status.status}: {counts}")
    value = counts[0]
    return value if isinstance(value, int) else None


@pytest.mark.requirement("IMAP-SEARCHRES-SAVE")
def test_imap_searchres_save_and_use(target: Target, evidence: Evidence) -> None:
    req = "IMAP-SEARCHRES-SAVE"

    async def scenario() -> None:
        async with flagged_mailbox(target, evidence, CAP, [False, True, False, True]) as (
                client, _, uids), scratch(client) as other:
            # RFC 5182 §2.1: "A successful SEARCH command with the SAVE result option sets the
            # value of the search result variable to the list of messages found".
            await _save(client, "FLAGGED")
            result = await client.command("FETCH $ (UID)")
            check(req, result.ok and _fetched(result.untagged) == {2: uids[1], 4: uids[3]},
                  f"FETCH $ (UID) after SEARCH RETURN (SAVE) FLAGGED answered {result.status} "
                  f"with {_fetched(result.untagged)}; expected messages 2 and 4")
            result = await client.command("UID FETCH $ (UID)")
            got = set(_fetched(result.untagged).values())
            check(req, result.ok and got == {uids[1], uids[3]},
                  f"UID FETCH $ (UID) answered {result.status} with UIDs {sorted(map(str, got))}")
            # "$" saved by UID SEARCH, used where sequence numbers are expected (§2.1
            # implementation note: "the "$" marker can be set as a result of a UID SEARCH (SAVE)
            # command and used as a parameter to a FETCH command"). Example 9: "the result of
            # the second SEARCH always overrides the result of the first".
            await _save(client, "UNFLAGGED", uid=True)
            result = await client.command("FETCH $ (UID)")
            check(req, result.ok and _fetched(result.untagged) == {1: uids[0], 3: uids[2]},
                  f"FETCH $ (UID) after UID SEARCH RETURN (SAVE) UNFLAGGED answered "
                  f"{result.status} with {_fetched(result.untagged)}; expected messages 1 and 3")
            check(req, await _saved(client, req) == {1, 3}, "SEARCH $ did not find messages 1, 3")
            check(req, await _saved(client, req, uid=True) == {uids[0], uids[2]},
                  f"UID SEARCH $ did not find UIDs {uids[0]}, {uids[2]}")
            stored = await client.command("STORE $ +FLAGS.SILENT (\\Answered)")
            answered = searched(await client.command("SEARCH ANSWERED"))
            check(req, stored.ok and answered == {1, 3},
                  f"STORE $ +FLAGS answered {stored.status}; SEARCH ANSWERED found {answered}")
            copied = await client.command(f"COPY $ {mbox(other)}")
            count = await _message_count(client, other)
            check(req, copied.ok and count == 2,
                  f"COPY $ answered {copied.status}; the target holds {count} messages, not 2")
            if "MOVE" in client.capabilities:
                moved = await client.command(f"UID MOVE $ {mbox(other)}")
                count = await _message_count(client, other)
                left = searched(await client.command("UID SEARCH ALL"))
                check(req, moved.ok and count == 4 and left == {uids[1], uids[3]},
                      f"UID MOVE $ answered {moved.status}; the target holds {count} messages, "
                      f"not 4, the source UIDs {sorted(left)}")

    run(scenario())


@pytest.mark.requirement("IMAP-SEARCHRES-RESET")
def test_imap_searchres_reset_by_select(target: Target, evidence: Evidence) -> None:
    req = "IMAP-SEARCHRES-RESET"

    async def scenario() -> None:
        async with flagged_mailbox(target, evidence, CAP, [True, True]) as (client, name, _):
            # RFC 5182 §2.1: "Upon successful completion of a SELECT or an EXAMINE command
            # (after the tagged OK response), the current search result variable is reset to
            # the empty sequence."
            check(req, await _saved(client, req) == set(), "\"$\" was not empty before any SAVE")
            for verb in ("SELECT", "EXAMINE"):
                await _save(client, "ALL")
                precondition(searched(await client.command("SEARCH $")) == {1, 2},
                             "SEARCH $ after SEARCH RETURN (SAVE) ALL did not find messages 1, 2")
                await select(client, name, readonly=verb == "EXAMINE")
                left = await _saved(client, req)
                check(req, left == set(), f"after {verb} \"$\" still names messages {left}")
            await _save(client, "ALL")
            closed = await client.command("CLOSE")
            precondition(closed.ok, f"CLOSE answered {closed.status}")
            await select(client, name)
            left = await _saved(client, req)
            check(req, left == set(), f"after CLOSE and SELECT \"$\" still names {left}")

    run(scenario())


@pytest.mark.requirement("IMAP-SEARCHRES-EMPTY")
def test_imap_searchres_empty_is_valid(target: Target, evidence: Evidence) -> None:
    req = "IMAP-SEARCHRES-EMPTY"

    async def scenario() -> None:
        async with flagged_mailbox(target, evidence, CAP, [False, False]) as (
                client, _, _), scratch(client) as other:
            # RFC 5182 §2.1: "even if the "$" marker contains the empty list of messages, it
            # must be treated by all commands accepting message sets as parameters as a valid,
            # but non-matching list of messages.  For example, the "FETCH $" command would
            # return a tagged OK response and no FETCH responses." (Example 6: COPY.)
            for when in ("before any SAVE", "after a SAVE that found nothing"):
                for command in ("FETCH $ (UID)", "UID FETCH $ (UID)",
                                "STORE $ +FLAGS (\\Flagged)", f"COPY $ {mbox(other)}"):
                    result = await client.command(command)
                    fetched = _fetched(result.untagged)
                    check(req, result.ok and not fetched,
                          f"{command} {when} answered {result.status} with FETCH {fetched}")
                await _save(client, "FLAGGED")
            count = await _message_count(client, other)
            check(req, count == 0, f"COPY $ of nothing put {count} messages in the target")

    run(scenario())


@pytest.mark.requirement("IMAP-SEARCHRES-FAILED")
def test_imap_searchres_failed_search(target: Target, evidence: Evidence) -> None:
    req = "IMAP-SEARCHRES-FAILED"

    async def scenario() -> None:
        async with flagged_mailbox(target, evidence, CAP, [False, True, False, True]) as (
                client, _, _):
            await _save(client, "FLAGGED")
            # RFC 5182 §2.1: "Any of the following SEARCH commands MUST NOT change the search
            # result variable: a SEARCH command that caused the server to return the BAD tagged
            # response, a SEARCH command with no SAVE result option that caused the server to
            # return NO tagged response, a successful SEARCH command with no SAVE result option."
            for command, status in (("SEARCH CHARSET X-NO-SUCH-CHARSET TEXT x", "NO"),
                                    ("SEARCH RETURN (SAVE) NO-SUCH-KEY", "BAD"),
                                    ("SEARCH RETURN (ALL) UNFLAGGED", "OK")):
                result = await client.command(command)
                precondition(result.status == status,
                             f"{command} answered {result.status}, not {status}")
                left = await _saved(client, req)
                check(req, left == {2, 4},
                      f"after {command} ({status}) \"$\" names {left}, not messages 2 and 4")
            # "A SEARCH command with the SAVE result option that caused the server to return the
            # NO tagged response sets the value of the search result variable to the empty
            # sequence." (Example 5: an unknown CHARSET.)
            command = "SEARCH RETURN (SAVE) CHARSET X-NO-SUCH-CHARSET TEXT x"
            result = await client.command(command)
            precondition(result.status == "NO", f"{command} answered {result.status}, not NO")
            left = await _saved(client, req)
            check(req, left == set(), f"after {command} (NO) \"$\" still names {left}")

    run(scenario())


@pytest.mark.requirement("IMAP-SEARCHRES-MINMAX")
def test_imap_searchres_save_with_min_max(target: Target, evidence: Evidence) -> None:
    req = "IMAP-SEARCHRES-MINMAX"

    async def scenario() -> None:
        async with flagged_mailbox(target, evidence, CAP, [False, True, True, True]) as (
                client, _, _):
            # RFC 5182 §2.4, its table: SAVE MIN -> MIN; SAVE MAX -> MAX; SAVE MIN MAX ->
            # MIN & MAX; SAVE with ALL and/or COUNT (and optional MIN, MAX) -> all found
            # messages.
            for options, expected in (("SAVE MIN", {2}), ("SAVE MAX", {4}),
                                      ("MAX SAVE MIN", {2, 4}), ("SAVE MIN COUNT", {2, 3, 4}),
                                      ("ALL SAVE MIN", {2, 3, 4})):
                await _save(client, "FLAGGED", options=options)
                left = await _saved(client, req)
                check(req, left == expected,
                      f"after SEARCH RETURN ({options}) FLAGGED (messages 2-4) \"$\" names "
                      f"{sorted(left)}, not {sorted(expected)}")

    run(scenario())


@pytest.mark.requirement("IMAP-SEARCHRES-EXPUNGE")
def test_imap_searchres_follows_expunge(target: Target, evidence: Evidence) -> None:
    req = "IMAP-SEARCHRES-EXPUNGE"

    async def scenario() -> None:
        async with flagged_mailbox(target, evidence, CAP, [False, True, False, True]) as (
                client, _, uids):
            await _save(client, "FLAGGED")
            # RFC 5182 §2.1: "When a message listed in the search result variable is EXPUNGEd,
            # it is automatically removed from the list. ... if the server stores the list as a
            # list of message numbers, it MUST automatically adjust them when notifying the
            # client about expunged messages".
            for seq, left_seqs, left_uids in ((1, {1, 3}, {uids[1], uids[3]}),
                                              (3, {1}, {uids[1]})):
                stored = await client.command(f"STORE {seq} +FLAGS.SILENT (\\Deleted)")
                expunged = await client.command("EXPUNGE")
                precondition(stored.ok and expunged.ok,
                             f"STORE {seq} \\Deleted answered {stored.status}, EXPUNGE "
                             f"{expunged.status}")
                now = await _saved(client, req)
                check(req, now == left_seqs,
                      f"after expunging message {seq} SEARCH $ found {sorted(now)}, not "
                      f"{sorted(left_seqs)}")
                now = await _saved(client, req, uid=True)
                check(req, now == left_uids,
                      f"after expunging message {seq} UID SEARCH $ found {sorted(now)}, not "
                      f"{sorted(left_uids)}")

    run(scenario())
