"""Step 9 — read and manage: SELECT, FETCH, BODY.PEEK, STORE, EXPUNGE and IDLE on delivered mail."""

from __future__ import annotations

import asyncio

import pytest

from harness.clients.imap import IMAPClient
from harness.protocol.imap.responses import Exists, Expunge, Fetch
from harness.suite import (
    Evidence,
    account,
    make_message,
    open_imap,
    open_mx,
    run,
    token,
    wait_delivery,
)
from harness.targets import Target

pytestmark = pytest.mark.step(9)


async def _deliver(target: Target, evidence: Evidence, count: int = 1) -> list[tuple[int, bytes]]:
    """Hand *count* fresh messages to the receiver's MX and wait until each is in INBOX."""
    rcpt = account(target.receiver)
    marks = [token() for _ in range(count)]
    client = await open_mx(target, evidence, target.receiver)
    try:
        for mark in marks:
            message = make_message(sender="someone@example.com", recipient=rcpt.address,
                                   subject="imap", body="Read, flag and delete me.\r\n", mark=mark)
            result = await client.send_message("someone@example.com", [rcpt.address], message)
            assert result.data is not None and result.data.code == 250, "MX refused the message"
        await client.quit()
    finally:
        await client.close()
    return [await wait_delivery(target, evidence, target.receiver, mark) for mark in marks]


async def _seq_of(client: IMAPClient, uid: int) -> int:
    _, found = await client.fetch(str(uid), "(UID)", uid=True)
    (seq,) = [s for s, items in found.items() if items.get("UID") == uid]
    return seq


@pytest.mark.requirement("IMAP-SELECT")
def test_select_reports_mailbox_state(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[int, int | None, int | None, tuple[str, ...], list[int]]:
        await _deliver(target, evidence)
        client = await open_imap(target, evidence, target.receiver, select=None)
        try:
            selected = await client.select("INBOX")
            _, uids = await client.search("ALL", uid=True)
            return selected.exists, selected.uidvalidity, selected.uidnext, selected.flags, list(uids)
        finally:
            await client.close()

    exists, uidvalidity, uidnext, flags, uids = run(scenario())
    assert exists >= 1 and len(uids) == exists, f"EXISTS {exists}, but SEARCH ALL found {len(uids)}"
    assert uidvalidity is not None and uidvalidity > 0, "no UIDVALIDITY response code"
    assert "\\Seen" in flags and "\\Deleted" in flags, f"FLAGS lacks system flags: {flags}"
    # RFC 9051 §2.3.1.1: "The next unique identifier value ... MUST NOT change unless new
    # messages are added" and is greater than every UID in the mailbox.
    assert uidnext is not None and uidnext > max(uids), f"UIDNEXT {uidnext} ≤ highest UID {max(uids)}"


@pytest.mark.requirement("IMAP-FETCH-BODY")
def test_fetch_returns_message_and_size(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[object, object, bytes]:
        [(uid, seen_by_wait)] = await _deliver(target, evidence)
        client = await open_imap(target, evidence, target.receiver)
        try:
            _, found = await client.fetch(str(uid), "(UID RFC822.SIZE BODY.PEEK[])", uid=True)
        finally:
            await client.close()
        (items,) = found.values()
        return items.get("RFC822.SIZE"), items.get("BODY[]"), seen_by_wait

    size, body, reference = run(scenario())
    assert isinstance(body, bytes) and body == reference, "BODY[] differs between two fetches"
    # RFC 9051 §7.5.2: RFC822.SIZE is "the number of octets in the message"
    assert size == len(body), f"RFC822.SIZE {size} but BODY[] has {len(body)} octets"


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
        return tuple(next(iter(after_peek.values()))["FLAGS"]), tuple(next(iter(after_read.values()))["FLAGS"])  # type: ignore[arg-type]

    peeked, read = run(scenario())
    # RFC 9051 §6.4.5: BODY.PEEK[] is "an alternate form of BODY[<section>] that does not
    # implicitly set the \Seen flag"; BODY[] sets it.
    assert "\\Seen" not in peeked, f"BODY.PEEK[] set \\Seen: {peeked}"
    assert "\\Seen" in read, f"BODY[] did not set \\Seen: {read}"


@pytest.mark.requirement("IMAP-STORE")
def test_store_adds_flag_and_reports_it(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[str, list[tuple[str, ...]], tuple[str, ...]]:
        [(uid, _)] = await _deliver(target, evidence)
        client = await open_imap(target, evidence, target.receiver)
        try:
            result = await client.store(str(uid), "+", ["\\Flagged"], uid=True)
            reported = [tuple(r.items["FLAGS"]) for r in result.untagged  # type: ignore[arg-type]
                        if isinstance(r, Fetch) and "FLAGS" in r.items]
            _, now = await client.fetch(str(uid), "(FLAGS)", uid=True)
        finally:
            await client.close()
        return result.status, reported, tuple(next(iter(now.values()))["FLAGS"])  # type: ignore[arg-type]

    status, reported, now = run(scenario())
    assert status == "OK", f"STORE answered {status}"
    assert "\\Flagged" in now, f"flag not stored: {now}"
    # RFC 9051 §6.4.6: without .SILENT "the server SHOULD send an untagged FETCH response".
    assert reported and "\\Flagged" in reported[-1], "no untagged FETCH reported the new flags"


@pytest.mark.requirement("IMAP-EXPUNGE")
def test_expunge_removes_deleted_only(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[int, int, list[int], list[int]]:
        (gone, _), (kept, _) = await _deliver(target, evidence, 2)
        client = await open_imap(target, evidence, target.receiver)
        try:
            seq = await _seq_of(client, gone)
            await client.store(str(gone), "+", ["\\Deleted"], uid=True, silent=True)
            result = await client.expunge()
            expunged = [r.seq for r in result.untagged if isinstance(r, Expunge)]
            _, remaining = await client.search(f"UID {gone},{kept}", uid=True)
        finally:
            await client.close()
        return seq, gone, expunged, list(remaining)

    seq, gone, expunged, remaining = run(scenario())
    kept_only = [u for u in remaining if u != gone]
    # RFC 9051 §6.4.3: EXPUNGE "permanently removes all messages that have the \Deleted flag set"
    # and sends an untagged EXPUNGE response for each.
    assert seq in expunged, f"no untagged EXPUNGE {seq} (got {expunged})"
    assert gone not in remaining, f"UID {gone} still present after EXPUNGE"
    assert len(kept_only) == 1, "the message without \\Deleted is gone or changed UID"


@pytest.mark.requirement("IMAP-IDLE")
def test_idle_reports_new_mail(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[bool, str]:
        client = await open_imap(target, evidence, target.receiver)
        try:
            need_idle = "IDLE" in client.capabilities
            if not need_idle:
                return False, "NO-IDLE"
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
    assert done_status != "NO-IDLE", "server does not advertise IDLE"
    # RFC 2177 §3: "the server is now free to send untagged EXISTS ... responses at any time"
    assert got_exists, "no untagged EXISTS arrived during IDLE while a message was delivered"
    assert done_status == "OK", f"DONE answered {done_status}"
