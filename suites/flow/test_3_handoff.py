"""Step 3 — hand-off: 250 to DATA means the message is safely queued; Date and Message-ID added."""

from __future__ import annotations

import pytest

from harness.suite import (
    Evidence,
    account,
    header_values,
    make_message,
    run,
    submit,
    token,
    wait_delivery,
)
from harness.targets import Target

pytestmark = pytest.mark.step(3)


@pytest.mark.requirement("HANDOFF-RESPONSIBILITY")
def test_accepted_message_is_delivered(target: Target, evidence: Evidence) -> None:
    sender, rcpt = account(target.sender), account(target.receiver)
    mark = token()
    message = make_message(sender=sender.address, recipient=rcpt.address,
                           subject="hand-off", body="The MSA answered 250: it must arrive.\r\n",
                           mark=mark)

    async def scenario() -> bytes:
        reply, _ = await submit(target, evidence, message, [rcpt.address])
        assert reply.code == 250, f"DATA answered {reply.code}"
        _, delivered = await wait_delivery(target, evidence, target.receiver, mark)
        return delivered

    delivered = run(scenario())
    # RFC 5321 §6.1: "it is accepting responsibility for delivering or relaying the message".
    assert mark.encode() in delivered


def _submit_bare(target: Target, evidence: Evidence, *, date: bool, message_id: bool) -> bytes:
    sender, rcpt = account(target.sender), account(target.receiver)
    mark = token()
    message = make_message(sender=sender.address, recipient=rcpt.address, subject="bare",
                           body="No Date or Message-ID was given.\r\n", mark=mark,
                           date=date, message_id=message_id)

    async def scenario() -> bytes:
        await submit(target, evidence, message, [rcpt.address])
        return (await wait_delivery(target, evidence, target.receiver, mark))[1]

    return run(scenario())


@pytest.mark.requirement("SUBMIT-ADD-DATE")
def test_date_added_when_missing(target: Target, evidence: Evidence) -> None:
    delivered = _submit_bare(target, evidence, date=False, message_id=True)
    # RFC 6409 §8.2: "If the 'Date' field is missing ... the MSA MAY add a Date field"; a message
    # on the wire MUST have one (RFC 5322 §3.6).
    assert len(header_values(delivered, "Date")) == 1, "delivered message has no single Date field"


@pytest.mark.requirement("SUBMIT-ADD-MESSAGE-ID")
def test_message_id_added_when_missing(target: Target, evidence: Evidence) -> None:
    delivered = _submit_bare(target, evidence, date=True, message_id=False)
    ids = header_values(delivered, "Message-ID")
    # RFC 6409 §8.3: the MSA SHOULD add a Message-ID when the message lacks one.
    assert len(ids) == 1, "delivered message has no single Message-ID field"
    assert ids[0].startswith("<") and ids[0].endswith(">") and "@" in ids[0], f"bad Message-ID {ids[0]!r}"
