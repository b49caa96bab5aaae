"""IMAP extensions — SORT (RFC 5256 §2, §3) and ESORT (RFC 5267 §3): the sort keys, the base
subject, the sent date, the address keys, ties, UID SORT, charsets, and SORT RETURN.

Six hand-made messages are appended with chosen INTERNALDATEs; every expected order below is
worked out by hand from the RFC text, in the comments beside it. The tests are skipped where
the server does not advertise SORT (or ESORT).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from harness.clients.imap import CommandResult, IMAPClient
from harness.protocol.imap.responses import Continuation, ESearch, Fetch, Response, Sort, Tagged
from harness.suite import Evidence, check, need, precondition, run
from harness.targets import Target
from suites.imap.imap_helpers import next_raw_tag, scratch, select, session, uids, until_tagged

pytestmark = pytest.mark.step(9)

T = TypeVar("T")


def sort_message(headers: list[tuple[str, str]], pad: int) -> bytes:
    """A message of *headers* whose body is *pad* octets of filler (sizes far apart)."""
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    lines = ["x" * 70] * (pad // 72) + ["x" * max(pad % 72 - 2, 0)]
    return (head + "\r\n" + "\r\n".join(lines) + "\r\n").encode("utf-8")


#: (headers, body padding, INTERNALDATE) in mailbox order: message 1 first.
MESSAGES: list[tuple[list[tuple[str, str]], int, str]] = [
    ([("From", '"Zed" <bob@example.com>'), ("To", "zoe@example.com, aaron@example.com"),
      ("Subject", "Re: apple"), ("Date", "Mon, 02 Jan 2023 10:00:00 +0000")],
     600, "05-Jan-2023 10:00:00 +0000"),
    ([("From", "alice@example.com"), ("To", '"Zack" <mike@example.com>'),
      ("Cc", "paul@example.com"),
      ("Subject", "=?UTF-8?Q?d=C3=A9j=C3=A0_vu?="), ("Date", "Mon, 02 Jan 2023 12:00:00 +0500")],
     200, "04-Jan-2023 10:00:00 +0000"),
    ([("From", '"Aaron" <Carol@example.com>'), ("To", "nina@example.com"),
      ("Subject", "[list] Fwd: cherry (fwd)")],
     1000, "02-Jan-2023 08:00:00 +0000"),
    ([("From", '"Bob" <dave@example.org>'), ("To", "Lara@example.com"),
      ("Cc", '"A" <quinn@example.com>'),
      ("Subject", "Banana"), ("Date", "Sun, 01 Jan 2023 23:30:00 -0500")],
     0, "06-Jan-2023 10:00:00 +0000"),
    ([("From", "ALBERT@example.net"), ("To", "oscar@example.com"),
      ("Subject", "[fwd: Fig]"), ("Date", "Mon, 02 Jan 2023 03:00:00 -0800")],
     800, "03-Jan-2023 12:00:00 +0000"),
    ([("From", '"eve" <Eve@Example.com>'), ("To", "kim@example.com"),
      ("Subject", "Re:\r\n  Re: elder (fwd)"), ("Date", "Mon, 02 Jan 2023 20:00:00 +1100")],
     400, "03-Jan-2023 12:00:00 +0000"),
]


async def fill(client: IMAPClient, name: str, messages: list[tuple[bytes, str | None]], *,
               shift_uids: bool = False) -> None:
    """Append (message, INTERNALDATE) pairs to *name* and select it. With *shift_uids* one
    message is appended before them and expunged, so that UIDs differ from sequence numbers."""
    if shift_uids:
        r = await client.append(name, sort_message([("Subject", "gone")], 10), ["\\Deleted"])
        precondition(r.ok, f"setup APPEND answered {r.status}")
    for data, when in messages:
        r = await client.append(name, data, internaldate=when)
        precondition(r.ok, f"setup APPEND answered {r.status}")
    await select(client, name)
    if shift_uids:
        r = await client.expunge()
        precondition(r.ok, f"setup EXPUNGE answered {r.status}")


def _with_sort_set(target: Target, evidence: Evidence,
                   probe: Callable[[IMAPClient], Awaitable[T]], *,
                   capability: str = "SORT", shift_uids: bool = False) -> T:
    """The six messages in a scratch mailbox, selected, then *probe*."""
    async def scenario() -> T:
        async with session(target, evidence) as client:
            need(capability in client.capabilities, f"the server does not offer {capability}")
            async with scratch(client) as name:
                await fill(client, name, [(sort_message(headers, pad), when)
                                          for headers, pad, when in MESSAGES],
                           shift_uids=shift_uids)
                return await probe(client)

    return run(scenario())


def _sorted(result: CommandResult) -> tuple[int, ...]:
    numbers: list[int] = []
    for response in result.untagged:
        if isinstance(response, Sort):
            numbers.extend(response.numbers)
    return tuple(numbers)


async def sort(client: IMAPClient, requirement: str, arguments: str) -> tuple[int, ...]:
    """``SORT arguments``, judged OK under *requirement*; the numbers of its SORT responses."""
    result = await client.command(f"SORT {arguments}")
    check(requirement, result.ok, f"SORT {arguments} answered {result.status}")
    return _sorted(result)


async def expect_orders(client: IMAPClient, requirement: str,
                        expected: dict[str, tuple[int, ...]]) -> None:
    for arguments, order in expected.items():
        got = await sort(client, requirement, arguments)
        check(requirement, got == order, f"SORT {arguments} answered {got}, not {order}")


@pytest.mark.requirement("IMAP-SORT-KEYS")
def test_imap_sort_arrival_and_size(target: Target, evidence: Evidence) -> None:
    # INTERNALDATEs: 3 on 2 Jan, 5 and 6 on 3 Jan 12:00 (the same), 2 on 4 Jan, 1 on 5 Jan,
    # 4 on 6 Jan. Body padding: 4 0, 2 200, 6 400, 1 600, 5 800, 3 1000 octets (the headers
    # differ by far less than 200).
    async def probe(client: IMAPClient) -> None:
        await expect_orders(client, "IMAP-SORT-KEYS", {
            # RFC 5256 §3 ARRIVAL: "Internal date and time of the message"; "Sorting is in
            # ascending order"; 5 and 6 are equal and stay in mailbox order.
            "(ARRIVAL) US-ASCII ALL": (3, 5, 6, 2, 1, 4),
            # SIZE: "Size of the message in octets"; "smaller sizes sort before larger sizes".
            "(SIZE) US-ASCII ALL": (4, 2, 6, 1, 5, 3),
            # REVERSE: "has the effect of that criterion but in reverse (descending) order".
            "(REVERSE SIZE) US-ASCII ALL": (3, 5, 1, 6, 2, 4),
            # "When multiple sort criteria are specified, the result is sorted in the priority
            # order that the criteria appear": the tie of 5 and 6 broken by size.
            "(ARRIVAL SIZE) US-ASCII ALL": (3, 6, 5, 2, 1, 4),
            "(ARRIVAL REVERSE SIZE) US-ASCII ALL": (3, 5, 6, 2, 1, 4),
            # the search criteria select first: messages 1 to 3 only.
            "(SIZE) US-ASCII 1:3": (2, 1, 3),
        })

    _with_sort_set(target, evidence, probe)


@pytest.mark.requirement("IMAP-SORT-BASE-SUBJECT")
def test_imap_sort_base_subject(target: Target, evidence: Evidence) -> None:
    # RFC 5256 §2.1, by hand:
    #   1 "Re: apple"                      (3) subj-refwd removed              -> "apple"
    #   2 "=?UTF-8?Q?d=C3=A9j=C3=A0_vu?="  (1) the encoded word decoded        -> "déjà vu"
    #   3 "[list] Fwd: cherry (fwd)"       (2) "(fwd)" and WSP, (3) "[list] Fwd:" -> "cherry"
    #   4 "Banana"                                                           -> "Banana"
    #   5 "[fwd: Fig]"                     (6) subj-fwd-hdr and -trl removed -> "Fig"
    #   6 "Re:" CRLF "  Re: elder (fwd)"   (1) unfolded, spaces collapsed, (2), (3) twice
    #                                                                        -> "elder"
    # i;unicode-casemap (§7) compares titlecased: APPLE < BANANA < CHERRY < DÉJÀ VU < ELDER <
    # FIG.
    async def probe(client: IMAPClient) -> None:
        await expect_orders(client, "IMAP-SORT-BASE-SUBJECT", {
            "(SUBJECT) UTF-8 ALL": (1, 4, 3, 2, 6, 5),
            "(REVERSE SUBJECT) UTF-8 ALL": (5, 6, 2, 3, 4, 1),
        })

    _with_sort_set(target, evidence, probe)


#: Subjects at the edges of RFC 5256 §2.1, message 1 first, with their base subjects.
EDGE_SUBJECTS = [
    "[blob-only]",          # (4) "removing that prefix leaves a non-empty subj-base": kept
    "Re [x]: bravo",        # subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
    "[x] [y] Re: charlie",  # subj-leader = (*subj-blob subj-refwd) / WSP
    "Fw: Re: Fwd: alpha",   # (3) repeated
    "delta (fwd) (FWD)",    # (2) "repeat until no more matches are possible"
    "[fwd: [fwd: echo]]",   # (6) "... and repeat from step (2)", twice
    "Refund",               # "re" without ":" is no subj-refwd: "Refund"
]


@pytest.mark.requirement("IMAP-SORT-BASE-SUBJECT")
def test_imap_sort_base_subject_edges(target: Target, evidence: Evidence) -> None:
    # Base subjects: 1 "[blob-only]", 2 "bravo", 3 "charlie", 4 "alpha", 5 "delta", 6 "echo",
    # 7 "Refund". i;unicode-casemap titlecases: ALPHA < BRAVO < CHARLIE < DELTA < ECHO < REFUND
    # < [BLOB-ONLY] ("[" is 0x5B, after the capital letters).
    async def scenario() -> None:
        async with session(target, evidence) as client:
            need("SORT" in client.capabilities, "the server does not offer SORT")
            async with scratch(client) as name:
                await fill(client, name, [(sort_message([("Subject", subject)], 10), None)
                                          for subject in EDGE_SUBJECTS])
                await expect_orders(client, "IMAP-SORT-BASE-SUBJECT", {
                    "(SUBJECT) US-ASCII ALL": (4, 2, 3, 5, 6, 7, 1),
                })

    run(scenario())


@pytest.mark.requirement("IMAP-SORT-SENT-DATE")
def test_imap_sort_sent_date(target: Target, evidence: Evidence) -> None:
    # RFC 5256 §2.2: "the date and time from the Date: header, adjusted by time zone to
    # normalize to UTC"; "If the sent date cannot be determined (a Date: header is missing ...),
    # the INTERNALDATE for that message is used". In UTC, on 2 Jan 2023 (4's Date is 1 Jan
    # 23:30 -0500): 4 04:30, 2 07:00 (12:00 +0500), 3 08:00 (no Date: its INTERNALDATE),
    # 6 09:00 (20:00 +1100), 1 10:00, 5 11:00 (03:00 -0800).
    async def probe(client: IMAPClient) -> None:
        await expect_orders(client, "IMAP-SORT-SENT-DATE", {
            "(DATE) US-ASCII ALL": (4, 2, 3, 6, 1, 5),
            "(REVERSE DATE) US-ASCII ALL": (5, 1, 6, 3, 2, 4),
        })

    _with_sort_set(target, evidence, probe)


@pytest.mark.requirement("IMAP-SORT-ADDRESS")
def test_imap_sort_addresses(target: Target, evidence: Evidence) -> None:
    # RFC 5256 §3 FROM/TO/CC: "[IMAP] addr-mailbox of the first ... address", compared with
    # i;unicode-casemap (§7), so case does not matter and the display name is not used.
    # From: 1 bob, 2 alice, 3 Carol ("Aaron"), 4 dave ("Bob"), 5 ALBERT, 6 Eve ("eve").
    # To (the first address): 1 zoe (then aaron), 2 mike ("Zack"), 3 nina, 4 Lara, 5 oscar,
    # 6 kim. Cc only on 2 (paul) and 4 (quinn): "If the associated RFC-822 header for a
    # particular criterion is absent, it is treated as the empty string. The empty string
    # always collates before non-empty strings."
    async def probe(client: IMAPClient) -> None:
        await expect_orders(client, "IMAP-SORT-ADDRESS", {
            "(FROM) US-ASCII ALL": (5, 2, 1, 3, 4, 6),
            "(TO) US-ASCII ALL": (6, 4, 2, 3, 5, 1),
            "(CC) US-ASCII ALL": (1, 3, 5, 6, 2, 4),
        })

    _with_sort_set(target, evidence, probe)


@pytest.mark.requirement("IMAP-SORT-TIES")
def test_imap_sort_ties_in_mailbox_order(target: Target, evidence: Evidence) -> None:
    # Messages 5 and 6 have the same INTERNALDATE. RFC 5256 §3: "If two or more messages
    # exactly match according to the sorting criteria, these messages are sorted according to
    # the order in which they appear in the mailbox"; "REVERSE only reverses a single
    # criterion, and does not affect the implicit "sequence number" sort criterion".
    # Only the order of 5 and 6 is judged here (the rest is IMAP-SORT-KEYS).
    async def probe(client: IMAPClient) -> None:
        for arguments in ("(ARRIVAL) US-ASCII ALL", "(REVERSE ARRIVAL) US-ASCII ALL"):
            got = await sort(client, "IMAP-SORT-TIES", arguments)
            tied = tuple(n for n in got if n in (5, 6))
            check("IMAP-SORT-TIES", tied == (5, 6),
                  f"SORT {arguments} answered {got}: 5 and 6 as {tied}, not (5, 6)")

    _with_sort_set(target, evidence, probe)


@pytest.mark.requirement("IMAP-SORT-UID")
def test_imap_uid_sort(target: Target, evidence: Evidence) -> None:
    # A message appended before the six and expunged: UIDs and sequence numbers differ. RFC
    # 5256 §4: "For SORT, these are message sequence numbers; for UID SORT, these are unique
    # identifiers"; §3: "the arguments to UID SORT are interpreted the same as in SORT".
    async def probe(client: IMAPClient) -> None:
        uid = await uids(client)
        precondition(len(uid) == 6, f"UID SEARCH ALL found {uid}, not the six messages")
        for arguments, order in (("(SIZE) US-ASCII ALL", (4, 2, 6, 1, 5, 3)),
                                 ("(SIZE) US-ASCII 1:3", (2, 1, 3))):
            result = await client.command(f"UID SORT {arguments}")
            check("IMAP-SORT-UID", result.ok, f"UID SORT {arguments} answered {result.status}")
            got = _sorted(result)
            want = tuple(uid[n - 1] for n in order)
            check("IMAP-SORT-UID", got == want,
                  f"UID SORT {arguments} answered {got}, not the UIDs {want}")

    _with_sort_set(target, evidence, probe, shift_uids=True)


async def _sort_with_literal(client: IMAPClient, prefix: str,
                             value: bytes) -> tuple[Tagged | None, list[Response]]:
    """``SORT prefix {n}`` CRLF *value*: a search string in a synchronising literal (the way
    8-bit text travels in IMAP4rev1)."""
    tag = next_raw_tag()
    await client.send_raw(f"{tag} SORT {prefix} {{{len(value)}}}\r\n".encode("ascii"))
    while True:
        response = await client.read_response(10.0)
        if isinstance(response, Tagged) and response.tag == tag:
            return response, []
        if isinstance(response, Continuation):
            break
    await client.send_raw(value + b"\r\n")
    return await until_tagged(client, tag)


@pytest.mark.requirement("IMAP-SORT-CHARSETS")
def test_imap_sort_charsets(target: Target, evidence: Evidence) -> None:
    # RFC 5256 §3: "The US-ASCII and [UTF-8] charsets MUST be implemented." Message 2's subject
    # decodes to "déjà vu" (and 5's "Fig" is plain ASCII).
    async def probe(client: IMAPClient) -> None:
        got = await sort(client, "IMAP-SORT-CHARSETS", "(ARRIVAL) US-ASCII SUBJECT Fig")
        check("IMAP-SORT-CHARSETS", got == (5,),
              f"SORT (ARRIVAL) US-ASCII SUBJECT Fig answered {got}, not (5,)")
        tagged, responses = await _sort_with_literal(client, "(ARRIVAL) UTF-8 SUBJECT",
                                                     "déjà".encode())
        check("IMAP-SORT-CHARSETS", tagged is not None and tagged.status == "OK",
              "SORT (ARRIVAL) UTF-8 SUBJECT {5} déjà answered "
              f"{tagged.status if tagged else 'nothing (closed)'}")
        found = tuple(n for r in responses if isinstance(r, Sort) for n in r.numbers)
        check("IMAP-SORT-CHARSETS", found == (2,),
              f"SORT (ARRIVAL) UTF-8 SUBJECT déjà answered {found}, not (2,)")

    _with_sort_set(target, evidence, probe)


@pytest.mark.requirement("IMAP-SORT-BADCHARSET")
def test_imap_sort_unknown_charset(target: Target, evidence: Evidence) -> None:
    # RFC 5256 §3: "NO - sort error: can't sort that charset or criteria"; "BAD - command
    # unknown or arguments invalid". A charset the server lacks is a NO (as for SEARCH, RFC
    # 9051 §6.4.4: "a tagged NO response (not a BAD)").
    async def probe(client: IMAPClient) -> None:
        arguments = "(ARRIVAL) X-MAILHARNESS-UNKNOWN SUBJECT Fig"
        result = await client.command(f"SORT {arguments}")
        check("IMAP-SORT-BADCHARSET", result.status == "NO",
              f"SORT {arguments} answered {result.status}, not NO")
        after = await client.noop()
        check("IMAP-SORT-BADCHARSET", after.ok, f"NOOP after it answered {after.status}")

    _with_sort_set(target, evidence, probe)


def _expand(sequence_set: object) -> tuple[int, ...]:
    """An ESEARCH ALL value in its order; RFC 5267 §3.2: ranges are "ordered in increasing
    numerical order after expansion" (10:12 and 12:10 both mean 10,11,12)."""
    out: list[int] = []
    for part in str(sequence_set).split(","):
        low, _, high = part.partition(":")
        first, last = sorted((int(low), int(high or low)))
        out.extend(range(first, last + 1))
    return tuple(out)


