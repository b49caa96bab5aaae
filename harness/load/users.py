"""The simulated users of a load run, on the blocking clients (harness/clients/blocking.py), so
the same code runs in a thread here and as a Locust user under gevent.

- `Sender`: one submission session (STARTTLS or implicit TLS, AUTH PLAIN), sending
  self-verifying messages (harness/load/messages.py), PIPELINING where offered; as an *MX
  injector* (``account`` None), the same without AUTH, from outside, to the receiver's MX.
- `Reader`: one IMAP session on a recipient's INBOX, fetching what is new by UID and telling
  the ledger what it found.

A failure is counted by kind and the user starts a new session after a back-off that doubles up
to 2 s, so a target that slows down or refuses is measured, not run into."""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import dataclass

from harness.clients.blocking import BlockingClientError, BlockingIMAP, BlockingSMTP
from harness.load.ledger import Ledger
from harness.load.messages import inspect, make_message
from harness.protocol.imap.response_values import Fetch
from harness.targets import Account as TargetAccount
from harness.targets import Endpoint, Target

MAX_BACKOFF = 2.0


@dataclass(frozen=True)
class Budget:
    """Messages the senders may still send, shared by all of them (``--max-messages``)."""

    lock: threading.Lock
    left: list[int]

    @classmethod
    def of(cls, count: int) -> Budget:
        return cls(threading.Lock(), [count])

    def take(self) -> bool:
        with self.lock:
            if self.left[0] <= 0:
                return False
            self.left[0] -= 1
            return True


class _User:
    def __init__(self, target: Target, ledger: Ledger, stop: threading.Event, name: str) -> None:
        self.target, self.ledger, self.stop, self.name = target, ledger, stop, name
        self._backoff = 0.1
        #: Set by a user whose work is over (a sender whose budget is spent).
        self.done = False

    def run(self) -> None:
        while not self.stop.is_set() and not self.done:
            try:
                self.session()
                self._backoff = 0.1
            except (BlockingClientError, OSError) as exc:
                self.ledger.error(f"{self.name}: {type(exc).__name__}")
                self.stop.wait(self._backoff)
                self._backoff = min(self._backoff * 2, MAX_BACKOFF)

    def session(self) -> None:
        raise NotImplementedError


#: The envelope sender of an MX injector's mail: a domain of the topology's outside world.
INJECTOR_SENDER = "load@example.com"


class Sender(_User):
    """Submits as *account* to the sender's submission endpoint; with *account* None, injects
    without AUTH into *endpoint* (an MX) as INJECTOR_SENDER."""

    def __init__(self, target: Target, ledger: Ledger, stop: threading.Event, *,
                 account: TargetAccount | None, recipients: list[str], size: int, budget: Budget,
                 rng: random.Random, per_session: int = 100,
                 endpoint: Endpoint | None = None) -> None:
        super().__init__(target, ledger, stop, "sender" if account is not None else "injector")
        self.account, self.recipients, self.size = account, recipients, size
        self.budget, self.rng, self.per_session = budget, rng, per_session
        provider = target.sender
        self.endpoint = endpoint or provider.submission or provider.submissions
        self.address = account.address if account is not None else INJECTOR_SENDER

    def _connect(self) -> BlockingSMTP:
        context = self.target.client_ssl_context()
        endpoint = self.endpoint
        if endpoint is None:
            raise BlockingClientError("the target has no endpoint to send to")
        smtp = BlockingSMTP.connect(endpoint.host, endpoint.port, implicit_tls=endpoint.implicit_tls,
                                    ssl_context=context, server_hostname=endpoint.host,
                                    local_hostname="load.mailharness.invalid")
        smtp.ehlo()
        if not smtp.is_tls and smtp.supports("STARTTLS") and not self.target.allow_plaintext:
            smtp.starttls(context, endpoint.host)
        if self.account is not None:
            reply = smtp.auth_plain(self.account.user, self.account.password)
            if reply.code != 235:
                smtp.close()
                raise BlockingClientError(f"AUTH answered {reply.code}")
        return smtp

    def session(self) -> None:
        smtp = self._connect()
        try:
            for _ in range(self.per_session):
                if self.stop.is_set():
                    return
                if not self.budget.take():
                    self.done = True
                    return
                token = uuid.uuid4().hex[:24]
                recipient = self.rng.choice(self.recipients)
                message = make_message(token, self.address, recipient, self.size, self.rng)
                started = time.monotonic()
                sent = smtp.send(self.address, [recipient], message)
                if sent.accepted:
                    self.ledger.accepted(token, recipient, time.monotonic() - started)
                else:
                    self.ledger.refused(token)
                    self.ledger.error("sender: refused")
        finally:
            smtp.quit()


class Reader(_User):
    """Polls *account*'s INBOX every *poll* seconds for messages above the highest UID seen."""

    def __init__(self, target: Target, ledger: Ledger, stop: threading.Event, *,
                 account: TargetAccount, imaps: Endpoint, poll: float = 0.2) -> None:
        super().__init__(target, ledger, stop, "reader")
        self.account, self.endpoint, self.poll = account, imaps, poll
        self.next_uid = 1

    def _timed(self, imap: BlockingIMAP, command: str) -> list[Fetch]:
        started = time.monotonic()
        result = imap.command(command)
        self.ledger.imap_command(time.monotonic() - started)
        if not result.ok:
            raise BlockingClientError(f"{command.split()[0]} answered {result.tagged.status}")
        return [r for r in result.untagged if isinstance(r, Fetch)]

    def session(self) -> None:
        context = self.target.client_ssl_context() if self.endpoint.implicit_tls else None
        imap = BlockingIMAP.connect(self.endpoint.host, self.endpoint.port, ssl_context=context,
                                    server_hostname=self.endpoint.host)
        try:
            if not imap.login(self.account.user, self.account.password).ok:
                raise BlockingClientError("LOGIN refused")
            self._timed(imap, "SELECT INBOX")
            while not self.stop.is_set():
                for fetch in self._timed(imap, f"UID FETCH {self.next_uid}:* (UID BODY.PEEK[])"):
                    uid = fetch.items.get("UID")
                    body = fetch.items.get("BODY[]")
                    if not isinstance(uid, int) or uid < self.next_uid:
                        continue  # n:* also names the last message when n is past it
                    self.next_uid = uid + 1
                    found = inspect(body) if isinstance(body, bytes) else None
                    if found is not None:
                        self.ledger.found(found.token, self.account.address, uid, found.intact)
                self.stop.wait(self.poll)
        finally:
            imap.logout()
