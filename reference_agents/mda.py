"""The mail delivery agent: spam verdict, trace header fields, and filing into INBOX or Junk."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass

from reference_agents.accounts import Account, AccountStore
from reference_agents.mailstore import INBOX, JUNK, MailboxExists, MailStore, NoSuchMailbox
from reference_agents.serverlog import MDA_LOG
from reference_agents.spam import SpamVerdict, score_message

_log = logging.getLogger(__name__)

#: Quirks that break a delivery racing another to the same mailbox (reference_agents/quirks).
RACING_QUIRKS = frozenset({"mda_racing_delivery_lost", "mda_racing_delivery_twice",
                           "mda_racing_delivery_torn"})


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What happened to one message for one recipient. ``status`` is ``"delivered"``,
    ``"unknown_user"`` or ``"failed"`` (a storage error: the caller should answer 4xx)."""

    status: str
    mailbox: str | None
    uid: int | None
    verdict: SpamVerdict | None
    detail: str


def _line_ending(data: bytes) -> bytes:
    """The line ending the message uses (CRLF unless its first line ends in a bare LF), so the
    prepended fields match the rest of the header section."""
    first = data.find(b"\n")
    if first < 0 or (first > 0 and data[first - 1 : first] == b"\r"):
        return b"\r\n"
    return b"\n"


def _spam_fields(verdict: SpamVerdict, threshold: float, eol: bytes) -> bytes:
    tests = ",".join(verdict.rules) or "none"
    answer = "Yes" if verdict.is_spam else "No"
    return (
        f"X-Spam-Status: {answer}, score={verdict.score:.1f} required={threshold:.1f}"
        f" tests={tests}".encode("ascii")
        + eol
        + f"X-Spam-Score: {verdict.score:.1f}".encode("ascii")
        + eol
    )


class MDA:
    """Final delivery into a user's mailbox. ``deliver`` is synchronous (it fsyncs); callers
    run it in a thread."""

    def __init__(
        self,
        store: MailStore,
        accounts: AccountStore,
        *,
        threshold: float = 5.0,
        quirks: frozenset[str] = frozenset(),
    ) -> None:
        self._store = store
        self._accounts = accounts
        self._threshold = threshold
        self._quirks = quirks
        #: Quirks mda_racing_delivery_*: deliveries under way, per (user, mailbox).
        self._racing = quirks & RACING_QUIRKS
        self._under_way: Counter[tuple[str, str]] = Counter()
        self._under_way_lock = threading.Lock()

    def deliver(self, recipient: str, data: bytes, *, envelope_from: str,
                delivery: str | None = None) -> DeliveryResult:
        """Deliver *data* to *recipient*; the message is durably stored when this returns
        ``"delivered"``. Storage errors come back as ``"failed"``, never as an exception.
        *delivery* (the queue entry and recipient) makes it idempotent: delivered once, however
        often it is retried (MailStore.append)."""
        account = self._accounts.by_address(recipient)
        if account is None and "mx_catch_all" in self._quirks:
            account = self._catch_all(recipient)
        if account is None:
            MDA_LOG.info("%s <%s>: no such mailbox", self._domain(recipient), recipient)
            return DeliveryResult("unknown_user", None, None, None, f"no mailbox for {recipient}")
        reverse_path = envelope_from.strip()
        if reverse_path.startswith("<") and reverse_path.endswith(">"):
            reverse_path = reverse_path[1:-1]
        if any(c in reverse_path for c in "\r\n\x00<>"):
            return DeliveryResult(
                "failed", None, None, None, f"invalid envelope sender {envelope_from!r}"
            )

        if "mda_no_spam_filter" in self._quirks:
            # Quirk: no filter at all — every message is filed into INBOX as "No".
            verdict = SpamVerdict(0.0, (), False)
        else:
            verdict = score_message(data, self._threshold)
        mailbox = JUNK if verdict.is_spam else INBOX

        eol = _line_ending(data)
        # RFC 5321 §4.4: "When the delivery SMTP server makes the "final delivery" of a
        # message, it inserts a return-path line at the beginning of the mail data.  This use
        # of return-path is required; mail systems MUST support it."
        return_path = b"Return-Path: <" + reverse_path.encode("utf-8") + b">" + eol
        # RFC 5321 §4.4 also forbids changing the rest: everything after the prepended fields
        # is the message exactly as received.
        delivered = return_path + _spam_fields(verdict, self._threshold, eol) + bytes(data)

        try:
            if self._racing:
                uid = self._racing_append(account.username, mailbox, delivered, delivery)
            else:
                uid = self._append(account.username, mailbox, delivered, delivery)
        except Exception as exc:
            _log.exception("delivery to %s failed", recipient)
            return DeliveryResult(
                "failed", None, None, verdict, f"storage error: {type(exc).__name__}: {exc}"
            )
        MDA_LOG.info("%s <%s> -> %s/%s uid %s: spam %s, score %.1f%s", self._domain(recipient),
                 recipient, account.username, mailbox, uid if uid is not None else "?",
                 "yes" if verdict.is_spam else "no", verdict.score,
                 f" ({', '.join(verdict.rules)})" if verdict.rules else "")
        return DeliveryResult(
            "delivered", mailbox, uid, verdict, f"delivered to {account.username}/{mailbox}"
        )

    @staticmethod
    def _domain(address: str) -> str:
        return address.rpartition("@")[2].lower()

    def _catch_all(self, recipient: str) -> Account | None:
        """Allowance mx_catch_all: the first account of *recipient*'s domain, when that domain
        is local (RFC 5321 §3.3 leaves it to the server which addresses are deliverable)."""
        domain = recipient.rpartition("@")[2].lower()
        if not self._accounts.is_local_domain(domain):
            return None
        return next((a for a in self._accounts if a.domain == domain.rstrip(".")), None)

    def _racing_append(self, user: str, mailbox: str, data: bytes,
                       delivery: str | None) -> int | None:
        """The quirks that break a delivery only while another one to the same mailbox is
        under way in this process — faults a single message never meets, that load finds."""
        key = (user, mailbox)
        with self._under_way_lock:
            racing = self._under_way[key] > 0
            self._under_way[key] += 1
        try:
            if racing and "mda_racing_delivery_lost" in self._quirks:
                return None  # reported delivered, never stored (RFC 5321 §6.1)
            if racing and "mda_racing_delivery_torn" in self._quirks:
                # the last line of the body is not written (RFC 5321 §4.5.2: intact)
                data = data[: data.rstrip(b"\r\n").rfind(b"\n") + 1]
            uid = self._append(user, mailbox, data, delivery)
            if racing and "mda_racing_delivery_twice" in self._quirks:
                self._append(user, mailbox, data, None)  # a second copy, without the tag
            return uid
        finally:
            with self._under_way_lock:
                self._under_way[key] -= 1

    def _append(self, user: str, mailbox: str, data: bytes, delivery: str | None) -> int:
        try:
            return self._store.append(user, mailbox, data, delivery=delivery)
        except NoSuchMailbox:
            if mailbox == INBOX:
                raise
            # Junk is created with the user but, like any mailbox but INBOX, can be deleted.
            try:
                self._store.create_mailbox(user, mailbox)
            except MailboxExists:
                pass
            return self._store.append(user, mailbox, data, delivery=delivery)
