"""IMAP in depth — CONTEXT=SORT (RFC 5267 §4): UID SORT RETURN (UPDATE) with unsolicited
ESEARCH ADDTO and REMOVEFROM whose context positions keep the results in the sort order, and
SORT RETURN (PARTIAL m:n) over the sort order.

Skipped where the server does not offer CONTEXT=SORT. The messages differ in size only, and are
sorted by SIZE: the expected orders are written out by hand. Changes are made in a second
session; the first hears of them with NOOP (RFC 5267 §4.3: "Typically, this would occur at the
same time as the FETCH, EXISTS, or EXPUNGE responses carrying the source of the change")."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence

import pytest

from harness.clients.imap import IMAPClient
from harness.protocol.imap.responses import ESearch, Response, UntaggedStatus
from harness.protocol.imap.seqset import SequenceSet
from harness.suite import Evidence, check, need, not_applicable, precondition, run, token
from harness.targets import Target
from suites.imap.esearch_helpers import esearches, partial_result
from suites.imap.imap_helpers import append, message, scratch, select, session, uids

pytestmark = pytest.mark.step(9)

CAP = "CONTEXT=SORT"
#: NOOPs sent to hear of a change before the test gives up waiting.
POLLS = 5
#: Padding of the four messages, in mailbox order; the first three \Flagged.
PADS = (3000, 1000, 4000, 2000)
#: The context's search program, and its sort criterion.
COMMAND = "UID SORT RETURN (UPDATE COUNT) (SIZE) UTF-8 FLAGGED"


def _sized(pad: int) -> bytes:
    return message(token(), body=("x" * 98 + "\r\n") * (pad // 100))


def _ordered(seqset: SequenceSet) -> list[int]:
    """The numbers of *seqset* in the order written, each range upwards (RFC 5267 §3.2: "Any
    ranges given by the server ... MUST be ordered in increasing numerical order after
    expansion")."""
    out: list[int] = []
    for first, last in seqset.ranges:
        if first is None or last is None:
            continue  # "*" has no place in a result update
        lo, hi = min(first, last), max(first, last)
        out.extend(range(lo, hi + 1))
    return out


def _apply(results: list[int], responses: Sequence[Response], tag: str,
           faults: list[str]) -> list[int]:
    """*results* after the ADDTO and REMOVEFROM of *responses* correlated to *tag*, processed
    "in the order they appear" (RFC 5267 §4.3.2) at their context positions (§4.3.3: "the first
    result in the set will occupy the new context position after insertion"; §4.3.4: "the first
    result in the set will occupy the given context position before removal"). What does not
    fit the results goes to *faults*; such an update is applied as a client would guess."""
    out = list(results)
    for response in responses:
        if not (isinstance(response, ESearch) and response.tag == tag):
            continue
        for update in response.updates:
            numbers = _ordered(update.numbers)
            at = update.position
            if at == 0:
                # §4.3.3: only "Where the searching command is a SEARCH or UID SEARCH command,
                # the context position MAY be zero."
                faults.append(f"{update.kind} ({at} {numbers}): position 0 in a SORT context")
            if update.kind == "ADDTO":
                if at > len(out) + 1:
                    faults.append(f"ADDTO ({at} {numbers}) past the end of {out}")
                index = max(at - 1, 0) if at else len(out)
                out[index:index] = [n for n in numbers if n not in out]
                continue
            if at and out[at - 1:at - 1 + len(numbers)] != numbers:
                faults.append(f"REMOVEFROM ({at} {numbers}) where {out} has "
                              f"{out[at - 1:at - 1 + len(numbers)]}")
            out = [n for n in out if n not in numbers]
    return out


def _refused(responses: Sequence[Response]) -> bool:
    """Whether the server refused to update (RFC 5267 §4.3.1: "an untagged NO is generated
    ... with a response-code of NOUPDATE"; "refusal to provide updates for a SORT command does
    not imply that SEARCH contexts will also be refused")."""
    return any(isinstance(r, UntaggedStatus) and r.status == "NO" and r.code is not None
               and r.code.name == "NOUPDATE" for r in responses)


@contextlib.asynccontextmanager
async def _sized_mailbox(target: Target, evidence: Evidence
                         ) -> AsyncIterator[tuple[IMAPClient, IMAPClient, str, list[int]]]:
    """A session offering CONTEXT=SORT with a scratch mailbox of the PADS messages selected, a
    second session with it selected too, and the UIDs in mailbox order."""
    async with session(target, evidence) as a:
        need(CAP in a.capabilities, f"the server does not offer {CAP}")
        async with scratch(a) as name, session(target, evidence) as b:
            for i, pad in enumerate(PADS):
                await append(a, name, _sized(pad), ["\\Flagged"] if i < 3 else [])
            await select(a, name)
            found = await uids(a)
            precondition(len(found) == len(PADS), f"UID SEARCH ALL found {found} after setup")
            await select(b, name)
            yield a, b, name, found


async def _poll(client: IMAPClient, done: Callable[[list[Response]], bool]) -> list[Response]:
    """NOOP until the responses gathered satisfy *done*, a few times at most; the responses."""
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


async def _updating_sort(client: IMAPClient, req: str) -> str | None:
    """COMMAND, judged under *req*; its tag, or None (not applicable) when refused NOUPDATE."""
    result = await client.command(COMMAND)
    check(req, result.ok, f"{COMMAND} answered {result.status}")
    if _refused(result.untagged):
        not_applicable(req, f"{COMMAND} was refused with NOUPDATE (RFC 5267 §4.3.1 lets a "
                            "server refuse SORT contexts while it keeps SEARCH ones)")
        return None
    found = esearches(result, result.tag)
    check(req, len(found) == 1 and found[0].data.get("COUNT") == 3,
          f"{COMMAND} over three flagged messages gave {found}, not one ESEARCH with COUNT 3")
    return result.tag


def _steps(uid: list[int]) -> list[tuple[str, list[int]]]:
    """The changes made in session *b* to the mailbox (PADS: UIDs uid[0..3] of 3000, 1000,
    4000 and 2000 octets of padding, the first three \\Flagged), and the results of COMMAND
    after each, by hand: sorted by size, 1000 < 2000 < 2500 < 3000 < 4000."""
    u1, u2, u3, u4 = uid
    steps: list[tuple[str, list[int]]] = [
        (f"UID STORE {u4} +FLAGS (\\Flagged)", [u2, u4, u1, u3]),   # 2000 goes in second
        (f"UID STORE {u1} -FLAGS (\\Flagged)", [u2, u4, u3]),       # 3000 leaves third
        (f"UID STORE {u2} +FLAGS (\\Deleted)", [u2, u4, u3]),       # no change
        ("EXPUNGE", [u4, u3]),                                      # 1000 leaves first
    ]
    return steps


async def _changes(b: IMAPClient, name: str, uid: list[int]
                   ) -> AsyncIterator[tuple[str, list[int]]]:
    """Make the changes of _steps in session *b*, then append a \\Flagged message of 2500
    octets of padding; after each, what was done and the results expected by hand (the new
    message goes in between the 2000 and the 4000; u1 is still there, unflagged)."""
    expected: list[int] = []
    for change, expected in _steps(uid):
        await _change(b, change)
        yield change, expected
    await append(b, name, _sized(2500), ["\\Flagged"])
    await _change(b, "NOOP")
    found = await uids(b)
    precondition(len(found) == 4 and found[-1] not in expected,
                 f"UID SEARCH ALL found {found} after the APPEND")
    yield "a flagged APPEND", [expected[0], found[-1], expected[1]]


async def _updated(a: IMAPClient, tag: str, results: list[int], expected: list[int],
                   faults: list[str]) -> tuple[list[int], list[Response]]:
    """NOOP in session *a* until the updates of context *tag* turn *results* into the set of
    *expected*; the results then (the faults to *faults*) and the ESEARCH responses seen."""
    seen = await _poll(a, lambda got: set(_apply(results, got, tag, [])) == set(expected))
    return _apply(results, seen, tag, faults), [r for r in seen if isinstance(r, ESearch)]


@pytest.mark.requirement("IMAP-CONTEXT-SORT-UPDATE")
def test_imap_context_sort_update(target: Target, evidence: Evidence) -> None:
    req = "IMAP-CONTEXT-SORT-UPDATE"

    async def scenario() -> None:
        async with _sized_mailbox(target, evidence) as (a, b, name, uid):
            tag = await _updating_sort(a, req)
            if tag is None:
                return
            results = [uid[1], uid[0], uid[2]]
            # RFC 5267 §4.1: "Servers advertising CONTEXT=SORT also advertise the SORT
            # capability ... and accept three additional return options for this extended
            # SORT"; §4.3: UPDATE "causes the server to issue unsolicited notifications
            # containing updates to the results that would be returned by an unmodified
            # searching command".
            check(req, "SORT" in a.capabilities, f"{CAP} is offered without SORT")
            async for change, expected in _changes(b, name, uid):
                results, seen = await _updated(a, tag, results, expected, [])
                check(req, set(results) == set(expected),
                      f"after {change} in another session the updates {seen} left the results "
                      f"{sorted(results)}, not {sorted(expected)}")

    run(scenario())


@pytest.mark.requirement("IMAP-CONTEXT-SORT-ORDER")
def test_imap_context_sort_order(target: Target, evidence: Evidence) -> None:
    req = "IMAP-CONTEXT-SORT-ORDER"

    async def scenario() -> None:
        async with _sized_mailbox(target, evidence) as (a, b, name, uid):
            result = await a.command(COMMAND)
            precondition(result.ok, f"{COMMAND} answered {result.status}")
            if _refused(result.untagged):
                not_applicable(req, f"{COMMAND} was refused with NOUPDATE")
                return
            tag = result.tag
            results = [uid[1], uid[0], uid[2]]  # by size: 1000, 3000, 4000
            # RFC 5267 §4.3.2: "servers MUST generate ADDTO and REMOVEFROM responses such that
            # the results are maintained in the requested order."
            async for change, expected in _changes(b, name, uid):
                faults: list[str] = []
                updated, seen = await _updated(a, tag, results, expected, faults)
                precondition(set(updated) == set(expected),
                             f"after {change} the updates left {updated}: no updates to judge")
                check(req, not faults and updated == expected,
                      f"after {change} the updates {seen} turned {results} into {updated}, not "
                      f"{expected} ({faults})")
                results = expected

    run(scenario())


@pytest.mark.requirement("IMAP-CONTEXT-SORT-PARTIAL")
def test_imap_context_sort_partial(target: Target, evidence: Evidence) -> None:
    req = "IMAP-CONTEXT-SORT-PARTIAL"

    async def scenario() -> None:
        async with _sized_mailbox(target, evidence) as (a, _, _name, uid):
            u1, u2, u3, u4 = uid
            # RFC 5267 §4.1: CONTEXT=SORT servers "accept three additional return options for
            # this extended SORT"; §4.4: "The first result is 1"; results beyond the end are
            # left out, "NIL indicates no results correspond to the requested range"; §5: "A
            # range 500:400 is the same as 400:500". By size: u2, u4, u1, u3.
            cases = (("UID SORT", "(SIZE)", "2:3", [u4, u1]),
                     ("UID SORT", "(REVERSE SIZE)", "4:2", [u1, u4, u2]),
                     ("UID SORT", "(SIZE)", "4:9", [u3]),
                     ("SORT", "(SIZE)", "1:2", [2, 4]),
                     ("UID SORT", "(SIZE)", "5:9", None))
            for verb, criteria, span, expected in cases:
                command = f"{verb} RETURN (PARTIAL {span}) {criteria} UTF-8 ALL"
                partial, uid_flag = await partial_result(a, req, command, span)
                got = None if partial.numbers is None else _ordered(partial.numbers)
                check(req, got == expected and uid_flag == (verb == "UID SORT"),
                      f"{command} returned {partial} (UID {uid_flag}), not {expected}")

    run(scenario())
