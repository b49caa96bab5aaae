"""The sans-IO plan of one mail transaction (harness/protocol/smtp/transaction.py) that both
SMTP clients drive: the commands it asks for after each reply, with and without PIPELINING."""

from __future__ import annotations

import pytest

from harness.protocol.errors import RemoteProtocolError
from harness.protocol.smtp.replies import Reply
from harness.protocol.smtp.transaction import Step, TransactionPlan


def r(code: int) -> Reply:
    return Reply(code, ("text",))


def lines(steps: list[Step]) -> list[str]:
    return [s.line if s.payload is None else "<payload>" for s in steps]


def test_one_command_at_a_time_until_the_message_is_taken() -> None:
    plan = TransactionPlan("a@example.org", ["b@example.net", "c@example.net"], b"Hi\r\n.x\r\n")
    assert lines(plan.start()) == ["MAIL FROM:<a@example.org>"]
    assert lines(plan.feed(r(250))) == ["RCPT TO:<b@example.net>"]
    assert lines(plan.feed(r(550))) == ["RCPT TO:<c@example.net>"]
    assert lines(plan.feed(r(250))) == ["DATA"]
    (payload,) = plan.feed(r(354))
    assert payload.payload == b"Hi\r\n..x\r\n.\r\n"  # dot-stuffed, CRLF.CRLF
    assert plan.feed(r(250)) == [] and plan.outcome is not None
    assert plan.outcome.accepted and [x.code for x in plan.outcome.rcpts] == [550, 250]


def test_a_refused_mail_ends_it_and_no_recipient_taken_resets_it() -> None:
    plan = TransactionPlan("a@example.org", ["b@example.net"], b"x\r\n")
    plan.start()
    assert plan.feed(r(550)) == [] and plan.outcome is not None and not plan.outcome.accepted
    plan = TransactionPlan("a@example.org", ["b@example.net"], b"x\r\n")
    plan.start()
    plan.feed(r(250))
    assert lines(plan.feed(r(550))) == ["RSET"] and plan.awaiting == "RSET"
    plan.feed(r(250))
    assert plan.outcome is not None and plan.outcome.data is None


@pytest.mark.parametrize("reset", [False, True])
def test_a_refused_data_is_the_outcome_reset_or_not(reset: bool) -> None:
    plan = TransactionPlan("a@example.org", ["b@example.net"], b"x\r\n", reset_on_refusal=reset)
    plan.start()
    plan.feed(r(250))
    plan.feed(r(250))
    after = plan.feed(r(554))
    if reset:
        assert lines(after) == ["RSET"] and plan.outcome is None
        plan.feed(r(250))
    assert plan.outcome is not None and plan.outcome.data is not None
    assert plan.outcome.data.code == 554 and not plan.outcome.accepted


def test_pipelined_the_group_goes_at_once_and_the_replies_come_in_order() -> None:
    plan = TransactionPlan("a@example.org", ["b@example.net", "c@example.net"], b"x\r\n",
                           pipelining=True)
    assert lines(plan.start()) == ["MAIL FROM:<a@example.org>", "RCPT TO:<b@example.net>",
                                   "RCPT TO:<c@example.net>", "DATA"]
    assert plan.feed(r(250)) == [] and plan.feed(r(250)) == [] and plan.feed(r(450)) == []
    assert lines(plan.feed(r(354))) == ["<payload>"]
    plan.feed(r(250))
    assert plan.outcome is not None and plan.outcome.accepted


def test_pipelined_data_taken_with_no_recipient_gets_an_empty_message() -> None:
    """RFC 2920 §3.1: the server took DATA although every RCPT failed; the client sends the
    lone dot and the transaction fails."""
    plan = TransactionPlan("a@example.org", ["b@example.net"], b"x\r\n", pipelining=True)
    plan.start()
    plan.feed(r(250))
    plan.feed(r(550))
    (dot,) = plan.feed(r(354))
    assert dot.payload == b".\r\n" and plan.awaiting == "EMPTY"
    plan.feed(r(554))
    assert plan.outcome is not None and plan.outcome.data is None and not plan.outcome.accepted


def test_a_refused_message_is_reset_before_the_next_transaction() -> None:
    """RFC 5321 §4.1.4: MAIL again only after a successful DATA or an abort such as RSET."""
    plan = TransactionPlan("a@example.org", ["b@example.net"], b"x\r\n", reset_on_refusal=True)
    plan.start()
    plan.feed(r(250))
    plan.feed(r(250))
    plan.feed(r(354))
    assert lines(plan.feed(r(552))) == ["RSET"]
    plan.feed(r(250))
    assert plan.outcome is not None and plan.outcome.data is not None
    assert plan.outcome.data.code == 552 and not plan.outcome.accepted


def test_data_answered_250_is_a_protocol_error_and_a_lost_rset_is_abandoned() -> None:
    plan = TransactionPlan("a@example.org", ["b@example.net"], b"x\r\n")
    plan.start()
    plan.feed(r(250))
    plan.feed(r(250))
    with pytest.raises(RemoteProtocolError, match="not 354"):
        plan.feed(r(250))
    odd = TransactionPlan("a@example.org", ["b@example.net"], b"x\r\n")
    odd.start()
    odd.feed(r(250))
    odd.feed(r(250))
    with pytest.raises(RemoteProtocolError, match="DATA answered 334"):
        odd.feed(r(334))
    plan = TransactionPlan("a@example.org", ["b@example.net"], b"x\r\n")
    plan.start()
    with pytest.raises(ValueError, match="closing RSET"):
        plan.abandon()
    plan.feed(r(250))
    plan.feed(r(550))
    assert plan.abandon().data is None
    with pytest.raises(ValueError, match="over"):
        plan.feed(r(250))