@pytest.mark.requirement("IMAP-ESORT")
def test_imap_esort(target: Target, evidence: Evidence) -> None:
    # (SIZE) sorts 4 2 6 1 5 3 (see test_imap_sort_arrival_and_size), (REVERSE SIZE) 3 5 1 6 2
    # 4. RFC 5267 §3.1: MIN "the
    # lowest sorted message", MAX "the highest sorted message", ALL "in the requested sort
    # order", COUNT "As in [ESEARCH]"; §3: "the extended SORT command returns results in an
    # ESEARCH response"; §3.3: "If the list of return options is present but empty, then the
    # server provides the ALL return data item".
    # A message was appended and expunged first: UID SORT's answer is in UIDs, with "UID".
    async def probe(client: IMAPClient) -> None:
        uid = await uids(client)
        precondition(len(uid) == 6, f"UID SEARCH ALL found {uid}, not the six messages")
        cases = {
            "SORT RETURN (MIN MAX COUNT) (SIZE) US-ASCII ALL": {"MIN": 4, "MAX": 3, "COUNT": 6},
            "SORT RETURN (ALL) (SIZE) US-ASCII ALL": {"ALL": (4, 2, 6, 1, 5, 3)},
            "SORT RETURN () (SIZE) US-ASCII ALL": {"ALL": (4, 2, 6, 1, 5, 3)},
            "SORT RETURN (COUNT) (SIZE) US-ASCII 1:3": {"COUNT": 3},
            "UID SORT RETURN (MIN MAX ALL) (REVERSE SIZE) US-ASCII ALL": {
                "MIN": uid[3 - 1], "MAX": uid[4 - 1],
                "ALL": tuple(uid[n - 1] for n in (3, 5, 1, 6, 2, 4))},
        }
        for command, want in cases.items():
            result = await client.command(command)
            check("IMAP-ESORT", result.ok, f"{command} answered {result.status}")
            answers = [r for r in result.untagged if isinstance(r, ESearch)]
            check("IMAP-ESORT", len(answers) == 1 and answers[0].tag == result.tag,
                  f"{command}: {len(answers)} ESEARCH responses, tags "
                  f"{[a.tag for a in answers]}, wanted one with (TAG \"{result.tag}\")")
            by_uid = command.startswith("UID ")
            check("IMAP-ESORT", answers[0].uid == by_uid,
                  f"{command}: ESEARCH {'without' if by_uid else 'with'} UID")
            data = dict(answers[0].data)
            if "ALL" in data:
                data["ALL"] = _expand(data["ALL"])
            check("IMAP-ESORT", data == want, f"{command} answered {data}, not {want}")

    _with_sort_set(target, evidence, probe, capability="ESORT", shift_uids=True)


