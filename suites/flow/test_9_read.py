"""Step 9 — read and manage: SELECT, FETCH, BODY.PEEK, STORE, EXPUNGE and IDLE on delivered mail."""

from __future__ import annotations

import asyncio

import pytest

from harness.clients.imap import CommandResult, IMAPClient, SelectResult
from harness.protocol.imap.responses import Exists, Expunge, Fetch
from harness.suite import (
    Evidence,
    account,
    check,
    make_message,
    need,
    open_imap,
    open_mx,
    precondition,
    run,
    token,
)
from harness.targets import Target
from suites.flow.flow_helpers import arrival, waited

pytestmark = pytest.mark.step(9)


async def _deliver(target: Target, evidence: Evidence, count: int = 1) -> list[tuple[int, bytes]]:
    """Hand *count* fresh messages to the receiver's MX and wait until each is in INBOX: the
    setup of every test here, judged by the flow's earlier steps, not by these tests."""
    rcpt = account(target.receiver)
    marks = [token() for _ in range(count)]
    client = await open_mx(target, evidence, target.receiver)
    try:
        for mark in marks:
            message = make_message(sender="someone@example.com", recipient=rcpt.address,
                                   subject="imap", body="Read, flag and delete me.\r\n", mark=mark)
            result = await client.send_message("someone@example.com", [rcpt.address], message)
            data = result.data.code if result.data is not None else None
            precondition(data == 250, f"the MX did not take a message for {rcpt.address} (DATA answered {data})")
        await client.quit()
    finally:
        await client.close()
    delivered: list[tuple[int, bytes]] = []
    for mark in marks:
        found = await arrival(target, evidence, target.receiver, mark)
        precondition(found is not None, f"the message {mark} did not reach {rcpt.address} INBOX {waited(target)}")
        assert found is not None
        delivered.append((found.uid, found.data))
    return delivered


async def _seq_of(client: IMAPClient, uid: int) -> int:
    _, found = await client.fetch(str(uid), "(UID)", uid=True)
    seqs = [s for s, items in found.items() if items.get("UID") == uid]
    precondition(len(seqs) == 1, f"UID FETCH {uid} (UID) returned {len(seqs)} matching messages, not 1")
    return seqs[0]


def _flags(found: dict[int, dict[str, object]], uid: int) -> tuple[str, ...]:
    """The FLAGS a UID FETCH of *uid* returned (a step the checks stand on)."""
    flags: list[tuple[str, ...]] = []
    for items in found.values():
        value = items.get("FLAGS")
        if items.get("UID", uid) == uid and isinstance(value, tuple | list):
            flags.append(tuple(str(f) for f in value))
    precondition(len(flags) == 1, f"UID FETCH {uid} (FLAGS) returned {len(flags)} FLAGS items, not 1")
    return flags[0]


