"""IMAP extensions — THREAD (RFC 5256 §3): ORDEREDSUBJECT, REFERENCES and UID THREAD.

Ten hand-made messages with Message-ID, References and In-Reply-To chains (two parents that
are not in the mailbox among them) are appended; the expected trees are worked out by hand
from the RFC's algorithms in the comments beside them. Each test is skipped where the server
does not advertise its THREAD=... capability.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from harness.clients.imap import CommandResult, IMAPClient
from harness.protocol.imap.responses import Thread, ThreadNode
from harness.suite import Evidence, check, need, precondition, run
from harness.targets import Target
from suites.imap.imap_helpers import scratch, session, uids
from suites.imap.test_imap_sort import fill, sort_message

pytestmark = pytest.mark.step(9)

T = TypeVar("T")


def _m(subject: str, date: str, message_id: str, *refs: tuple[str, str]) -> list[tuple[str, str]]:
    return [("From", "thread@example.com"), ("To", "rcpt@example.net"), ("Subject", subject),
            ("Date", f"Mon, 02 Jan 2023 {date}"), ("Message-ID", message_id), *refs]


#: Message 1 first. Sent dates are in UTC on 2 Jan 2023 (message 2's is 13:00 +0200 = 11:00).
MESSAGES: list[list[tuple[str, str]]] = [
    _m("Lunch", "10:00:00 +0000", "<t1@example.com>"),
    _m("Re: lunch", "13:00:00 +0200", "<t2@example.com>", ("In-Reply-To", "<t1@example.com>"),
       ("References", "<t1@example.com>")),
    _m("Meeting", "09:00:00 +0000", "<t3@example.com>"),
    _m("Re: Meeting", "12:00:00 +0000", "<t4@example.com>",
       ("References", "<t3@example.com> <missing@example.com>")),
    _m("Re: lunch", "11:30:00 +0000", "<t5@example.com>", ("In-Reply-To", "<t2@example.com>")),
    _m("Re: Party", "08:00:00 +0000", "<t6@example.com>", ("References", "<gone@example.com>")),
    _m("Party", "14:00:00 +0000", "<t7@example.com>"),
    _m("Re: Meeting", "13:00:00 +0000", "<t8@example.com>"),
    _m("Re: Trip", "15:00:00 +0000", "<t9@example.com>", ("References", "<trip@example.com>")),
    _m("Re: Trip", "15:30:00 +0000", "<t10@example.com>", ("References", "<trip@example.com>")),
]


def node(number: int | None, *children: ThreadNode) -> ThreadNode:
    return ThreadNode(number, children)


def _with_thread_set(target: Target, evidence: Evidence,
                     probe: Callable[[IMAPClient], Awaitable[T]], *, capabilities: tuple[str, ...],
                     shift_uids: bool = False) -> T:
    """The ten messages in a scratch mailbox, selected, then *probe*; skipped unless the server
    offers one of *capabilities*."""
    async def scenario() -> T:
        async with session(target, evidence) as client:
            need(any(c in client.capabilities for c in capabilities),
                 f"the server offers none of {', '.join(capabilities)}")
            async with scratch(client) as name:
                await fill(client, name, [(sort_message(h, 10), None) for h in MESSAGES],
                           shift_uids=shift_uids)
                return await probe(client)

    return run(scenario())


def _threads(result: CommandResult) -> tuple[ThreadNode, ...]:
    found: list[ThreadNode] = []
    for response in result.untagged:
        if isinstance(response, Thread):
            found.extend(response.threads)
    return tuple(found)


async def thread(client: IMAPClient, requirement: str, arguments: str, *,
                 uid: bool = False) -> tuple[ThreadNode, ...]:
    command = f"{'UID ' if uid else ''}THREAD {arguments}"
    result = await client.command(command)
    check(requirement, result.ok, f"{command} answered {result.status}")
    return _threads(result)


@pytest.mark.requirement("IMAP-THREAD-ORDEREDSUBJECT")
def test_imap_thread_orderedsubject(target: Target, evidence: Evidence) -> None:
    # RFC 5256 §3 ORDEREDSUBJECT: "sorted by base subject and then by the sent date ... split
    # into separate threads, with each thread containing messages with the same base subject
    # text. Finally, the threads are sorted by the sent date of the first message in the
    # thread." "The second message of a thread is the child of the first message, and
    # subsequent messages of the thread are siblings of the second message".
    # Base subjects: party 6 (08:00) 7 (14:00); meeting 3 (09:00) 4 (12:00) 8 (13:00);
    # lunch 1 (10:00) 2 (11:00) 5 (11:30); trip 9 (15:00) 10 (15:30).
    want = (node(6, node(7)), node(3, node(4), node(8)), node(1, node(2), node(5)),
            node(9, node(10)))

    async def probe(client: IMAPClient) -> None:
        got = await thread(client, "IMAP-THREAD-ORDEREDSUBJECT", "ORDEREDSUBJECT UTF-8 ALL")
        check("IMAP-THREAD-ORDEREDSUBJECT", got == want,
              f"THREAD ORDEREDSUBJECT answered {got}, not {want}")

    _with_thread_set(target, evidence, probe, capabilities=("THREAD=ORDEREDSUBJECT",))


@pytest.mark.requirement("IMAP-THREAD-REFERENCES")
def test_imap_thread_references(target: Target, evidence: Evidence) -> None:
    # RFC 5256 §3 REFERENCES, by hand:
    # (1) links: 1 -> 2 (References), 2 -> 5 (In-Reply-To, no References), 3 -> <missing> -> 4,
    #     <gone> -> 6, <trip> -> 9 and <trip> -> 10; 7 and 8 have no references.
    # (2) roots: 1, 3, <gone>, 7, 8, <trip>.
    # (3) pruning: <missing> is spliced out (4 becomes 3's child); <gone> has one child, so 6
    #     is promoted to the root; <trip> has two, so it stays ("Do not promote the children if
    #     doing so would make them children of the root, unless there is only one child").
    # (4) by sent date: 6 (08:00), 3 (09:00), 1 (10:00), 8 (13:00), 7 (14:00), <trip> (9's
    #     15:00).
    # (5) subjects: "party": 6 first, replaced by 7 ("The message in the subject table is a
    #     reply or forward and the current message is not"), then 6, a reply, becomes 7's
    #     child; "meeting": 3 stays, 8 (a reply) becomes 3's child.
    # (6) siblings by sent date: 3's children 4 (12:00) and 8 (13:00); the roots 3, 1, 7,
    #     <trip>.
    want = (node(3, node(4), node(8)), node(1, node(2, node(5))), node(7, node(6)),
            node(None, node(9), node(10)))

    async def probe(client: IMAPClient) -> None:
        got = await thread(client, "IMAP-THREAD-REFERENCES", "REFERENCES UTF-8 ALL")
        check("IMAP-THREAD-REFERENCES", got == want,
              f"THREAD REFERENCES answered {got}, not {want}")

    _with_thread_set(target, evidence, probe, capabilities=("THREAD=REFERENCES",))


def _expect_references(target: Target, evidence: Evidence, messages: list[list[tuple[str, str]]],
                       requirement: str, want: tuple[ThreadNode, ...]) -> None:
    """*messages* alone in a scratch mailbox; THREAD REFERENCES must answer *want*."""
    async def scenario() -> None:
        async with session(target, evidence) as client:
            need("THREAD=REFERENCES" in client.capabilities,
                 "the server does not offer THREAD=REFERENCES")
            async with scratch(client) as name:
                await fill(client, name, [(sort_message(h, 10), None) for h in messages])
                got = await thread(client, requirement, "REFERENCES UTF-8 ALL")
                check(requirement, got == want, f"THREAD REFERENCES answered {got}, not {want}")

    run(scenario())


#: One thread whose links test the rules of step (1), message 1 first.
LINKS: list[list[tuple[str, str]]] = [
    _m("root", "09:00:00 +0000", "<r1@example.com>"),
    _m("Re: root", "10:00:00 +0000", "<r2@example.com>", ("References", "<r1@example.com>")),
    _m("Re: root", "11:00:00 +0000", "<r3@example.com>",
       ("References", "<r1@example.com> <r2@example.com>")),
    _m("Re: root", "12:00:00 +0000", "<r4@example.com>", ("References", "<r3@example.com>")),
    _m("Re: root", "13:00:00 +0000", "<r5@example.com>",
       ("References", "<r1@example.com> <r3@example.com> <r4@example.com>")),
    _m("Re: root", "14:00:00 +0000", "<r6@example.com>",
       ("References", "<r1@example.com> <q@example.com> <r7@example.com>")),
    _m("Re: root", "15:00:00 +0000", "<r7@example.com>", ("References", "<r2@example.com>")),
]


@pytest.mark.requirement("IMAP-THREAD-REFERENCES")
def test_imap_thread_references_links(target: Target, evidence: Evidence) -> None:
    # RFC 5256 §3 step (1), by hand:
    # 2 -> 1; 3 -> 2 (1 -> 2 is there already); 4 -> 3 (a References cut to the parent);
    # 5 names 1, 3, 4: "If a message already has a parent, don't change the existing link", so
    #   3 stays under 2, and 5 -> 4;
    # 6 names 1, <q>, 7: 1 -> <q> -> 7 (a dummy until 7 comes) -> 6;
    # 7 names 2: "If the current message already has a parent ... break the current
    #   parent/child link before creating the new correct one": 7 moves from <q> to 2, and <q>,
    #   childless, is pruned in step (3).
    # Step (6): 2's children by sent date, 3 (11:00) then 7 (15:00).
    want = (node(1, node(2, node(3, node(4, node(5))), node(7, node(6)))),)

    _expect_references(target, evidence, LINKS, "IMAP-THREAD-REFERENCES", want)


#: Threads that step (5) merges in each of its ways, message 1 first.
MERGES: list[list[tuple[str, str]]] = [
    _m("Plan", "09:00:00 +0000", "<p1@example.com>"),
    _m("plan", "10:00:00 +0000", "<p2@example.com>"),
    _m("Re: Trip", "11:00:00 +0000", "<k3@example.com>", ("References", "<lost1@example.com>")),
    _m("Re: trip", "12:00:00 +0000", "<k4@example.com>", ("References", "<lost1@example.com>")),
    _m("Re: Trip", "13:00:00 +0000", "<k5@example.com>", ("References", "<lost2@example.com>")),
    _m("Trip", "14:00:00 +0000", "<k6@example.com>", ("References", "<lost2@example.com>")),
    _m("Re: plan", "15:00:00 +0000", "<p7@example.com>"),
]


@pytest.mark.requirement("IMAP-THREAD-REFERENCES")
def test_imap_thread_references_subject_merging(target: Target, evidence: Evidence) -> None:
    # RFC 5256 §3, by hand. After steps (1) to (4) the root holds, by sent date: 1, 2,
    # <lost1> (children 3, 4), <lost2> (children 5, 6), 7. Step (5), the subject table: "plan"
    # -> 1 (2 and 7 do not replace it: 1 is not a reply); "trip" -> <lost1> (a dummy is never
    # replaced). Merging: 2 and 1, neither a dummy nor a reply: "create a new dummy message and
    # make both ... children of the dummy", which takes 1's place in the table; <lost2> and
    # <lost1>: "If both messages are dummies, append the current message's children to the
    # children of the message in the subject table"; 7 under the new dummy: "If the message in
    # the subject table is a dummy and the current message is not, make the current message a
    # child". Step (6): each set of siblings by sent date.
    want = (node(None, node(1), node(2), node(7)),
            node(None, node(3), node(4), node(5), node(6)))
    _expect_references(target, evidence, MERGES, "IMAP-THREAD-REFERENCES", want)


#: RFC 5256 §3: "the msg-id <"01KF8JCEOCBS0045PS"@xxx.yyy.com> and the msg-id
#: <01KF8JCEOCBS0045PS@xxx.yyy.com> MUST be interpreted as being the same Message ID." Four
#: messages of four base subjects (so no subject merging joins them), quoted one way and the
#: other.
QUOTED: list[list[tuple[str, str]]] = [
    _m("alpha", "10:00:00 +0000", '<"01KF8JCEOCBS0045PS"@example.com>'),
    _m("beta", "11:00:00 +0000", "<b@example.com>",
       ("In-Reply-To", "<01KF8JCEOCBS0045PS@example.com>")),
    _m("gamma", "12:00:00 +0000", "<plain.id@example.com>"),
    _m("delta", "13:00:00 +0000", "<d@example.com>", ("References", '<"plain.id"@example.com>')),
]


@pytest.mark.requirement("IMAP-THREAD-MSGID")
def test_imap_thread_msgid_quoting(target: Target, evidence: Evidence) -> None:
    # RFC 5256 §3: "Implementations of the REFERENCES threading algorithm MUST normalize any
    # msg-id in order to avoid false non-matches due to differences in quoting": 2 is 1's
    # reply and 4 is 3's.
    want = (node(1, node(2)), node(3, node(4)))

    _expect_references(target, evidence, QUOTED, "IMAP-THREAD-MSGID", want)


def _renumbered(threads: tuple[ThreadNode, ...], uid: list[int]) -> tuple[ThreadNode, ...]:
    return tuple(ThreadNode(None if t.number is None else uid[t.number - 1],
                            _renumbered(t.children, uid)) for t in threads)


@pytest.mark.requirement("IMAP-THREAD-UID")
def test_imap_uid_thread(target: Target, evidence: Evidence) -> None:
    # RFC 5256 §4: "For THREAD, these are message sequence numbers; for UID THREAD, these are
    # unique identifiers"; §3: "the arguments to UID THREAD are interpreted the same as in
    # THREAD". The UID answer must be the sequence-number answer with each number mapped to
    # its UID (the trees themselves are judged by the other tests).
    async def probe(client: IMAPClient) -> None:
        algorithm = ("ORDEREDSUBJECT" if "THREAD=ORDEREDSUBJECT" in client.capabilities
                     else "REFERENCES")
        uid = await uids(client)
        precondition(len(uid) == len(MESSAGES), f"UID SEARCH ALL found {uid}")
        for criteria in ("ALL", "1:4"):
            arguments = f"{algorithm} UTF-8 {criteria}"
            by_seq = await thread(client, "IMAP-THREAD-UID", arguments)
            precondition(bool(by_seq), f"THREAD {arguments} answered no thread")
            by_uid = await thread(client, "IMAP-THREAD-UID", arguments, uid=True)
            want = _renumbered(by_seq, uid)
            check("IMAP-THREAD-UID", by_uid == want,
                  f"UID THREAD {arguments} answered {by_uid}, not {want}")

    _with_thread_set(target, evidence, probe, shift_uids=True,
                     capabilities=("THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES"))
