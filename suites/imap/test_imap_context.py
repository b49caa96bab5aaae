"""IMAP in depth — CONTEXT=SEARCH (RFC 5267 §4): RETURN (UPDATE) with unsolicited ESEARCH
ADDTO and REMOVEFROM, CANCELUPDATE, and RETURN (PARTIAL m:n).

Skipped where the server does not offer CONTEXT=SEARCH. Changes are made in a second session;
the first hears of them with NOOP (RFC 5267 §4.3: "Typically, this would occur at the same time
as the FETCH, EXISTS, or EXPUNGE responses carrying the source of the change")."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence

import pytest

from harness.clients.imap import CommandResult, IMAPClient
from harness.protocol.imap.responses import (
    ESearch,
    Exists,
    Expunge,
    Response,
    UntaggedStatus,
)
from harness.suite import Evidence, check, not_applicable, precondition, run, token
from harness.targets import Target
from suites.imap.esearch_helpers import esearches, flagged_mailbox, members, partial_result
from suites.imap.imap_helpers import append, message, select, session, until_tagged

pytestmark = pytest.mark.step(9)

CAP = "CONTEXT=SEARCH"
#: NOOPs sent to hear of a change before the test gives up waiting.
POLLS = 5


def _apply(results: set[int], responses: Sequence[Response], tag: str) -> set[int]:
    """*results* after the ADDTO and REMOVEFROM of *responses* correlated to *tag*, processed
    "in the order they appear" (RFC 5267 §4.3.2); positions are not needed for a set."""
    out = set(results)
    for response in responses:
        if isinstance(response, ESearch) and response.tag == tag:
            for update in response.updates:
                if update.kind == "ADDTO":
                    out |= members(update.numbers)
                else:
                    out -= members(update.numbers)
    return out


def _updates(responses: Sequence[Response], tag: str) -> list[ESearch]:
    return [r for r in responses if isinstance(r, ESearch) and r.tag == tag and r.updates]


def _refused(result: CommandResult) -> bool:
    """Whether the server refused to update (RFC 5267 §4.3.1: "an untagged NO is generated
    ... with a response-code of NOUPDATE")."""
    return any(isinstance(r, UntaggedStatus) and r.status == "NO" and r.code is not None
               and r.code.name == "NOUPDATE" for r in result.untagged)


async def _updating_search(client: IMAPClient, command: str, req: str) -> tuple[str, set[int]]:
    """*command* (with RETURN (UPDATE ALL)); its tag and the results it returned."""
    result = await client.command(command)
    check(req, result.ok, f"{command} answered {result.status}")
    found = esearches(result, result.tag)
    check(req, not _refused(result),
          f"{command} was refused with NOUPDATE: \"Servers MUST provide at least one updating "
          "context per client\"")
    check(req, len(found) == 1, f"{command} gave {len(found)} ESEARCH responses")
    return result.tag, members(found[0].data.get("ALL"))


@contextlib.asynccontextmanager
async def _watched(target: Target, evidence: Evidence, flagged: Sequence[bool]
                   ) -> AsyncIterator[tuple[IMAPClient, IMAPClient, str, list[int]]]:
    """The watching session with its mailbox selected (see flagged_mailbox), and a second
    session that has it selected too, to make the changes."""
    async with flagged_mailbox(target, evidence, CAP, flagged) as (a, name, uids), \
            session(target, evidence) as b:
        await select(b, name)
        yield a, b, name, uids


async def _poll(client: IMAPClient, done: Callable[[list[Response]], bool]) -> list[Response]:
    """NOOP until the responses gathered satisfy *done*, a few times at most (RFC 5267 §4.3:
    updates "SHOULD be delivered to clients in a timely manner"; a server may compute them a
    moment late); the responses gathered."""
    seen: list[Response] = []
    for attempt in range(POLLS):
        if attempt:
            await asyncio.sleep(0.2)
        seen += (await client.command("NOOP")).untagged
        if done(seen):
            break
    return seen


async def _change(client: IMAPClient, command: str) -> None:
    result = await client.command(command)
    precondition(result.ok, f"{command} in the second session answered {result.status}")


@pytest.mark.requirement("IMAP-CONTEXT-UPDATE")
def test_imap_context_update_notifies(target: Target, evidence: Evidence) -> None:
    req = "IMAP-CONTEXT-UPDATE"

    async def scenario() -> None:
        async with _watched(target, evidence, [True, False, False]) as (a, b, name, uids):
            command = "UID SEARCH RETURN (UPDATE ALL) FLAGGED"
            tag, results = await _updating_search(a, command, req)
            check(req, results == {uids[0]}, f"{command} returned {results}, not {uids[0]}")
            # RFC 5267 §4.3: UPDATE "causes the server to issue unsolicited notifications
            # containing updates to the results that would be returned by an unmodified
            # searching command"; "whether by new messages arriving in the mailbox, metadata
            # such as flags being changed, or messages being expunged".
            steps = ((f"UID STORE {uids[1]} +FLAGS (\\Flagged)", {uids[0], uids[1]}),
                     (f"UID STORE {uids[0]} -FLAGS (\\Flagged)", {uids[1]}),
                     (f"UID STORE {uids[1]} +FLAGS (\\Deleted)", {uids[1]}),
                     ("EXPUNGE", set()))
            for change, expected in steps:
                await _change(b, change)
                seen = await _poll(a, lambda got, was=results, want=expected: _apply(was, got, tag) == want)
                results = _apply(results, seen, tag)
                check(req, results == expected,
                      f"after {change} in another session the updates {_updates(seen, tag)} "
                      f"left the results {sorted(results)}, not {sorted(expected)}")
            # "An attempt to use UPDATE where a tag is already in use with a previous searching
            # command that itself used UPDATE SHALL result in the server rejecting the searching
            # command with a BAD response."
            await a.send_raw(f"{tag} UID SEARCH RETURN (UPDATE) ALL\r\n".encode("ascii"))
            reused, _ = await until_tagged(a, tag)
            status = reused.status if reused else "nothing: the connection closed"
            check(req, status == "BAD", f"UPDATE with the tag {tag} in use answered {status}")

    run(scenario())


@pytest.mark.requirement("IMAP-CONTEXT-ORDER")
def test_imap_context_update_order(target: Target, evidence: Evidence) -> None:
    req = "IMAP-CONTEXT-ORDER"

    async def scenario() -> None:
        async with _watched(target, evidence, [False, True, True]) as (a, b, name, _):
            command = "SEARCH RETURN (UPDATE ALL) FLAGGED"
            result = await a.command(command)
            if not result.ok or _refused(result):
                not_applicable(req, f"{command} answered {result.status} or NOUPDATE: the "
                                    "server keeps no updating context by sequence number")
                return
            tag = result.tag
            await _change(b, "STORE 2 +FLAGS (\\Deleted)")
            await _change(b, "EXPUNGE")
            polled = await a.command("NOOP")
            seen = list(polled.untagged)
            removal = next((i for i, r in enumerate(seen) if isinstance(r, ESearch)
                            and r.tag == tag and any(u.kind == "REMOVEFROM" and 2 in
                                                     members(u.numbers) for u in r.updates)),
                           None)
            expunge = next((i for i, r in enumerate(seen) if isinstance(r, Expunge)
                            and r.seq == 2), None)
            precondition(removal is not None and expunge is not None,
                         f"after message 2 was expunged NOOP gave {seen}")
            assert removal is not None and expunge is not None
            # RFC 5267 §4.3.4: "a REMOVEFROM containing message sequence numbers removed as a
            # result of those messages being expunged MUST be sent prior to the expunge
            # notification itself, in order that those sequence numbers remain valid."
            check(req, removal < expunge,
                  f"REMOVEFROM of message 2 came after its EXPUNGE: {seen}")
            await append(b, name, message(token()), ["\\Flagged"])
            polled = await a.command("NOOP")
            seen = list(polled.untagged)
            exists = next((i for i, r in enumerate(seen) if isinstance(r, Exists) and r.n == 3),
                          None)
            addition = next((i for i, r in enumerate(seen) if isinstance(r, ESearch)
                             and r.tag == tag and any(u.kind == "ADDTO" and 3 in
                                                      members(u.numbers) for u in r.updates)),
                            None)
            precondition(exists is not None and addition is not None,
                         f"after a flagged message was appended NOOP gave {seen}")
            assert exists is not None and addition is not None
            # RFC 5267 §4.3.3: "an ADDTO containing message sequence numbers added as a result
            # of those messages being delivered or appended MUST be sent after the EXISTS
            # notification itself, in order that those sequence numbers are valid."
            check(req, exists < addition, f"ADDTO of message 3 came before its EXISTS: {seen}")

    run(scenario())


@pytest.mark.requirement("IMAP-CONTEXT-CANCEL")
def test_imap_cancelupdate(target: Target, evidence: Evidence) -> None:
    req = "IMAP-CONTEXT-CANCEL"

    async def scenario() -> None:
        async with _watched(target, evidence, [False, False, False]) as (a, b, name, uids):
            result = await a.command("UID SEARCH RETURN (UPDATE ALL) FLAGGED")
            precondition(result.ok, f"UID SEARCH RETURN (UPDATE) answered {result.status}")
            tag = result.tag
            await _change(b, f"UID STORE {uids[0]} +FLAGS (\\Flagged)")
            seen = await _poll(a, lambda got: _apply(set(), got, tag) == {uids[0]})
            precondition(_apply(set(), seen, tag) == {uids[0]},
                         f"no ADDTO of UID {uids[0]} came before CANCELUPDATE: {seen}")
            # RFC 5267 §4.3.5: CANCELUPDATE "will prevent all updates to the contexts named in
            # the arguments from being transmitted by the server."
            cancelled = await a.command(f'CANCELUPDATE "{tag}"')
            check(req, cancelled.ok, f"CANCELUPDATE \"{tag}\" answered {cancelled.status}")
            await _change(b, f"UID STORE {uids[1]} +FLAGS (\\Flagged)")
            await _change(b, f"UID STORE {uids[0]} -FLAGS (\\Flagged)")
            polled = await a.command("NOOP")
            late = _updates([*cancelled.untagged, *polled.untagged], tag)
            check(req, not late, f"after CANCELUPDATE the search {tag} still got {late}")

    run(scenario())


@pytest.mark.requirement("IMAP-CONTEXT-PARTIAL")
def test_imap_search_partial(target: Target, evidence: Evidence) -> None:
    req = "IMAP-CONTEXT-PARTIAL"

    async def scenario() -> None:
        async with flagged_mailbox(target, evidence, CAP,
                                   [False, True, True, False, True, True]) as (client, _, uids):
            # RFC 5267 §4.4: "The first result is 1"; "For SEARCH results, the entire result
            # list MUST be ordered in mailbox order"; "Where a PARTIAL search return option
            # references results that do not exist ... the server returns the results that are
            # in the set"; "(24000:24500 NIL) // No results are present". §5: "A range 500:400
            # is the same as 400:500."
            cases = (("SEARCH", "1:2", {2, 3}), ("SEARCH", "3:10", {5, 6}),
                     ("SEARCH", "2:1", {2, 3}), ("SEARCH", "5:9", None),
                     ("UID SEARCH", "2:3", {uids[2], uids[4]}))
            for verb, span, expected in cases:
                command = f"{verb} RETURN (PARTIAL {span}) FLAGGED"
                partial, uid = await partial_result(client, req, command, span)
                got = None if partial.numbers is None else members(partial.numbers)
                check(req, got == expected and uid == (verb == "UID SEARCH"),
                      f"{command} over flagged messages 2, 3, 5, 6 returned {partial} "
                      f"(UID {uid}), not {expected}")

    run(scenario())
