"""Step 3 — hand-off: 250 to DATA means the message is safely queued; Date and Message-ID added."""

from __future__ import annotations

import pytest

from harness.suite import (
    Evidence,
    account,
    check,
    header_values,
    make_message,
    precondition,
    run,
    submit,
    token,
)
from harness.targets import Target
from suites.flow.flow_helpers import arrival, waited

pytestmark = pytest.mark.step(3)


@pytest.mark.requirement("HANDOFF-RESPONSIBILITY")
def test_accepted_message_is_delivered(target: Target, evidence: Evidence) -> None:
    sender, rcpt = account(target.sender), account(target.receiver)
    mark = token()
    message = make_message(sender=sender.address, recipient=rcpt.address,
                           subject="hand-off", body="The MSA answered 250: it must arrive.\r\n",
                           mark=mark)

    async def scenario() -> bool:
        await submit(target, evidence, message, [rcpt.address])  # DATA answered 250
        return await arrival(target, evidence, target.receiver, mark) is not None

    arrived = run(scenario())
    # RFC 5321 §6.1: "it is accepting responsibility for delivering or relaying the message".
    check("HANDOFF-RESPONSIBILITY", arrived,
          f"the message {mark}, accepted with 250 to DATA, {'reached' if arrived else 'did not reach'} "
          f"{rcpt.address} INBOX {waited(target)}")


def _submit_bare(target: Target, evidence: Evidence, *, date: bool, message_id: bool) -> bytes:
    sender, rcpt = account(target.sender), account(target.receiver)
    mark = token()
    message = make_message(sender=sender.address, recipient=rcpt.address, subject="bare",
                           body="No Date or Message-ID was given.\r\n", mark=mark,
                           date=date, message_id=message_id)

    async def scenario() -> bytes:
        await submit(target, evidence, message, [rcpt.address])
        found = await arrival(target, evidence, target.receiver, mark)
        # HANDOFF-RESPONSIBILITY judges the arrival; here it is a step the check stands on.
        precondition(found is not None, f"the message {mark} did not reach {rcpt.address} INBOX {waited(target)}")
        assert found is not None
        return found.data

    return run(scenario())


@pytest.mark.requirement("SUBMIT-ADD-DATE")
def test_date_added_when_missing(target: Target, evidence: Evidence) -> None:
    delivered = _submit_bare(target, evidence, date=False, message_id=True)
    # RFC 6409 §8.2: "If the 'Date' field is missing ... the MSA MAY add a Date field"; a message
    # on the wire MUST have one (RFC 5322 §3.6).
    dates = header_values(delivered, "Date")
    check("SUBMIT-ADD-DATE", len(dates) == 1, f"the delivered message has {len(dates)} Date fields")


@pytest.mark.requirement("SUBMIT-ADD-MESSAGE-ID")
def test_message_id_added_when_missing(target: Target, evidence: Evidence) -> None:
    delivered = _submit_bare(target, evidence, date=True, message_id=False)
    ids = header_values(delivered, "Message-ID")
    # RFC 6409 §8.3: the MSA SHOULD add a Message-ID when the message lacks one.
    check("SUBMIT-ADD-MESSAGE-ID", len(ids) == 1, f"the delivered message has {len(ids)} Message-ID fields")
    # RFC 5322 §3.6.4: msg-id = "<" id-left "@" id-right ">".
    check("SUBMIT-ADD-MESSAGE-ID", ids[0].startswith("<") and ids[0].endswith(">") and "@" in ids[0],
          f"the added Message-ID is {ids[0]!r}")
