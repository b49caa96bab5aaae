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
    check,
    field_name,
    header_values,
    make_message,
    precondition,
    run,
    split_added_fields,
    submit,
    token,
)
from harness.targets import Target
from suites.flow.flow_helpers import Arrival, Place, arrival, first_arrival, waited

pytestmark = pytest.mark.step(7)

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def _deliver(target: Target, evidence: Evidence, message: bytes, mark: str) -> bytes:
    """Submit *message* to the receiver's first account and return it as it arrives in INBOX;
    DELIVER-INTACT judges the arrival ("the message arrives byte-identical")."""
    rcpt = account(target.receiver)

    async def scenario() -> Arrival | None:
        await submit(target, evidence, message, [rcpt.address])
        return await arrival(target, evidence, target.receiver, mark)

    found = run(scenario())
    check("DELIVER-INTACT", found is not None,
          f"the message {mark} {'reached' if found else 'did not reach'} {rcpt.address} INBOX {waited(target)}")
    assert found is not None
    return found.data


def _filed(target: Target, evidence: Evidence, message: bytes, mark: str) -> Arrival:
    """Submit *message* to the receiver's first account and return where it was filed, INBOX
    or Junk (a step FILTER-SPAM-VERDICT stands on: not delivered at all is not its claim)."""
    rcpt = account(target.receiver)
    places = [Place(target.receiver), Place(target.receiver, mailbox=target.receiver.mailbox_junk)]

    async def scenario() -> Arrival | None:
        await submit(target, evidence, message, [rcpt.address])
        return await first_arrival(target, evidence, places, mark)

    found = run(scenario())
    precondition(found is not None, f"the message {mark} reached neither INBOX nor "
                                    f"{target.receiver.mailbox_junk} of {rcpt.address} {waited(target)}")
    assert found is not None
    return found


def _check_intact(delivered: bytes, sent: bytes) -> None:
    added, rest = split_added_fields(delivered, sent)
    # RFC 5321 §4.5.2 (transparency) and §4.4: the receiver removes the dots it added, and
    # trace fields are prepended to the content, which is otherwise unchanged.
    check("DELIVER-INTACT", not rest,
          f"the delivered message differs from the submitted one beyond prepended fields, from {rest[:80]!r}"
          if rest else "the delivered message is the submitted one with fields prepended")
    names = {field_name(f) for f in added}
    check("DELIVER-INTACT", names <= TRACE_FIELDS,
          f"prepended non-trace fields: {sorted(names - TRACE_FIELDS)}")


@pytest.mark.requirement("FILTER-SPAM-VERDICT")
def test_gtube_is_filed_as_spam(target: Target, evidence: Evidence) -> None:
    sender, rcpt = account(target.sender), account(target.receiver)
    mark = token()
    message = make_message(sender=sender.address, recipient=rcpt.address, subject="spam test",
                           body=f"{GTUBE}\r\n", mark=mark)
    found = _filed(target, evidence, message, mark)
    junk = target.receiver.mailbox_junk
    # RFC 5598 §4.3.2: the MDA may filter; a filter files GTUBE (the standard test of a spam
    # filter) as spam and says so.
    check("FILTER-SPAM-VERDICT", found.place.mailbox == junk, f"the GTUBE message was filed into {found.place.mailbox}")
    status = header_values(found.data, "X-Spam-Status")
    check("FILTER-SPAM-VERDICT", status and status[0].lower().startswith("yes"),
          f"the GTUBE message in {junk} has X-Spam-Status {status}")


@pytest.mark.requirement("FILTER-SPAM-VERDICT")
def test_clean_message_reaches_inbox(target: Target, evidence: Evidence) -> None:
    sender, rcpt = account(target.sender), account(target.receiver)
    mark = token()
    message = make_message(sender=sender.address, recipient=rcpt.address, subject="Lunch",
                           body="See you at noon.\r\n", mark=mark)
    found = _filed(target, evidence, message, mark)
    check("FILTER-SPAM-VERDICT", found.place.mailbox == "INBOX", f"a clean message was filed into {found.place.mailbox}")
    status = header_values(found.data, "X-Spam-Status")
    check("FILTER-SPAM-VERDICT", status and status[0].lower().startswith("no"),
          f"the clean message in INBOX has X-Spam-Status {status}")


@pytest.mark.requirement("DELIVER-INTACT")
def test_dot_lines_survive(target: Target, evidence: Evidence) -> None:
    sender, rcpt = account(target.sender), account(target.receiver)
    mark = token()
    body = ".\r\n..\r\n.leading dot\r\n. \r\nend\r\n"
    message = make_message(sender=sender.address, recipient=rcpt.address, subject="dots",
                           body=body, mark=mark)
    _check_intact(_deliver(target, evidence, message, mark), message)


@pytest.mark.requirement("DELIVER-INTACT")
@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_any_message_arrives_byte_identical(target: Target, evidence: Evidence, data: st.DataObject) -> None:
    sender, rcpt = account(target.sender), account(target.receiver)
    mark = token()
    message = data.draw(messages(sender=sender.address, recipient=rcpt.address, mark=mark))
    evidence.transcripts.clear()  # keep the evidence of the last (shrunk) example only
    delivered = _deliver(target, evidence, message, mark)
    _check_intact(delivered, message)