@pytest.mark.requirement("IMAP-SORT-MODSEQ")
def test_imap_sort_modseq(target: Target, evidence: Evidence) -> None:
    # RFC 7162 §3.1.9: "If a client specifies a MODSEQ criterion in a SORT (or UID SORT) command
    # and the server returns a non-empty SORT result, the server MUST also append (to the end of
    # the untagged SORT response) the highest mod-sequence for all messages being returned";
    # §3.1.10: with ESORT, "the server MUST return the ESEARCH response containing the MODSEQ
    # result option".
    async def probe(client: IMAPClient) -> None:
        need("CONDSTORE" in client.capabilities, "the server does not offer CONDSTORE")
        fetched = await client.command("FETCH 1:* (MODSEQ)")
        modseqs = [r.items.get("MODSEQ") for r in fetched.untagged if isinstance(r, Fetch)]
        precondition(fetched.ok and len(modseqs) == 6 and all(isinstance(m, int) for m in modseqs),
                     f"FETCH 1:* (MODSEQ) answered {fetched.status} with MODSEQs {modseqs}")
        highest = max(int(str(m)) for m in modseqs)
        result = await client.command("SORT (SIZE) US-ASCII MODSEQ 1")
        check("IMAP-SORT-MODSEQ", result.ok, f"SORT ... MODSEQ 1 answered {result.status}")
        answers = [r for r in result.untagged if isinstance(r, Sort)]
        got = [(a.numbers, a.modseq) for a in answers]
        check("IMAP-SORT-MODSEQ", got == [((4, 2, 6, 1, 5, 3), highest)],
              f"SORT (SIZE) US-ASCII MODSEQ 1 answered {got}, not the order 4 2 6 1 5 3 "
              f"ending with (MODSEQ {highest})")
        if "ESORT" not in client.capabilities:
            return
        result = await client.command("SORT RETURN (COUNT) (SIZE) US-ASCII MODSEQ 1")
        check("IMAP-SORT-MODSEQ", result.ok,
              f"SORT RETURN (COUNT) ... MODSEQ 1 answered {result.status}")
        data = [dict(r.data) for r in result.untagged if isinstance(r, ESearch)]
        check("IMAP-SORT-MODSEQ", data == [{"COUNT": 6, "MODSEQ": highest}],
              f"SORT RETURN (COUNT) (SIZE) US-ASCII MODSEQ 1 answered ESEARCH {data}, not "
              f"COUNT 6 MODSEQ {highest}")

    _with_sort_set(target, evidence, probe)
