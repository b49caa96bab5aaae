"""One mail transaction as a plan, sans-IO: which commands to send, in what order, and what the
replies decide (RFC 5321 §3.3, RFC 2920 for PIPELINING). No sockets here: a client sends the
`Step`s the plan gives and feeds the replies back, one at a time, until `outcome` is set. The
asyncio client (harness/clients/smtp.py) and the blocking one (harness/clients/blocking.py)
drive the same plan, so a transaction means the same thing to both.

- Without PIPELINING: MAIL; if it is taken, each RCPT in turn; if no recipient is taken, RSET;
  else DATA, and after 354 the message.
- With PIPELINING (RFC 2920 §3.1): MAIL, every RCPT and DATA in one group, then the replies in
  order. After a 354 with no recipient taken the client sends a lone dot (RFC 2920 §3.1: "if
  the DATA command was accepted the client SMTP should send a single dot"), and the transaction
  fails.
- A failed transaction (DATA refused, the message refused, or the lone dot): with
  *reset_on_refusal* an RSET follows (when MAIL was taken), so the session is clean whatever
  the server kept (RFC 5321 §4.1.4: a new MAIL only after a successful DATA or an abort such as
  RSET); without it the session stays as the server left it (the suites look at what a server
  does next).
- DATA answered with anything but 354, 4yz or 5yz is a protocol error."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from harness.protocol.errors import RemoteProtocolError
from harness.protocol.smtp.commands import data_payload, format_path
from harness.protocol.smtp.replies import Reply

#: The reply to DATA that lets the message follow (RFC 5321 §4.2.2).
START_DATA = 354


@dataclass(frozen=True, slots=True)
class Step:
    """What to send next: a command line (without CRLF), or the message's data (dot-stuffed,
    ending in CRLF.CRLF) when *payload* is set."""

    line: str = ""
    payload: bytes | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """The replies of the transaction. *data* is the reply after the message, or the refusal of
    DATA itself; None when DATA was not sent, or when a pipelined DATA met no recipient."""

    mail: Reply
    rcpts: tuple[Reply, ...]
    data: Reply | None
    #: Whether the message was sent and its final reply was positive.
    accepted: bool


class TransactionPlan:
    """One transaction of *message* from *mail_from* to *recipients*: `start`, then `feed`
    each reply, sending what it returns, until `outcome` is not None."""

    def __init__(self, mail_from: str, recipients: Sequence[str], message: bytes, *,
                 pipelining: bool = False, reset_on_refusal: bool = False,
                 mail_params: Sequence[str] = (), stuff: bool = True) -> None:
        self._mail = " ".join((f"MAIL FROM:{format_path(mail_from)}", *mail_params))
        self._rcpts = [f"RCPT TO:{format_path(r)}" for r in recipients]
        self._message, self._stuff = message, stuff
        self.pipelining, self.reset_on_refusal = pipelining, reset_on_refusal
        #: What each reply still to come answers, oldest first.
        self._awaiting: deque[str] = deque()
        self._mail_reply: Reply | None = None
        self._rcpt_replies: list[Reply] = []
        self._data: Reply | None = None
        self.outcome: Outcome | None = None

    @property
    def awaiting(self) -> str | None:
        """The command the next reply answers (``MAIL``, ``RCPT``, ``DATA``, ``END``,
        ``EMPTY``, ``RSET``), or None when the plan is done."""
        return self._awaiting[0] if self._awaiting else None

    def start(self) -> list[Step]:
        if self.pipelining:
            self._awaiting.extend(["MAIL", *["RCPT"] * len(self._rcpts), "DATA"])
            return [Step(self._mail), *(Step(r) for r in self._rcpts), Step("DATA")]
        self._awaiting.append("MAIL")
        return [Step(self._mail)]

    def feed(self, reply: Reply) -> list[Step]:
        """The next reply; what to send now (often nothing, while pipelined replies come).
        Raises RemoteProtocolError when DATA is answered 2yz, not 354."""
        if not self._awaiting:
            raise ValueError("the transaction is over")
        what = self._awaiting.popleft()
        if what == "MAIL":
            self._mail_reply = reply
            if not self.pipelining:
                if not reply.is_positive:
                    return self._done(None)
                return self._next_rcpt()
            return []
        if what == "RCPT":
            self._rcpt_replies.append(reply)
            return [] if self.pipelining else self._next_rcpt()
        if what == "DATA":
            return self._after_data(reply)
        if what == "END":
            if reply.is_positive:
                return self._done(reply, accepted=True)
            self._data = reply
            return self._reset_or_done()
        if what == "EMPTY":
            return self._reset_or_done()
        return self._done(self._data)  # RSET: its reply does not change the outcome

    def abandon(self) -> Outcome:
        """The outcome as it stands, when the reply to the closing RSET cannot be read (the
        server closed): the transaction had failed already."""
        if self.awaiting != "RSET":
            raise ValueError("only the closing RSET may go unanswered")
        self._awaiting.clear()
        self._done(self._data)
        assert self.outcome is not None
        return self.outcome

    # -- steps ----------------------------------------------------------------------------------

    def _taken(self) -> bool:
        return (self._mail_reply is not None and self._mail_reply.is_positive
                and any(r.is_positive for r in self._rcpt_replies))

    def _next_rcpt(self) -> list[Step]:
        sent = len(self._rcpt_replies)
        if sent < len(self._rcpts):
            self._awaiting.append("RCPT")
            return [Step(self._rcpts[sent])]
        if not self._taken():
            self._awaiting.append("RSET")
            return [Step("RSET")]
        self._awaiting.append("DATA")
        return [Step("DATA")]

    def _after_data(self, reply: Reply) -> list[Step]:
        if reply.code == START_DATA:
            if not self._taken():
                # RFC 2920 §3.1: DATA was taken with no valid recipient; the message is empty.
                self._awaiting.append("EMPTY")
                return [Step(payload=b".\r\n")]
            self._awaiting.append("END")
            return [Step(payload=data_payload(self._message, stuff=self._stuff))]
        if reply.klass not in (4, 5):
            raise RemoteProtocolError(f"DATA answered {reply.code}, not 354")
        self._data = reply
        return self._reset_or_done()

    def _reset_or_done(self) -> list[Step]:
        """The transaction failed: RSET first (with *reset_on_refusal*, once MAIL was taken)."""
        mail_taken = self._mail_reply is not None and self._mail_reply.is_positive
        if self.reset_on_refusal and mail_taken:
            self._awaiting.append("RSET")
            return [Step("RSET")]
        return self._done(self._data)

    def _done(self, data: Reply | None, *, accepted: bool = False) -> list[Step]:
        assert self._mail_reply is not None
        self.outcome = Outcome(self._mail_reply, tuple(self._rcpt_replies), data, accepted)
        return []
