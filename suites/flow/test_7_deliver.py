"""Step 7 — filter and deliver: spam verdict and filing; the message arrives intact."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.strategies import messages
from harness.suite import (
    TRACE_FIELDS,
    Evidence,
    account,
    field_name,
    header_values,
    make_message,
    run,
    split_added_fields,
    submit,
    token,
    wait_delivery,
)
from harness.targets import Target

pytestmark = pytest.mark.step(7)

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def _deliver(target: Target, evidence: Evidence, message: bytes, mark: str, mailbox: str) -> bytes:
    rcpt = account(target.receiver)

    async def scenario() -> bytes:
        await submit(target, evidence, message, [rcpt.address])
        return (await wait_delivery(target, evidence, target.receiver, mark, mailbox=mailbox))[1]

    return run(scenario())


def _assert_intact(delivered: bytes, sent: bytes) -> None:
    added, rest = split_added_fields(delivered, sent)
    assert not rest, "the delivered message differs from the submitted one beyond prepended fields"
    names = {field_name(f) for f in added}
    assert names <= TRACE_FIELDS, f"non-trace fields were prepended: {sorted(names - TRACE_FIELDS)}"


@pytest.mark.requirement("FILTER-SPAM-VERDICT")
def test_gtube_is_filed_as_spam(target: Target, evidence: Evidence) -> None:
    sender, rcpt = account(target.sender), account(target.receiver)
    mark = token()
    message = make_message(sender=sender.address, recipient=rcpt.address, subject="spam test",
                           body=f"{GTUBE}\r\n", mark=mark)
    delivered = _deliver(target, evidence, message, mark, target.receiver.mailbox_junk)
    status = header_values(delivered, "X-Spam-Status")
    assert status and status[0].lower().startswith("yes"), f"X-Spam-Status is {status}"


@pytest.mark.requirement("FILTER-SPAM-VERDICT")
def test_clean_message_reaches_inbox(target: Target, evidence: Evidence) -> None:
    sender, rcpt = account(target.sender), account(target.receiver)
    mark = token()
    message = make_message(sender=sender.address, recipient=rcpt.address, subject="Lunch",
                           body="See you at noon.\r\n", mark=mark)
    delivered = _deliver(target, evidence, message, mark, "INBOX")
    status = header_values(delivered, "X-Spam-Status")
    assert status and status[0].lower().startswith("no"), f"X-Spam-Status is {status}"


@pytest.mark.requirement("DELIVER-INTACT")
def test_dot_lines_survive(target: Target, evidence: Evidence) -> None:
    sender, rcpt = account(target.sender), account(target.receiver)
    mark = token()
    body = ".\r\n..\r\n.leading dot\r\n. \r\nend\r\n"
    message = make_message(sender=sender.address, recipient=rcpt.address, subject="dots",
                           body=body, mark=mark)
    _assert_intact(_deliver(target, evidence, message, mark, "INBOX"), message)


@pytest.mark.requirement("DELIVER-INTACT")
@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_any_message_arrives_byte_identical(target: Target, evidence: Evidence, data: st.DataObject) -> None:
    sender, rcpt = account(target.sender), account(target.receiver)
    mark = token()
    message = data.draw(messages(sender=sender.address, recipient=rcpt.address, mark=mark))
    evidence.transcripts.clear()  # keep the evidence of the last (shrunk) example only
    delivered = _deliver(target, evidence, message, mark, "INBOX")
    _assert_intact(delivered, message)