@pytest.mark.requirement("IMAP-SELECT")
def test_select_reports_mailbox_state(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[SelectResult, list[int]]:
        await _deliver(target, evidence)
        client = await open_imap(target, evidence, target.receiver, select=None)
        try:
            selected = await client.select("INBOX")
            check("IMAP-SELECT", selected.result.ok, f"SELECT INBOX answered {selected.result.status}")
            result, uids = await client.search("ALL", uid=True)
            precondition(result.ok, f"UID SEARCH ALL answered {result.status}")
            return selected, list(uids)
        finally:
            await client.close()

    selected, uids = run(scenario())
    exists, uidnext, flags = selected.exists, selected.uidnext, selected.flags
    # RFC 9051 §6.3.2: the server "MUST send" FLAGS, EXISTS, OK [UIDVALIDITY] and OK [UIDNEXT].
    check("IMAP-SELECT", exists >= 1 and len(uids) == exists,
          f"SELECT reported {exists} EXISTS; UID SEARCH ALL found {len(uids)} messages")
    check("IMAP-SELECT", selected.uidvalidity is not None and selected.uidvalidity > 0,
          f"UIDVALIDITY is {selected.uidvalidity}")
    check("IMAP-SELECT", "\\Seen" in flags and "\\Deleted" in flags, f"FLAGS {flags}")
    # RFC 9051 §2.3.1.1: "The next unique identifier value ... MUST NOT change unless new
    # messages are added" and is greater than every UID in the mailbox.
    check("IMAP-SELECT", uidnext is not None and uidnext > max(uids),
          f"UIDNEXT {uidnext}, highest UID {max(uids)}")


@pytest.mark.requirement("IMAP-FETCH-BODY")
def test_fetch_returns_message_and_size(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[int, CommandResult, dict[int, dict[str, object]], bytes]:
        [(uid, seen_by_wait)] = await _deliver(target, evidence)
        client = await open_imap(target, evidence, target.receiver)
        try:
            result, found = await client.fetch(str(uid), "(UID RFC822.SIZE BODY.PEEK[])", uid=True)
        finally:
            await client.close()
        return uid, result, found, seen_by_wait

    uid, result, found, reference = run(scenario())
    check("IMAP-FETCH-BODY", result.ok, f"UID FETCH {uid} answered {result.status}")
    check("IMAP-FETCH-BODY", len(found) == 1, f"UID FETCH {uid} returned {len(found)} messages")
    (items,) = found.values()
    size, body = items.get("RFC822.SIZE"), items.get("BODY[]")
    # RFC 9051 §6.4.5: BODY[] is the whole message; the same message is returned each time.
    check("IMAP-FETCH-BODY", isinstance(body, bytes) and body == reference,
          f"BODY[] of two fetches of the same message: {'equal' if body == reference else 'different'}")
    assert isinstance(body, bytes)
    # RFC 9051 §7.5.2: RFC822.SIZE is "the number of octets in the message"
    check("IMAP-FETCH-BODY", size == len(body), f"RFC822.SIZE {size}, BODY[] has {len(body)} octets")


@pytest.mark.requirement("IMAP-PEEK")
def test_peek_does_not_set_seen(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[tuple[str, ...], tuple[str, ...]]:
        [(uid, _)] = await _deliver(target, evidence)
        client = await open_imap(target, evidence, target.receiver)
        try:
            await client.fetch(str(uid), "(BODY.PEEK[])", uid=True)
            _, after_peek = await client.fetch(str(uid), "(FLAGS)", uid=True)
            await client.fetch(str(uid), "(BODY[])", uid=True)
            _, after_read = await client.fetch(str(uid), "(FLAGS)", uid=True)
        finally:
            await client.close()
        return _flags(after_peek, uid), _flags(after_read, uid)

    peeked, read = run(scenario())
    # RFC 9051 §6.4.5: BODY.PEEK[] is "an alternate form of BODY[<section>] that does not
    # implicitly set the \Seen flag"; BODY[] sets it.
    check("IMAP-PEEK", "\\Seen" not in peeked, f"FLAGS after BODY.PEEK[]: {peeked}")
    check("IMAP-PEEK", "\\Seen" in read, f"FLAGS after BODY[]: {read}")


@pytest.mark.requirement("IMAP-STORE")
def test_store_adds_flag_and_reports_it(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[str, list[tuple[str, ...]], tuple[str, ...]]:
        [(uid, _)] = await _deliver(target, evidence)
        client = await open_imap(target, evidence, target.receiver)
        try:
            result = await client.store(str(uid), "+", ["\\Flagged"], uid=True)
            reported: list[tuple[str, ...]] = []
            for response in result.untagged:
                value = response.items.get("FLAGS") if isinstance(response, Fetch) else None
                if isinstance(value, tuple | list):
                    reported.append(tuple(str(f) for f in value))
            _, now = await client.fetch(str(uid), "(FLAGS)", uid=True)
        finally:
            await client.close()
        return result.status, reported, _flags(now, uid)

    status, reported, now = run(scenario())
    check("IMAP-STORE", status == "OK", f"UID STORE +FLAGS (\\Flagged) answered {status}")
    check("IMAP-STORE", "\\Flagged" in now, f"FLAGS after the STORE: {now}")
    # RFC 9051 §6.4.6: without .SILENT "the server SHOULD send an untagged FETCH response".
    check("IMAP-STORE", reported and "\\Flagged" in reported[-1],
          f"FLAGS in the untagged FETCH responses of the STORE: {reported}")


@pytest.mark.requirement("IMAP-EXPUNGE")
def test_expunge_removes_deleted_only(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[int, int, CommandResult, list[int]]:
        (gone, _), (kept, _) = await _deliver(target, evidence, 2)
        client = await open_imap(target, evidence, target.receiver)
        try:
            seq = await _seq_of(client, gone)
            stored = await client.store(str(gone), "+", ["\\Deleted"], uid=True, silent=True)
            precondition(stored.ok, f"UID STORE {gone} +FLAGS.SILENT (\\Deleted) answered {stored.status}")
            result = await client.expunge()
            found, remaining = await client.search(f"UID {gone},{kept}", uid=True)
            precondition(found.ok, f"UID SEARCH UID {gone},{kept} answered {found.status}")
        finally:
            await client.close()
        return seq, gone, result, list(remaining)

    seq, gone, result, remaining = run(scenario())
    expunged = [r.seq for r in result.untagged if isinstance(r, Expunge)]
    kept_only = [u for u in remaining if u != gone]
    # RFC 9051 §6.4.3: EXPUNGE "permanently removes all messages that have the \Deleted flag set"
    # and sends an untagged EXPUNGE response for each.
    check("IMAP-EXPUNGE", result.ok, f"EXPUNGE answered {result.status}")
    check("IMAP-EXPUNGE", seq in expunged, f"untagged EXPUNGE responses {expunged}, the deleted message was {seq}")
    check("IMAP-EXPUNGE", gone not in remaining, f"UIDs found after EXPUNGE: {remaining}, the deleted one was {gone}")
    check("IMAP-EXPUNGE", len(kept_only) == 1, f"UIDs found after EXPUNGE besides the deleted one: {kept_only}")


@pytest.mark.requirement("IMAP-IDLE")
def test_idle_reports_new_mail(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[bool, str]:
        client = await open_imap(target, evidence, target.receiver)
        try:
            # RFC 2177 is an extension, part of IMAP4rev2 (RFC 9051 §6.3.13).
            need("IDLE" in client.capabilities or "IMAP4rev2" in client.capabilities,
                 "the IMAP server advertises neither IDLE nor IMAP4rev2")
            got_exists = False
            async with client.idle() as idle:
                deliver = asyncio.ensure_future(_deliver(target, evidence))
                try:
                    deadline = asyncio.get_running_loop().time() + target.delivery_timeout
                    while not got_exists:
                        left = deadline - asyncio.get_running_loop().time()
                        if left <= 0:
                            break
                        response = await idle.wait(left)
                        got_exists = isinstance(response, Exists)
                finally:
                    await deliver
            return got_exists, idle.result.status if idle.result else "none"
        finally:
            await client.close()

    got_exists, done_status = run(scenario())
    # RFC 2177 §3: "the server is now free to send untagged EXISTS ... responses at any time"
    check("IMAP-IDLE", got_exists,
          f"untagged EXISTS during IDLE {waited(target)} while a message was delivered: {got_exists}")
    check("IMAP-IDLE", done_status == "OK", f"DONE answered {done_status}")
