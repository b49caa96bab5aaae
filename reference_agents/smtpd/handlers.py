"""MSA and MTA policy behind the SMTP sessions: EHLO keywords, who may send from where to whom,
AUTH credentials, and the hand-off of accepted mail to the queue."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING

from harness.protocol import sasl
from harness.protocol.smtp import is_address_literal, is_domain
from harness.protocol.smtp.codes import (
    R235_AUTH_OK,
    R250_QUEUED,
    R250_RECIPIENT_OK,
    R250_SENDER_OK,
    R421_AUTH_FAILURES,
    R451_LOCAL_ERROR,
    R451_TEMPORARY_LOCAL_PROBLEM,
    R452_TOO_MANY_RECIPIENTS,
    R454_TEMP_AUTH_FAILURE,
    R500_AUTH_LINE_TOO_LONG,
    R501_BAD_AUTH_RESPONSE,
    R501_BAD_RECIPIENT,
    R503_AUTH_IN_TRANSACTION,
    R530_AUTH_REQUIRED,
    R530_STARTTLS_FIRST,
    R535_AUTH_INVALID,
    R550_NO_SUCH_USER,
    R550_NULL_SENDER,
    R550_RELAY_DENIED,
    R550_SENDER_NOT_OWNED,
    R550_TOO_MANY_RECIPIENTS,
    R555_BODY,
    with_text,
)
from harness.protocol.smtp.replies import Reply
from harness.protocol.smtp.server import MAX_TEXT_LINE
from reference_agents.accounts import Account
from reference_agents.config import ProviderConfig
from reference_agents.serverlog import QUEUE_LOG

if TYPE_CHECKING:
    from reference_agents.smtpd.session import Session

log = logging.getLogger("reference_agents.smtpd")

#: ``enqueue(mail_from, recipients, data) -> queue id``: stores the message durably (fsync)
#: before it returns. ``mail_from`` is "" for the null reverse-path.
Enqueue = Callable[[str, Sequence[str], bytes], Awaitable[str]]

#: RFC 5321 §4.5.3.1.8: "The minimum total number of recipients that MUST be buffered is 100
#: recipients."
MAX_RECIPIENTS = 100

#: Failed AUTH attempts after which the session is cut off with 421 (RFC 4954 §14: "they SHOULD
#: NOT drop the connection until at least 3 attempts to authenticate have failed").
AUTH_FAILURE_LIMIT = 5
#: From the third failure on, each failed AUTH is answered this much later per failure past two.
AUTH_FAILURE_DELAY = 0.2

#: The SASL mechanisms offered (RFC 4954 §3, RFC 4616); matched without regard to case.
AUTH_MECHANISMS = ("LOGIN", "PLAIN")

# RFC 5322 §2.2 / §3.6.8: field-name = 1*ftext, ftext = %d33-57 / %d59-126 (obs: WSP before ":").
_FIELD_LINE_RE = re.compile(rb"[\x21-\x39\x3b-\x7e]+[ \t]*:")


def rfc5322_now() -> str:
    # RFC 5321 §4.4: "Local time (with an offset) SHOULD be used rather than UT when feasible."
    return format_datetime(datetime.now().astimezone())


def _header_end(message: bytes) -> int:
    """Offset just after the last header field line (RFC 5322 §2.2): the start of the blank
    line, of the first line that is not a header field, or the end of the message."""
    pos = 0
    while pos < len(message):
        eol = message.find(b"\r\n", pos)
        if eol < 0:
            break
        line = message[pos:eol]
        continuation = pos > 0 and line[:1] in (b" ", b"\t")
        if not (continuation or _FIELD_LINE_RE.match(line)):
            break
        pos = eol + 2
    return pos


def _has_field(header: bytes, name: bytes) -> bool:
    for line in header.split(b"\r\n"):
        field, colon, _ = line.partition(b":")
        if colon and line[:1] not in (b" ", b"\t") and field.rstrip(b" \t").lower() == name:
            return True
    return False


def add_missing_fields(message: bytes, fields: Sequence[tuple[bytes, bytes]]) -> bytes:
    """*message* with each (name, value) field appended to the header section unless a field of
    that name is already there. The body is never touched; when the message has no blank line
    between header and body, one is added so the body stays the body."""
    end = _header_end(message)
    header = message[:end]
    added = b"".join(
        name + b": " + value + b"\r\n" for name, value in fields if not _has_field(header, name.lower())
    )
    if not added:
        return message
    rest = message[end:]
    separator = b"\r\n" if rest and not rest.startswith(b"\r\n") else b""
    return header + added + separator + rest


def fold_long_lines(message: bytes) -> bytes:
    """Break every line longer than 998 octets into pieces of 998 (what quirky relays do)."""
    out: list[bytes] = []
    for line in message.split(b"\r\n"):
        while len(line) > MAX_TEXT_LINE - 2:
            out.append(line[: MAX_TEXT_LINE - 2])
            line = line[MAX_TEXT_LINE - 2:]
        out.append(line)
    return b"\r\n".join(out)


class AuthLineTooLong(Exception):
    """An AUTH response line longer than the session takes (RFC 4954 §4: 500 5.5.6)."""


class Handler:
    """Policy shared by the MSA and the inbound MTA."""

    #: RFC 3848 transmission type prefix when the client used EHLO.
    submission = False

    def __init__(self, config: ProviderConfig, enqueue: Enqueue) -> None:
        self.config = config
        self._enqueue = enqueue

    def quirk(self, name: str) -> bool:
        return self.config.has_quirk(name)

    def handle_EHLO(self, server: Session, keywords: list[str]) -> list[str]:
        """The EHLO reply's lines (the first is the host name) from the session's *keywords*."""
        lines = [k for k in keywords if server.listener.offer_auth or not k.startswith("AUTH")]
        lines.insert(len(lines) - 1, "ENHANCEDSTATUSCODES")
        # RFC 2920: commands are read one by one from the stream and answered in order, so
        # pipelined groups are served as they arrive.
        lines.insert(len(lines) - 1, "PIPELINING")
        if server.tls_active and server.quirk("msa_starttls_reoffered"):
            # Breaks RFC 3207 §4.2: "A server MUST NOT return the STARTTLS extension in response
            # to an EHLO command received after a TLS handshake has completed."
            lines.insert(len(lines) - 1, "STARTTLS")
        if server.quirk("mta_smtputf8_advertised_unsupported"):
            # Breaks RFC 6531 §3.2: a server announcing SMTPUTF8 must take UTF-8 addresses.
            lines.insert(len(lines) - 1, "SMTPUTF8")
        return lines

    async def handle_MAIL(self, server: Session, address: str, options: Sequence[str]) -> Reply:
        if server.quirk("mta_require_starttls") and not server.tls_active:
            # Breaks RFC 3207 §4: "A publicly-referenced SMTP server MUST NOT require use of the
            # STARTTLS extension in order to deliver mail locally."
            return R530_STARTTLS_FIRST
        if address == "<>" and server.quirk("mta_refuse_null_sender"):
            return R550_NULL_SENDER  # breaks RFC 1123 §5.2.9: the empty reverse-path is a MUST
        if "BODY=8BITMIME" in options and server.quirk("msa_reject_body_8bitmime"):
            return R555_BODY  # breaks RFC 6152 §3: BODY=8BITMIME is the advertised parameter
        server.mail_from = address
        server.mail_options.extend(options)
        return R250_SENDER_OK

    async def handle_RCPT(self, server: Session, address: str, options: Sequence[str]) -> Reply:
        raise NotImplementedError

    async def handle_AUTH(self, server: Session, mechanism: str, initial: str | None) -> Reply | None:
        raise NotImplementedError

    def _recipient_domain(self, address: str) -> tuple[str, str] | None:
        """(address, domain) with the domain-less ``Postmaster`` qualified with our domain, or
        None when *address* has no domain."""
        if address.lower() == "postmaster" and not (self.quirk("mta_no_bare_postmaster") and not self.submission):
            # RFC 5321 §4.5.1: "Any system that includes an SMTP server supporting mail relaying
            # or delivery MUST support the reserved mailbox "postmaster" as a case-insensitive
            # local name."
            address = f"postmaster@{self.config.domain}"
        local, at, domain = address.rpartition("@")
        if not at or not local or not domain:
            return None
        return address, domain

    def _postmaster_alias(self, address: str, domain: str) -> str:
        """*address*, or, for postmaster@<local domain> without a mailbox of its own, the first
        account of that domain. RFC 5321 §4.5.1: "RCPT commands that specify a mailbox for
        postmaster at any of the domains for which the SMTP server provides mail service, as
        well as the special case of "RCPT TO:<Postmaster>" (with no domain specification), MUST
        be supported."""
        accounts = self.config.accounts
        if address.rpartition("@")[0].lower() != "postmaster" or accounts.by_address(address):
            return address
        for account in accounts:
            if account.domain.lower() == domain.lower():
                return str(account.address)
        return address

    def _accept_recipient(self, server: Session, address: str, options: Sequence[str]) -> Reply:
        server.rcpt_tos.append(address)
        server.rcpt_options.extend(options)
        return R250_RECIPIENT_OK

    def _distinct_recipients(self, server: Session) -> tuple[str, ...]:
        """The transaction's recipients, each mailbox once. RFC 5321 leaves a repeated RCPT
        legal (and counts it against the limit on RCPT commands, §4.5.3.1.10); a mailbox given
        a hundred times in one transaction still gets one copy of the message, not a hundred."""
        seen: set[str] = set()
        distinct: list[str] = []
        for address in server.rcpt_tos:
            key = self._mailbox_key(address)
            if key not in seen:
                seen.add(key)
                distinct.append(address)
        return tuple(distinct)

    def _mailbox_key(self, address: str) -> str:
        """Which mailbox *address* names: a local account's own address (accounts compare
        without case), else the address with its domain in lower case (RFC 5321 §2.4: the
        local part of a foreign address may be case-sensitive; domains never are)."""
        account = self.config.accounts.by_address(address)
        if account is not None:
            return str(account.address).lower()
        local, _, domain = address.rpartition("@")
        return f"{local}@{domain.lower()}"

    async def handle_DATA(self, server: Session, content: bytes) -> Reply:
        message = self._with_trace(server, self._prepare(content))
        if self.quirk("mta_lose_after_accept"):
            # Breaks RFC 5321 §6.1: "It MUST NOT lose the message for frivolous reasons".
            return with_text(R250_QUEUED, f"Ok: queued as {uuid.uuid4().hex[:16].upper()}")
        sender = "" if server.mail_from in (None, "<>") else str(server.mail_from)
        try:
            recipients = self._distinct_recipients(server)
            queue_id = await self._enqueue(sender, recipients, message)
        except Exception:
            log.exception("%s: could not queue a message from %r", self.config.domain, sender)
            return R451_LOCAL_ERROR
        QUEUE_LOG.info("%s %s queued <%s> -> %s, %d octets", self.config.domain, queue_id, sender,
                   ", ".join(f"<{r}>" for r in recipients), len(message))
        # RFC 5321 §6.1: "When the receiver-SMTP accepts a piece of mail (by sending a "250 OK"
        # message in response to DATA), it is accepting responsibility for delivering or
        # relaying the message."  enqueue() has fsynced it by now.
        return with_text(R250_QUEUED, f"Ok: queued as {queue_id}")

    def _prepare(self, message: bytes) -> bytes:
        return message

    def _with_trace(self, server: Session, message: bytes) -> bytes:
        if self.quirk("mta_no_received"):
            return message
        # RFC 5321 §4.4: "When an SMTP server receives a message for delivery or further
        # processing, it MUST insert trace ("time stamp" or "Received") information at the
        # beginning of the message content".
        # With SMTPUTF8 the FOR clause may hold a UTF-8 address (RFC 6531 §3.7.3, RFC 6532).
        return self._received(server).encode("utf-8") + message

    def _received(self, server: Session) -> str:
        ip = server.peer_ip or "unknown"
        literal = f"[IPv6:{ip}]" if ":" in ip else f"[{ip}]"
        helo = server.host_name or ""
        # RFC 5321 §4.4: the FROM clause "SHOULD contain both (1) the name of the source host as
        # presented in the EHLO command and (2) an address literal containing the IP address of
        # the source, determined from the TCP connection."
        if not (is_domain(helo) or is_address_literal(helo)):
            helo = literal
        # RFC 4954 §7: "Upon successful authentication, a server SHOULD use the "ESMTPA" or the
        # "ESMTPSA" [SMTP-TT] (when appropriate) keyword in the "with" clause"; ESMTPS with TLS.
        protocol = "ESMTP" if server.extended else "SMTP"
        if server.smtp_utf8:
            protocol = "UTF8SMTP"  # RFC 6531 §4.3: the WITH types of a session with SMTPUTF8
        if server.extended:
            protocol += ("S" if server.tls_active else "") + ("A" if server.account else "")
        message_id = uuid.uuid4().hex[:16].upper()
        lines = [
            f"Received: from {helo} ({literal})",
            f"\tby {self.config.hostname} (mailharness) with {protocol} id {message_id}",
        ]
        # RFC 5321 §4.4: "If the FOR clause appears, it MUST contain exactly one <path> entry,
        # even when multiple RCPT commands have been given."  Only given for one recipient, so
        # Bcc recipients are not disclosed to each other.
        recipients = self._distinct_recipients(server)
        if len(recipients) == 1:
            lines.append(f"\tfor <{recipients[0]}>; {rfc5322_now()}")
        else:
            lines[-1] += f"; {rfc5322_now()}"
        return "\r\n".join(lines) + "\r\n"

    def handle_exception(self, error: Exception) -> Reply:
        log.error("%s: SMTP session error", self.config.domain, exc_info=error)
        return R451_LOCAL_ERROR


class SubmissionHandler(Handler):
    """The MSA (RFC 6409): authenticated submission on 587 and 465."""

    submission = True

    async def handle_AUTH(self, server: Session, mechanism: str, initial: str | None) -> Reply | None:
        """The reply to AUTH *mechanism* (one of AUTH_MECHANISMS), or None when the exchange was
        already answered (cancelled, or a challenge response that is no base64)."""
        if not server.in_sequence("AUTH") and not self.quirk("msa_auth_in_transaction"):
            # RFC 4954 §4: "An AUTH command issued during a mail transaction MUST be rejected
            # with a 503 reply."  The quirk breaks it.
            return R503_AUTH_IN_TRANSACTION
        try:
            if mechanism == "PLAIN":
                if initial is None and self.quirk("msa_auth_plain_no_continuation"):
                    # Breaks RFC 4954 §4: without an initial response the server sends an empty
                    # challenge ("334 ") and reads the response.
                    return R501_BAD_AUTH_RESPONSE
                if initial is None:
                    response = await server.challenge("")
                    if response is None:
                        return None
                else:
                    response = sasl.decode_initial_response(initial)
                authzid, user, password = sasl.parse_plain_message(response)
            else:
                if initial is None:
                    raw_user = await server.challenge("Username:")
                    if raw_user is None:
                        return None
                else:
                    raw_user = sasl.decode_initial_response(initial)
                raw_password = await server.challenge("Password:")
                if raw_password is None:
                    return None
                authzid, user, password = "", raw_user.decode("utf-8"), raw_password.decode("utf-8")
        except AuthLineTooLong:
            return R500_AUTH_LINE_TOO_LONG
        except ValueError:
            if self.quirk("msa_auth_bad_base64_535"):
                # Breaks RFC 4954 §4: "If the server cannot [BASE64] decode any client response,
                # it MUST reject the AUTH command with a 501 reply."
                return R535_AUTH_INVALID
            return R501_BAD_AUTH_RESPONSE
        if mechanism == "LOGIN" and self.quirk("msa_auth_login_broken"):
            return await self._auth_failed(server, user)  # breaks AUTH-LOGIN: never works
        # The provider-wide throttle (reference_agents/limits.py): wait as long as this
        # address's recent failures ask, or refuse for now with RFC 4954 §6's temporary 454.
        # The quirk msa_no_auth_throttle turns it off with the per-connection tarpit.
        if not self.quirk("msa_no_auth_throttle"):
            verdict = self.config.auth_throttle.before(server.peer_ip or "unknown", user)
            if verdict.refuse:
                return R454_TEMP_AUTH_FAILURE
            if verdict.wait:
                await asyncio.sleep(verdict.wait)
        account = await asyncio.to_thread(self._verify, user, password)
        # RFC 4616 §2: the server "will verify that the authentication credentials permit the
        # client to act as the (presented or derived) authorization identity (authzid)".
        if account is not None and authzid and authzid.lower() not in (
            account.username.lower(), account.address.lower()
        ):
            account = None
        if account is None:
            return await self._auth_failed(server, user)
        self.config.auth_throttle.succeeded(server.peer_ip or "unknown")
        server.account = account
        return R235_AUTH_OK

    async def _auth_failed(self, server: Session, user: str) -> Reply:
        """535, later and later from the third failure on, and 421 with a close at the limit.

        RFC 4954 §14: "Servers MAY implement a policy whereby the connection is dropped after a
        number of failed authentication attempts.  If they do so, they SHOULD NOT drop the
        connection until at least 3 attempts to authenticate have failed."
        """
        server.auth_failures += 1
        failures = server.auth_failures
        self.config.auth_throttle.failed(server.peer_ip or "unknown", user)
        if self.quirk("msa_auth_drop_after_first_failure"):
            server.close_after_reply()  # breaks AUTH-NO-EARLY-DROP
            return R421_AUTH_FAILURES
        if self.quirk("msa_no_auth_throttle"):
            return R535_AUTH_INVALID  # breaks AUTH-FAILURE-THROTTLE: guessing at full speed
        if failures >= AUTH_FAILURE_LIMIT:
            server.close_after_reply()
            return R421_AUTH_FAILURES
        if failures >= 3:
            # A tarpit, not a wait for a condition: each further guess costs more time.
            await asyncio.sleep(AUTH_FAILURE_DELAY * (failures - 2))
        return R535_AUTH_INVALID

    def _verify(self, user: str, password: str) -> Account | None:
        if self.quirk("msa_accept_any_password"):
            # Breaks RFC 4954 §6: 535 5.7.8 "This response to the AUTH command indicates that
            # the authentication failed due to invalid or insufficient authentication
            # credentials."
            return self.config.accounts.by_username(user)
        return self.config.accounts.verify(user, password)

    async def handle_MAIL(self, server: Session, address: str, options: Sequence[str]) -> Reply:
        account = server.account
        if account is None and not self.quirk("msa_no_auth_required"):
            # RFC 6409 §4.3: "The MSA MUST, by default, issue an error response to the MAIL
            # command if the session has not been authenticated using [SMTP-AUTH]".
            return R530_AUTH_REQUIRED
        if account is not None and not self.quirk("msa_any_sender"):
            owner = self.config.accounts.by_address(address) if address != "<>" else None
            if owner != account:
                # RFC 6409 §6.1: "The MSA MAY issue an error response to a MAIL command if the
                # address in MAIL FROM ... is not authorized with the authentication used";
                # "Reply code 550 with an appropriate enhanced status code ... such as 5.7.1".
                return R550_SENDER_NOT_OWNED
        return await super().handle_MAIL(server, address, options)

    async def handle_RCPT(self, server: Session, address: str, options: Sequence[str]) -> Reply:
        if len(server.rcpt_tos) >= MAX_RECIPIENTS:
            return R452_TOO_MANY_RECIPIENTS
        parsed = self._recipient_domain(address)
        if parsed is None:
            return R501_BAD_RECIPIENT
        address, domain = parsed
        accounts = self.config.accounts
        if accounts.is_local_domain(domain):
            address = self._postmaster_alias(address, domain)
        if accounts.is_local_domain(domain) and accounts.by_address(address) is None:
            return R550_NO_SUCH_USER
        # Authenticated users may send to any domain: that relaying is what submission is for.
        return self._accept_recipient(server, address, options)

    def _prepare(self, message: bytes) -> bytes:
        if self.quirk("msa_strip_8bit"):
            # Breaks RFC 6152 §3: 8-bit content declared with BODY=8BITMIME is passed on intact.
            # Each 8-bit octet becomes "?" (clearing the high bit instead would make NULs and
            # bare CRs or LFs, which break other rules as well).
            message = bytes(b if b < 0x80 else 0x3F for b in message)
        fields: list[tuple[bytes, bytes]] = []
        if not self.quirk("msa_no_date"):
            # RFC 6409 §8.2: "The MSA MAY add a 'Date' field to the submitted message, if it
            # lacks it".
            fields.append((b"Date", rfc5322_now().encode("ascii")))
        if not self.quirk("msa_no_message_id"):
            # RFC 6409 §8.3: "The MSA SHOULD add or replace the 'Message-ID' field, if it lacks
            # it".
            fields.append((b"Message-ID", f"<{uuid.uuid4().hex}@{self.config.domain}>".encode("ascii")))
        return add_missing_fields(message, fields)


class InboundHandler(Handler):
    """The MTA's inbound side on port 25: mail for local users, no relaying."""

    async def handle_AUTH(self, server: Session, mechanism: str, initial: str | None) -> Reply | None:
        raise AssertionError("the inbound MTA offers no AUTH")  # pragma: no cover

    async def handle_RCPT(self, server: Session, address: str, options: Sequence[str]) -> Reply:
        # The quirk breaks RFC 5321 §4.5.3.1.8: "Rejection of messages (for excessive
        # recipients) with fewer than 100 RCPT commands is a violation of this specification."
        limit = MAX_RECIPIENTS // 2 if self.quirk("mta_rcpt_limit_50") else MAX_RECIPIENTS
        if len(server.rcpt_tos) >= limit:
            if self.quirk("mta_rcpt_limit_550"):
                return R550_TOO_MANY_RECIPIENTS  # breaks the 452 rule just below
            # RFC 5321 §4.5.3.1.10: "If an SMTP server has an implementation limit on the number
            # of RCPT commands and this limit is exhausted, it MUST use a response code of 452".
            return R452_TOO_MANY_RECIPIENTS
        parsed = self._recipient_domain(address)
        if parsed is None:
            return R501_BAD_RECIPIENT
        address, domain = parsed
        accounts = self.config.accounts
        if accounts.is_local_domain(domain):
            local_part = address.rpartition("@")[0]
            if "%" in local_part and self.quirk("mta_relay_percent_hack"):
                # Breaks RFC 5321 §3.6.2 (RELAY-ADDRESS-FORMS): the old "percent hack" turns
                # user%foreign@local into user@foreign, relayed for anyone.
                user, _, foreign = local_part.rpartition("%")
                return self._accept_recipient(server, f"{user}@{foreign}", options)
            if (local_part.startswith('"') and "@" in local_part
                    and self.quirk("mta_relay_quoted_local_part")):
                # Breaks RFC 5321 §3.6.2: "user@foreign"@local is unquoted and relayed.
                return self._accept_recipient(server, local_part.strip('"'), options)
            if self.quirk("mta_reject_local"):
                # Breaks RFC 5321 §3.6: the MTA must accept mail for the domains it serves.
                return R451_TEMPORARY_LOCAL_PROBLEM
            address = self._postmaster_alias(address, domain)
            catch_all = server.allows("mx_catch_all")
            # Allowance mx_catch_all: RFC 5321 §3.3 leaves it to the server which addresses are
            # deliverable; this one takes any local part of its domains, and the MDA files such
            # mail into the domain's first account. The quirk accepts and then drops it.
            unknown_accepted = catch_all or self.quirk("mta_accept_unknown_user")
            if accounts.by_address(address) is None and not unknown_accepted:
                # RFC 5321 §3.3: "the SMTP server returns a 550 reply, typically with a string
                # such as "no such user - " and the mailbox name".
                return R550_NO_SUCH_USER
            return self._accept_recipient(server, address, options)
        if server.account is None and not self.quirk("mta_open_relay"):
            # RFC 5321 §3.6.2: "If it declines to relay mail to a particular address for policy
            # reasons, a 550 response SHOULD be returned."
            return R550_RELAY_DENIED
        return self._accept_recipient(server, address, options)
