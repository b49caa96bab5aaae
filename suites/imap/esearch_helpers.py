"""What the ESEARCH, SEARCHRES, WITHIN and CONTEXT=SEARCH suites share: a mailbox of messages
selected in a session that offers the extension, and ESEARCH and SEARCH results read back."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

from harness.clients.imap import CommandResult, IMAPClient
from harness.protocol.imap.responses import ESearch, PartialResult, Search
from harness.protocol.imap.seqset import SequenceSet
from harness.suite import Evidence, check, need, precondition, token
from harness.targets import Target
from suites.imap.imap_helpers import append, message, scratch, select, session, uids


@contextlib.asynccontextmanager
async def flagged_mailbox(target: Target, evidence: Evidence, capability: str,
                          flagged: Sequence[bool]) -> AsyncIterator[tuple[IMAPClient, str, list[int]]]:
    """A session offering *capability* with a scratch mailbox selected, holding one message per
    entry of *flagged* (\\Flagged where True) after a first message was appended and expunged, so
    that no sequence number equals its UID; the UIDs in mailbox order."""
    async with session(target, evidence) as client, scratch(client) as name:
        need(capability in client.capabilities, f"the server does not offer {capability}")
        await append(client, name, message(token()), ["\\Deleted"])
        for flag in flagged:
            await append(client, name, message(token()), ["\\Flagged"] if flag else [])
        await select(client, name)
        expunged = await client.expunge()
        precondition(expunged.ok, f"setup EXPUNGE answered {expunged.status}")
        found = await uids(client)
        precondition(len(found) == len(flagged), f"UID SEARCH ALL found {found} after setup")
        yield client, name, found


def esearches(result: CommandResult, tag: str | None = None) -> list[ESearch]:
    """The ESEARCH responses of *result* (those correlated to *tag*, when given)."""
    return [r for r in result.untagged
            if isinstance(r, ESearch) and (tag is None or r.tag == tag)]


def searched(result: CommandResult) -> set[int]:
    """The numbers of *result*'s SEARCH responses, or of the ALL of its ESEARCH responses."""
    found: set[int] = set()
    for response in result.untagged:
        if isinstance(response, Search):
            found.update(response.numbers)
        elif isinstance(response, ESearch):
            found.update(members(response.data.get("ALL")))
    return found


def members(value: object) -> set[int]:
    """The numbers of a sequence set (text as ESEARCH ALL has it, or parsed); none for None."""
    if value is None:
        return set()
    seqset = value if isinstance(value, SequenceSet) else SequenceSet.parse(str(value))
    largest = max((n for r in seqset.ranges for n in r if n is not None), default=0)
    return set(seqset.iter(largest))


async def partial_result(client: IMAPClient, requirement: str, command: str,
                         span: str) -> tuple[PartialResult, bool]:
    """*command*, with RETURN (PARTIAL *span*), judged under *requirement* to answer one ESEARCH
    with a PARTIAL of the range asked (RFC 5267 §4.4: "a PARTIAL return data item that has, as
    payload, the original range"; §5: "A range 500:400 is the same as 400:500", so either
    spelling); that PARTIAL and whether the ESEARCH has UID."""
    result = await client.command(command)
    found = esearches(result, result.tag)
    check(requirement, result.ok and len(found) == 1,
          f"{command} answered {result.status} with {len(found)} ESEARCH responses")
    partial = found[0].data.get("PARTIAL")
    check(requirement, isinstance(partial, PartialResult),
          f"{command} returned {found[0].data}, no PARTIAL")
    assert isinstance(partial, PartialResult)
    asked = sorted(int(n) for n in span.split(":"))
    check(requirement, sorted((partial.first, partial.last)) == asked,
          f"{command} returned the range {partial.first}:{partial.last}")
    return partial, found[0].uid
