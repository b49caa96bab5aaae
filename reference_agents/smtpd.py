"""The provider's SMTP servers on aiosmtpd: the MSA (587 STARTTLS, 465 implicit TLS) and the inbound MTA (25)."""

from __future__ import annotations

import asyncio
import collections
import functools
import ipaddress
import logging
import re
import socket
import ssl
import types
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session, syntax

from harness.protocol import sasl
from harness.protocol.smtp import (
    C235_AUTH_OK,
    C250_OK,
    C354_START_DATA,
    C421_SERVICE_UNAVAILABLE,
    C451_LOCAL_ERROR,
    C452_INSUFFICIENT_STORAGE,
    C500_SYNTAX_ERROR,
    C501_SYNTAX_PARAMS,
    C502_NOT_IMPLEMENTED,
    C503_BAD_SEQUENCE,
    C530_AUTH_REQUIRED,
    C535_AUTH_INVALID,
    C550_MAILBOX_UNAVAILABLE,
    C552_EXCEEDED_STORAGE,
    C554_TRANSACTION_FAILED,
    MAX_COMMAND_LINE,
    EnhancedStatus,
)
from harness.protocol.smtp.server import MAX_TEXT_LINE, DataCollector
from reference_agents.accounts import Account
from reference_agents.config import ProviderConfig

log = logging.getLogger(__name__)

#: ``enqueue(mail_from, recipients, data) -> queue id``: stores the message durably (fsync)
#: before it returns. ``mail_from`` is "" for the null reverse-path.
Enqueue = Callable[[str, Sequence[str], bytes], Awaitable[str]]

IDENT = "ESMTP mailharness"

#: RFC 5321 §4.5.3.1.8: "The minimum total number of recipients that MUST be buffered is 100
#: recipients."
MAX_RECIPIENTS = 100

#: RFC 1870 §4: "the maximum length of a MAIL FROM command line is increased by 26 characters
#: by the possible addition of the SIZE keyword and value".
SIZE_PARAM_ALLOWANCE = 26

#: RFC 5321 §4.5.3.2.7: "An SMTP server SHOULD have a timeout of at least 5 minutes while it is
#: awaiting the next command from the sender."
SERVER_TIMEOUT = 300.0

#: Client errors (500, 501, 502, 503, 504, 555 replies) after which a session is cut off with 421.
#: RFC 5321 §7.8: "it would be reasonable for the server to close the connection after
#: generating an appropriate number of 5yz (normally 550) replies."
ERROR_LIMIT = 20
_ERROR_CODES = frozenset({500, 501, 502, 503, 504, 555})

#: Failed AUTH attempts after which the session is cut off with 421 (RFC 4954 §14: "they SHOULD
#: NOT drop the connection until at least 3 attempts to authenticate have failed").
AUTH_FAILURE_LIMIT = 5
#: From the third failure on, each failed AUTH is answered this much later per failure past two.
AUTH_FAILURE_DELAY = 0.2

#: How long stop() lets sessions close gracefully (421, TLS close_notify answered by the
#: client) before it aborts them.
SHUTDOWN_GRACE = 1.0


def _reply(code: int, enhanced: str, text: str) -> str:
    return f"{code} {enhanced} {text}"


# Replies this module writes itself. aiosmtpd's own replies get an enhanced code added on the
# way out (see _with_enhanced_status).
R235_AUTH_OK = _reply(C235_AUTH_OK, "2.7.0", "Authentication successful")
R250_SENDER_OK = _reply(C250_OK, "2.1.0", "Sender OK")
R250_RECIPIENT_OK = _reply(C250_OK, "2.1.5", "Recipient OK")
R354_START_DATA = f"{C354_START_DATA} End data with <CR><LF>.<CR><LF>"
R451_LOCAL_ERROR = _reply(C451_LOCAL_ERROR, "4.3.0", "Local error in processing; try again later")
R452_TOO_MANY_RECIPIENTS = _reply(C452_INSUFFICIENT_STORAGE, "4.5.3", "Too many recipients")
R500_LINE_TOO_LONG = _reply(C500_SYNTAX_ERROR, "5.5.2", "Line too long")
R500_AUTH_LINE_TOO_LONG = _reply(C500_SYNTAX_ERROR, "5.5.6", "Authentication Exchange line is too long")
R501_BAD_AUTH_RESPONSE = _reply(C501_SYNTAX_PARAMS, "5.5.2", "Cannot decode the authentication response")
R501_BAD_RECIPIENT = _reply(C501_SYNTAX_PARAMS, "5.1.3", "Bad recipient address syntax")
R501_BAD_PATH = _reply(C501_SYNTAX_PARAMS, "5.5.4", "Syntax: path must be enclosed in <>")
R501_DATA_SYNTAX = _reply(C501_SYNTAX_PARAMS, "5.5.4", "Syntax: DATA")
R502_AUTH_NOT_AVAILABLE = _reply(C502_NOT_IMPLEMENTED, "5.5.1", "AUTH not available on this port")
R503_AUTH_IN_TRANSACTION = _reply(C503_BAD_SEQUENCE, "5.5.1", "AUTH not permitted during a mail transaction")
R503_NEED_RCPT = _reply(C503_BAD_SEQUENCE, "5.5.1", "Error: need RCPT command")
R503_REFUSED = _reply(C503_BAD_SEQUENCE, "5.5.1", "Bad sequence of commands: service refused, send QUIT")
R503_TLS_ACTIVE = _reply(C503_BAD_SEQUENCE, "5.5.1", "TLS already active")
R530_AUTH_REQUIRED = _reply(C530_AUTH_REQUIRED, "5.7.0", "Authentication required")
R535_AUTH_INVALID = _reply(C535_AUTH_INVALID, "5.7.8", "Authentication credentials invalid")
R550_NO_SUCH_USER = _reply(C550_MAILBOX_UNAVAILABLE, "5.1.1", "No such user here")
R550_RELAY_DENIED = _reply(C550_MAILBOX_UNAVAILABLE, "5.7.1", "Relay access denied")
R550_SENDER_NOT_OWNED = _reply(C550_MAILBOX_UNAVAILABLE, "5.7.1", "Sender address not owned by the authenticated user")
R552_TOO_BIG = _reply(C552_EXCEEDED_STORAGE, "5.3.4", "Message size exceeds fixed maximum message size")
R214_HELP = _reply(214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT STARTTLS AUTH")
R211_HELP = _reply(211, "2.0.0", "mailharness: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT")
R502_HELP = _reply(C502_NOT_IMPLEMENTED, "5.5.1", "HELP not implemented")
R252_CANNOT_VRFY = _reply(252, "2.0.0", "Cannot VRFY user, but will accept message and attempt delivery")
R502_STARTTLS = _reply(C502_NOT_IMPLEMENTED, "5.5.1", "STARTTLS not implemented")
R250_OK = _reply(C250_OK, "2.0.0", "OK")
R421_AUTH_FAILURES = _reply(C421_SERVICE_UNAVAILABLE, "4.7.0", "Too many authentication failures, closing")
R421_TOO_MANY_ERRORS = _reply(C421_SERVICE_UNAVAILABLE, "4.7.0", "Too many errors, closing")
R501_NOOP_ARGUMENT = _reply(C501_SYNTAX_PARAMS, "5.5.4", "Syntax: NOOP")
R502_HELO = _reply(C502_NOT_IMPLEMENTED, "5.5.1", "HELO not implemented")
R530_STARTTLS_FIRST = _reply(C530_AUTH_REQUIRED, "5.7.0", "Must issue a STARTTLS command first")
R550_NULL_SENDER = _reply(C550_MAILBOX_UNAVAILABLE, "5.7.1", "Null sender not accepted")
R550_TOO_MANY_RECIPIENTS = _reply(C550_MAILBOX_UNAVAILABLE, "5.5.3", "Too many recipients")
R555_BODY = _reply(555, "5.5.4", "BODY parameter not accepted")
R554_BARE_LINE_ENDING = _reply(C554_TRANSACTION_FAILED, "5.6.0", "Message contains a bare CR or LF (RFC 5321 section 2.3.8)")

#: Enhanced status code for aiosmtpd replies that carry none, by reply code (RFC 3463 §3).
_DEFAULT_ENHANCED: Mapping[int, str] = types.MappingProxyType({
    421: "4.3.2",  # X.3.2 System not accepting network messages
    451: "4.3.0",  # X.3.0 Other or undefined mail system status
    452: "4.3.1",  # X.3.1 Mail system full
    454: "4.7.0",  # X.7.0 Other or undefined security status
    500: "5.5.2",  # X.5.2 Syntax error
    501: "5.5.4",  # X.5.4 Invalid command arguments
    502: "5.5.1",  # X.5.1 Invalid command
    503: "5.5.1",
    504: "5.5.4",
    530: "5.7.0",
    535: "5.7.8",
    552: "5.3.4",  # X.3.4 Message too big for system
    553: "5.1.3",  # X.1.3 Bad destination mailbox address syntax
    554: "5.0.0",
    555: "5.5.4",
})
_REPLY_LINE_RE = re.compile(r"([2-5][0-9][0-9])([ -])(.*)", re.DOTALL)
# RFC 5321 §4.1.2: Domain = sub-domain *("." sub-domain); address-literal = "[" ... "]".
_DOMAIN_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*")
_ADDRESS_LITERAL_RE = re.compile(r"\[[\x21-\x5a\x5e-\x7e]+\]")
# RFC 5322 §2.2 / §3.6.8: field-name = 1*ftext, ftext = %d33-57 / %d59-126 (obs: WSP before ":").
# What a lenient server takes for the end of data (quirks *_accept_bare_lf_end_of_data).
_BARE_LF_END_RE = re.compile(rb"(?<!\r)\n\.\r?\n")
_FIELD_LINE_RE = re.compile(rb"[\x21-\x39\x3b-\x7e]+[ \t]*:")


def _unclosed_path(arg: str, keyword: str) -> bool:
    """True when the path after *keyword* opens with "<" and never closes: aiosmtpd takes
    ``MAIL FROM:<a@b`` for ``<a@b>``. RFC 5321 §4.1.2: Path = "<" [ A-d-l ":" ] Mailbox ">"."""
    if not arg[: len(keyword)].upper() == keyword:
        return False
    path = arg[len(keyword):].lstrip()
    return path.startswith("<") and ">" not in path


def _with_enhanced_status(line: str) -> str:
    """*line* with an enhanced status code after the reply code when it has none.

    RFC 2034 §3: "the text part of all 2xx, 4xx, and 5xx SMTP responses other than the initial
    greeting and any response to HELO or EHLO are prefaced with a status code"."""
    m = _REPLY_LINE_RE.fullmatch(line)
    if m is None:
        return line
    code, sep, text = int(m[1]), m[2], m[3]
    if code // 100 == 3 or EnhancedStatus.from_text(text) is not None:
        return line
    enhanced = _DEFAULT_ENHANCED.get(code, f"{code // 100}.0.0")
    return f"{code}{sep}{enhanced} {text}" if text else f"{code}{sep}{enhanced}"


def _account_of(session: Session) -> Account | None:
    account = getattr(session, "auth_data", None)
    return account if isinstance(account, Account) and session.authenticated else None


def _rfc5322_now() -> str:
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


def _loopback_socket(address: str, port: int) -> socket.socket:
    """A TCP socket bound to (*address*, *port*). *address* must be a loopback IP literal:
    nothing here ever resolves a name."""
    ip = ipaddress.ip_address(address)
    if not ip.is_loopback:
        raise ValueError(f"refusing to listen on {address}: reference agents bind loopback only")
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when it can see
    # they are TCP, and without it every multiline reply waits ~40 ms for a delayed ACK.
    sock = socket.socket(
        socket.AF_INET6 if ip.version == 6 else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
    )
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
    except BaseException:
        sock.close()
        raise
    return sock


@dataclass(frozen=True, slots=True)
class _Listener:
    """How one port behaves."""

    name: str
    starttls: ssl.SSLContext | None  # offered via STARTTLS
    implicit_tls: ssl.SSLContext | None  # TLS from the first byte
    offer_auth: bool
    auth_require_tls: bool
    greeting_554: bool


class _SMTPSession(SMTP):
    """One SMTP connection: aiosmtpd's protocol with our limits, reply codes and shutdown."""

    def __init__(
        self,
        handler: _Handler,
        *,
        listener: _Listener,
        config: ProviderConfig,
        tracker: _SessionTracker,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.config = config
        #: "msa" or "mta": which agent's quirks apply to this session.
        self.agent = "msa" if listener.offer_auth else "mta"
        self.listener = listener
        # An instance dict, set before SMTP.__init__ clears it: aiosmtpd keeps these limits in
        # a class attribute shared by every session and grows MAIL's by 26 on every EHLO.
        self.command_size_limits = self._fresh_command_limits()
        super().__init__(
            handler,
            hostname=config.hostname,  # explicit: aiosmtpd would otherwise call socket.getfqdn()
            ident=IDENT,
            tls_context=listener.starttls,
            require_starttls=False,
            auth_required=False,  # enforced by the handler's MAIL hook (RFC 6409 §4.3)
            auth_require_tls=listener.auth_require_tls,
            data_size_limit=config.max_message_size or None,
            # RFC 6531: UTF-8 addresses and headers. The quirk advertises SMTPUTF8 (in the EHLO
            # hook) while this session stays in strict ASCII mode and refuses them.
            enable_SMTPUTF8=not (
                self.agent == "mta" and config.has_quirk("mta_smtputf8_advertised_unsupported")
            ),
            decode_data=False,
            timeout=SERVER_TIMEOUT,
            loop=loop,
        )
        self._tracker = tracker
        self.errors = 0
        self.auth_failures = 0
        self._close_after_reply = False
        self._greeted = False
        self._plain_replies = False
        self._lost = asyncio.Event()
        self._tracked = False
        if listener.greeting_554:
            # RFC 5321 §3.1: "A server taking this approach MUST still wait for the client to
            # send a QUIT (see Section 4.1.1.10) before closing the connection and SHOULD respond
            # to any intervening commands with "503 bad sequence of commands"."
            self._smtp_methods = {name: self._refuse for name in self._smtp_methods}
            self._smtp_methods["QUIT"] = self.smtp_QUIT

    def quirk(self, name: str) -> bool:
        """True when quirk *name* is on and belongs to this session's agent (msa_/mta_)."""
        return self.config.has_quirk(name) and name.startswith(self.agent + "_")

    def allows(self, name: str) -> bool:
        """True when allowance *name* (reference_agents/allowances.py) is on for this session:
        smtp_ allowances hold for the MSA and the MTA, mx_ ones for the inbound MTA only."""
        return (not name.startswith("mx_") or self.agent == "mta") and self.config.allows(name)

    def _fresh_command_limits(self) -> collections.defaultdict[str, int]:
        # aiosmtpd compares the line without its CRLF with this limit.
        return collections.defaultdict(lambda: MAX_COMMAND_LINE)

    def close_after_reply(self) -> None:
        """Close the connection once the next reply has been sent."""
        self._close_after_reply = True

    async def _handle_client(self) -> None:
        if self.quirk("mta_one_session_at_a_time"):
            # Breaks RFC 5321 §7.8 (SMTP-HOSTILE-SESSION): one slow client holds the server.
            async with self._tracker.serial:
                await super()._handle_client()
            return
        await super()._handle_client()

    # --- connection bookkeeping -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None
        super().connection_made(transport)
        if first:
            self._tracked = True
            self._tracker.sessions.add(self)
            task = self._handler_coroutine
            if task is not None:
                task.add_done_callback(_consume_task_result)
            if self._tracker.stopping:
                self.shutdown()

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        self._tracker.sessions.discard(self)
        self._lost.set()

    @property
    def tls_active(self) -> bool:
        transport = self.transport
        return transport is not None and transport.get_extra_info("ssl_object") is not None

    def shutdown(self) -> None:
        """Say 421 and close (RFC 5321 §3.8: a server being shut down "SHOULD attempt to send a
        line containing a 421 response code to the SMTP client before exiting")."""
        transport = self.transport
        if isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
            line = f"{C421_SERVICE_UNAVAILABLE} 4.3.2 {self.hostname} Service shutting down\r\n"
            transport.write(line.encode("ascii"))
            transport.close()

    def abort(self) -> None:
        transport = self.transport
        if isinstance(transport, asyncio.WriteTransport):
            transport.abort()

    async def wait_closed(self) -> None:
        if self._tracked:
            await self._lost.wait()
        task = self._handler_coroutine
        if task is not None:
            await asyncio.wait({task})

    # --- replies ----------------------------------------------------------------------------

    async def push(self, status: str | bytes) -> None:
        if isinstance(status, str):
            if not self._greeted:
                self._greeted = True
                if self.listener.greeting_554:
                    # Quirk msa_greeting_554 breaks RFC 5321 §4.3.1 (CONNECTION ESTABLISHMENT
                    # S: 220): this MSA does serve, yet greets as if refusing the session.
                    status = f"{C554_TRANSACTION_FAILED} {self.hostname} {IDENT}"
            elif not self._plain_replies:
                status = self._adjust_reply(status)
            transport = self.transport
            if transport is None or transport.is_closing():
                return  # cut off: nothing more is said
            if "line too long" in status and self.quirk("msa_long_command_line_closes"):
                # Breaks RFC 5321 §4.5.3.1.10: limits are "reported by using the reply codes"
                # (500 Line too long) — this server just hangs up.
                transport.close()
                return
            await super().push(status)
            await self._after_reply(status)
        else:
            await super().push(status)

    def _adjust_reply(self, status: str) -> str:
        if status.startswith('500 Error: command "') and self.quirk("msa_unknown_command_accepted"):
            # Breaks RFC 5321 §4.2.4: an unrecognised command gets 500, not success.
            status = R250_OK
        if status.startswith("502 5.5.1 Too many unrecognized commands"):
            # aiosmtpd closes after five unknown commands with a 502. RFC 5321 §3.8: "An SMTP
            # server MUST NOT intentionally close the connection under normal operational
            # circumstances ... except ... After detecting the need to shut down the SMTP
            # service and returning a 421 response code."
            status = R421_TOO_MANY_ERRORS
        if status.startswith("501 5.7.0 Auth aborted") and self.quirk("msa_auth_cancel_535"):
            # Breaks RFC 4954 §4: on "*" the server "MUST reject the AUTH command by sending a
            # 501 reply".
            status = R535_AUTH_INVALID
        status = _with_enhanced_status(status)
        if status[:1] == "5" and status[4:6] == "5." and self.quirk("mta_enhanced_class_mismatch"):
            # Breaks RFC 3463 §2: "The class sub-code ... [is] the same as the first digit of the
            # reply code" for a 5yz reply.
            status = status[:4] + "4" + status[5:]
        return status

    async def _after_reply(self, status: str) -> None:
        transport = self.transport
        if transport is None:
            return
        if self._close_after_reply:
            transport.close()
            return
        if self.quirk("mta_pipelining_flush_input"):
            # Breaks RFC 2920 §3.2: the server "MUST respond to commands in the order they are
            # received from the client" — commands buffered after this one are lost.
            self._reader._buffer.clear()  # type: ignore[attr-defined]
        code = int(status[:3]) if status[:3].isdigit() else 0
        if code not in _ERROR_CODES:
            return
        self.errors += 1
        if self.errors < ERROR_LIMIT or self.quirk("msa_no_error_limit"):
            return
        if not self.quirk("msa_error_limit_silent_close"):
            # RFC 5321 §3.8: a server closes on its own only "after detecting the need to shut
            # down the SMTP service and returning a 421 response code".
            await super().push(R421_TOO_MANY_ERRORS)
        transport.close()

    async def _refuse(self, arg: str | None) -> None:
        await self.push(R503_REFUSED)

    # --- commands aiosmtpd gets slightly wrong for us -----------------------------------------

    async def check_helo_needed(self, helo: str = "HELO") -> bool:
        assert self.session is not None
        if not self.session.host_name and self.allows("smtp_mail_before_ehlo"):
            # Allowance: RFC 5321 §4.1.4 puts the rule on the client ("A session that will
            # contain mail transactions MUST first be initialized by the use of the EHLO
            # command"); this server takes MAIL, RCPT and DATA before any EHLO or HELO.
            return False
        return await super().check_helo_needed(helo)

    @syntax("EHLO hostname")
    async def smtp_EHLO(self, hostname: str) -> None:
        if self.listener.offer_auth and self.quirk("msa_ehlo_refused"):
            # Breaks RFC 5321 §4.1.1.1 (EHLO is answered 250 and the extensions the server
            # supports): this MSA does support extensions, yet refuses EHLO.
            await self.push("502 5.5.1 EHLO not implemented")
            return
        if not hostname and self.quirk("msa_ehlo_no_domain_accepted"):
            # Breaks RFC 5321 §4.1.1.1 (ehlo = "EHLO" SP ( Domain / address-literal ) CRLF):
            # a missing argument is a syntax error, 501.
            hostname = "unnamed"
        self.command_size_limits = self._fresh_command_limits()
        kept = self.envelope if self.quirk("msa_ehlo_keeps_transaction") else None
        self._plain_replies = True
        try:
            await super().smtp_EHLO(hostname)
        finally:
            self._plain_replies = False
        if kept is not None:
            # Breaks RFC 5321 §4.1.4: after EHLO "the SMTP server MUST clear all buffers and
            # reset the state exactly as if a RSET command had been issued."
            self.envelope = kept
        if self.data_size_limit:
            self.command_size_limits["MAIL"] = MAX_COMMAND_LINE + SIZE_PARAM_ALLOWANCE

    @syntax("HELO hostname")
    async def smtp_HELO(self, hostname: str) -> None:
        if self.quirk("msa_helo_unsupported"):
            # Breaks RFC 5321 §4.5.1: HELO is among the commands that "MUST be supported".
            await self.push(R502_HELO)
            return
        self._plain_replies = True
        try:
            await super().smtp_HELO(hostname)
        finally:
            self._plain_replies = False

    @syntax("STARTTLS", when="tls_context")
    async def smtp_STARTTLS(self, arg: str) -> None:
        if self.allows("mx_no_starttls"):
            # Allowance: STARTTLS is an extension (RFC 3207 §2), so this MX neither lists it in
            # EHLO nor implements it. RFC 5321 §4.2.4: "502 SHOULD be used when the command is
            # actually recognized by the SMTP server, but not implemented" (RFC 3207's 454 is
            # for a "temporary reason").
            await self.push(R502_STARTTLS)
            return
        if self.tls_active:
            # RFC 3207 §4.2: "A client MUST NOT attempt to start a TLS session if a TLS session
            # is already active."
            if self.quirk("msa_starttls_twice"):
                # Breaks RFC 3207 §4.2: a second TLS session inside the first is accepted.
                await self.push("220 2.0.0 Ready to start TLS")
                return
            await self.push(R503_TLS_ACTIVE)
            return
        if arg and self.quirk("msa_starttls_with_argument"):
            # Breaks RFC 3207 §4: "501 Syntax error (no parameters allowed)".
            arg = ""
        assert self.session is not None
        pending = bytes(self._reader._buffer)  # type: ignore[attr-defined]
        host_name, extended = self.session.host_name, self.session.extended_smtp
        # aiosmtpd's connection_made() discards what was buffered in clear text. RFC 3207 §4.2:
        # "The server MUST discard any knowledge obtained from the client, such as the argument
        # to the EHLO command, which was not obtained from the TLS negotiation itself."
        await super().smtp_STARTTLS(arg)
        if not self.tls_active:
            return
        if pending and self.quirk("msa_keep_pre_starttls_buffer"):
            # Breaks RFC 3207 §4.2: clear-text commands sent after STARTTLS run inside TLS.
            self._reader._buffer[:0] = pending
        if self.quirk("msa_keep_ehlo_after_starttls"):
            assert self.session is not None
            # Breaks RFC 3207 §4.2: the pre-TLS EHLO argument is kept.
            self.session.host_name, self.session.extended_smtp = host_name, extended

    @syntax("AUTH <mechanism>")
    async def smtp_AUTH(self, arg: str) -> None:
        if not self.listener.offer_auth:
            await self.push(R502_AUTH_NOT_AVAILABLE)
            return
        assert self.session is not None
        mechanism = ""
        if arg:
            # SASL mechanism names are matched without regard to case.
            mechanism, _, rest = arg.partition(" ")
            mechanism = mechanism.upper()
            arg = f"{mechanism} {rest}" if rest else mechanism
        if (mechanism and mechanism not in self._auth_methods and self.session.extended_smtp
                and self.quirk("msa_auth_unknown_mechanism_535")):
            # Breaks RFC 4954 §4: "If the requested authentication mechanism is not supported,
            # the server rejects the AUTH command with a 504 reply."
            await self.push(R535_AUTH_INVALID)
            return
        in_transaction = self.envelope is not None and self.envelope.mail_from is not None
        if self.session.authenticated and (
            self.quirk("msa_auth_twice") or (in_transaction and self.quirk("msa_auth_in_transaction"))
        ):
            # Breaks RFC 4954 §4: "After a successful AUTH command completes, a server MUST
            # reject any further AUTH commands with a 503 reply."
            self.session.authenticated = False
        await super().smtp_AUTH(arg)

    @syntax("MAIL FROM: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_MAIL(self, arg: str | None) -> None:
        if not arg and self.quirk("msa_mail_without_argument_accepted"):
            # Breaks RFC 5321 §4.1.1.2 (mail = "MAIL FROM:" Reverse-path ...): 501 is due.
            arg = "FROM:<>"
        if arg and self.quirk("msa_size_param_ignored"):
            # Breaks RFC 1870 §6.1: a SIZE above the fixed maximum must get 552.
            arg = re.sub(r"(?i)\s+SIZE=\d+", "", arg)
        if arg and _unclosed_path(arg, "FROM:"):
            await self.push(R501_BAD_PATH)
            return
        assert self.envelope is not None
        if self.envelope.mail_from is not None and self.quirk("msa_nested_mail_accepted"):
            # Breaks RFC 5321 §4.1.4: "a 503 failure reply MUST be returned" to a command out
            # of sequence; this restarts the transaction instead.
            self.envelope = self._create_envelope()
        await super().smtp_MAIL(arg)

    @syntax("RCPT TO: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_RCPT(self, arg: str | None) -> None:
        assert self.envelope is not None and self.session is not None
        if (self.envelope.mail_from is None and self.session.host_name
                and self.quirk("msa_rcpt_before_mail_accepted")):
            # Breaks RFC 5321 §4.1.4: RCPT before MAIL is out of sequence (503).
            await self.push(R250_RECIPIENT_OK)
            return
        if arg and _unclosed_path(arg, "TO:"):
            await self.push(R501_BAD_PATH)
            return
        await super().smtp_RCPT(arg)

    @syntax("RSET")
    async def smtp_RSET(self, arg: str | None) -> None:
        if not arg and self.quirk("msa_rset_keeps_transaction"):
            # Breaks RFC 5321 §4.1.1.5: "any stored sender, recipients, and mail data MUST be
            # discarded".
            await self.push(R250_OK)
            return
        if arg and self.quirk("msa_rset_data_quit_argument_accepted"):
            # Breaks RFC 5321 §4.1.1: servers "SHOULD reject commands containing them [RSET,
            # DATA, QUIT with parameters] as having invalid syntax"; this one drops the argument.
            arg = None
        await super().smtp_RSET(arg)

    @syntax("NOOP [ignored]")
    async def smtp_NOOP(self, arg: str | None) -> None:
        if arg and self.quirk("msa_noop_with_argument_refused"):
            # Breaks RFC 5321 §4.1.1.9: "If a parameter string is specified, servers SHOULD
            # ignore it"; NOOP specifies no action other than a "250 OK" reply.
            await self.push(R501_NOOP_ARGUMENT)
            return
        await super().smtp_NOOP(arg or "")

    @syntax("VRFY <address>")
    async def smtp_VRFY(self, arg: str | None) -> None:
        if arg and self.quirk("mta_vrfy_syntax_only"):
            # Breaks RFC 5321 §3.5.3: "a server MUST NOT return 250 if all it has done is to
            # verify that the syntax given is valid."
            await self.push(_reply(C250_OK, "2.1.5", f"<{arg.strip('<>')}>"))
            return
        if self.allows("smtp_vrfy_252"):
            # Allowance: RFC 5321 §3.5.3: where an address "cannot reasonably be verified in real
            # time ... reply code 252 SHOULD be returned"; §7.3 lets a server not verify at all.
            # This one answers every VRFY so, with or without an argument.
            await self.push(R252_CANNOT_VRFY)
            return
        await super().smtp_VRFY(arg or "")

    @syntax("HELP [command]")
    async def smtp_HELP(self, arg: str | None) -> None:
        if self.quirk("msa_help_wrong_code"):
            # Breaks RFC 5321 §4.3.2: HELP is answered "S: 211, 214", never 250 (aiosmtpd's own
            # answer).
            await super().smtp_HELP(arg or "")
            return
        # RFC 5321 §4.3.2: HELP "S: 211, 214  E: 502, 504". The allowances answer with the
        # other codes listed there: 211 (system status), or 502 where HELP is not implemented.
        if self.allows("smtp_help_502"):
            await self.push(R502_HELP)
        elif self.allows("smtp_help_211"):
            await self.push(R211_HELP)
        else:
            await self.push(R214_HELP)

    @syntax("QUIT")
    async def smtp_QUIT(self, arg: str | None) -> None:
        if arg and self.quirk("msa_rset_data_quit_argument_accepted"):
            arg = None  # breaks RFC 5321 §4.1.1 (see smtp_RSET)
        if not arg and self.quirk("msa_quit_keeps_connection"):
            # Breaks RFC 5321 §4.1.1.10: "the receiver MUST send a "221 OK" reply, and then
            # close the transmission channel."
            await self.push(f"221 2.0.0 {self.hostname} closing connection")
            return
        await super().smtp_QUIT(arg or "")

    @syntax("DATA")
    async def smtp_DATA(self, arg: str | None) -> None:
        # Replaces aiosmtpd's DATA loop, which keeps every fragment of an over-long line in
        # memory until a CRLF arrives.
        if await self.check_helo_needed():
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push(R503_NEED_RCPT)
            return
        if arg and not self.quirk("msa_rset_data_quit_argument_accepted"):  # see smtp_RSET
            # RFC 5321 §4.1.1: servers "SHOULD reject commands containing them as having invalid
            # syntax" (RSET, DATA and QUIT take no parameters).
            await self.push(R501_DATA_SYNTAX)
            return
        await self.push(R354_START_DATA)
        size_limit = None if self.quirk("mta_size_not_enforced") else self.data_size_limit
        collector = DataCollector(size_limit)
        smuggle = self.quirk("msa_accept_bare_lf_end_of_data") or self.quirk("mta_accept_bare_lf_end_of_data")
        last_reset = self.loop.time()
        try:
            while True:
                piece = await self._read_data_piece()
                if smuggle and (m := _BARE_LF_END_RE.search(piece)) is not None:
                    # Breaks RFC 5321 §4.1.1.4: "the sequence "<LF>.<LF>" (bare line feeds,
                    # without carriage returns) MUST NOT be treated as equivalent to
                    # <CRLF>.<CRLF> as the end of mail data indication."  What follows is read
                    # as commands: a smuggled transaction.
                    self._reader._buffer[:0] = piece[m.end():]  # type: ignore[attr-defined]
                    collector.feed(piece[: m.start()] + b"\r\n")
                    collector.feed(b".\r\n")
                    break
                if collector.feed(piece):
                    break
                # Data is arriving: keep the idle timeout from firing (at most once a second).
                if self.loop.time() - last_reset > 1.0:
                    last_reset = self.loop.time()
                    self._reset_timeout()
        except asyncio.IncompleteReadError:
            # The client went away before CRLF.CRLF: nothing was accepted, nothing is queued.
            self.envelope = self._create_envelope()
            if self.transport is not None:
                self.transport.close()
            return
        if collector.overflow or collector.message is None:
            status: Any = R552_TOO_BIG
        elif collector.line_too_long and not self.quirk("msa_fold_long_lines"):
            status = R500_LINE_TOO_LONG
        elif collector.bare_line_ending:
            status = R554_BARE_LINE_ENDING
        else:
            content = collector.message
            if collector.line_too_long:
                # Quirk msa_fold_long_lines: takes the long line, then silently breaks it up,
                # changing the message it accepted (RFC 5321 §4.5.3.1.6 / SMTP-LINE-TEXT).
                content = _fold_long_lines(content)
            self.envelope.content = content
            self.envelope.original_content = content
            status = await self._call_handler_hook("DATA")
        self.envelope = self._create_envelope()
        await self.push(_reply(C250_OK, "2.0.0", "OK") if status is MISSING else status)

    async def _read_data_piece(self) -> bytes:
        """One line up to and including CRLF, or, when the line is longer than the stream
        limit, the part of it that is buffered (the CRLF is never split)."""
        try:
            return await self._reader.readuntil(b"\r\n")
        except asyncio.LimitOverrunError as overrun:
            return await self._reader.read(overrun.consumed)


def _fold_long_lines(message: bytes) -> bytes:
    """Break every line longer than 998 octets into pieces of 998 (what quirky relays do)."""
    out: list[bytes] = []
    for line in message.split(b"\r\n"):
        while len(line) > MAX_TEXT_LINE - 2:
            out.append(line[: MAX_TEXT_LINE - 2])
            line = line[MAX_TEXT_LINE - 2:]
        out.append(line)
    return b"\r\n".join(out)


def _consume_task_result(task: asyncio.Task[None]) -> None:
    # aiosmtpd's session task ends with ConnectionResetError when a client resets: retrieve it
    # so it is not reported as "never retrieved".
    if not task.cancelled():
        task.exception()


class _SessionTracker:
    """The open sessions of one SMTPServers, so stop() can close them."""

    def __init__(self) -> None:
        self.sessions: set[_SMTPSession] = set()
        self.stopping = False
        #: Held by every session while quirk mta_one_session_at_a_time is on.
        self.serial = asyncio.Lock()


class _Handler:
    """aiosmtpd hooks shared by the MSA and the inbound MTA."""

    #: RFC 3848 transmission type prefix when the client used EHLO.
    submission = False

    def __init__(self, config: ProviderConfig, enqueue: Enqueue) -> None:
        self.config = config
        self._enqueue = enqueue

    def quirk(self, name: str) -> bool:
        return self.config.has_quirk(name)

    async def handle_EHLO(
        self, server: _SMTPSession, session: Session, envelope: Envelope, hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        lines = [r for r in responses if server.listener.offer_auth or not r[4:].startswith("AUTH")]
        lines.insert(len(lines) - 1, "250-ENHANCEDSTATUSCODES")
        # RFC 2920: commands are read one by one from the stream and answered in order, so
        # pipelined groups are served as they arrive.
        lines.insert(len(lines) - 1, "250-PIPELINING")
        if self.submission and self.quirk("msa_ehlo_bad_continuation"):
            # Breaks RFC 5321 §4.2.1: "The format for multiline replies requires that every line,
            # except the last, begin with the reply code, followed immediately by a hyphen".
            lines[1] = "250 " + lines[1][4:]
        if server.tls_active and server.quirk("msa_starttls_reoffered"):
            # Breaks RFC 3207 §4.2: "A server MUST NOT return the STARTTLS extension in response
            # to an EHLO command received after a TLS handshake has completed."
            lines.insert(len(lines) - 1, "250-STARTTLS")
        if server.quirk("mta_smtputf8_advertised_unsupported"):
            # Breaks RFC 6531 §3.2: a server announcing SMTPUTF8 must take UTF-8 addresses.
            lines.insert(len(lines) - 1, "250-SMTPUTF8")
        return lines

    async def handle_MAIL(
        self, server: _SMTPSession, session: Session, envelope: Envelope, address: str,
        mail_options: list[str],
    ) -> str:
        if server.quirk("mta_require_starttls") and not server.tls_active:
            # Breaks RFC 3207 §4: "A publicly-referenced SMTP server MUST NOT require use of the
            # STARTTLS extension in order to deliver mail locally."
            return R530_STARTTLS_FIRST
        if address == "<>" and server.quirk("mta_refuse_null_sender"):
            return R550_NULL_SENDER  # breaks RFC 1123 §5.2.9: the empty reverse-path is a MUST
        if "BODY=8BITMIME" in mail_options and server.quirk("msa_reject_body_8bitmime"):
            return R555_BODY  # breaks RFC 6152 §3: BODY=8BITMIME is the advertised parameter
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return R250_SENDER_OK

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

    def _accept_recipient(self, envelope: Envelope, address: str, options: list[str]) -> str:
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return R250_RECIPIENT_OK

    async def handle_DATA(self, server: _SMTPSession, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        message = self._with_trace(server, session, envelope, self._prepare(envelope.content))
        if self.quirk("mta_lose_after_accept"):
            # Breaks RFC 5321 §6.1: "It MUST NOT lose the message for frivolous reasons".
            return _reply(C250_OK, "2.0.0", f"Ok: queued as {uuid.uuid4().hex[:16].upper()}")
        sender = "" if envelope.mail_from in (None, "<>") else str(envelope.mail_from)
        try:
            queue_id = await self._enqueue(sender, tuple(envelope.rcpt_tos), message)
        except Exception:
            log.exception("%s: could not queue a message from %r", self.config.domain, sender)
            return R451_LOCAL_ERROR
        # RFC 5321 §6.1: "When the receiver-SMTP accepts a piece of mail (by sending a "250 OK"
        # message in response to DATA), it is accepting responsibility for delivering or
        # relaying the message."  enqueue() has fsynced it by now.
        return _reply(C250_OK, "2.0.0", f"Ok: queued as {queue_id}")

    def _prepare(self, message: bytes) -> bytes:
        return message

    def _with_trace(self, server: _SMTPSession, session: Session, envelope: Envelope, message: bytes) -> bytes:
        if self.quirk("mta_no_received"):
            return message
        # RFC 5321 §4.4: "When an SMTP server receives a message for delivery or further
        # processing, it MUST insert trace ("time stamp" or "Received") information at the
        # beginning of the message content".
        # With SMTPUTF8 the FOR clause may hold a UTF-8 address (RFC 6531 §3.7.3, RFC 6532).
        return self._received(server, session, envelope).encode("utf-8") + message

    def _received(self, server: _SMTPSession, session: Session, envelope: Envelope) -> str:
        peer = session.peer
        ip = peer[0] if isinstance(peer, tuple) else "unknown"
        literal = f"[IPv6:{ip}]" if ":" in ip else f"[{ip}]"
        helo = session.host_name or ""
        # RFC 5321 §4.4: the FROM clause "SHOULD contain both (1) the name of the source host as
        # presented in the EHLO command and (2) an address literal containing the IP address of
        # the source, determined from the TCP connection."
        if not (_DOMAIN_RE.fullmatch(helo) or _ADDRESS_LITERAL_RE.fullmatch(helo)):
            helo = literal
        # RFC 4954 §7: "Upon successful authentication, a server SHOULD use the "ESMTPA" or the
        # "ESMTPSA" [SMTP-TT] (when appropriate) keyword in the "with" clause"; ESMTPS with TLS.
        protocol = "ESMTP" if session.extended_smtp else "SMTP"
        if envelope.smtp_utf8:
            protocol = "UTF8SMTP"  # RFC 6531 §4.3: the WITH types of a session with SMTPUTF8
        if session.extended_smtp:
            protocol += ("S" if server.tls_active else "") + ("A" if _account_of(session) else "")
        message_id = uuid.uuid4().hex[:16].upper()
        lines = [
            f"Received: from {helo} ({literal})",
            f"\tby {self.config.hostname} (mailharness) with {protocol} id {message_id}",
        ]
        # RFC 5321 §4.4: "If the FOR clause appears, it MUST contain exactly one <path> entry,
        # even when multiple RCPT commands have been given."  Only given for one recipient, so
        # Bcc recipients are not disclosed to each other.
        if len(envelope.rcpt_tos) == 1:
            lines.append(f"\tfor <{envelope.rcpt_tos[0]}>; {_rfc5322_now()}")
        else:
            lines[-1] += f"; {_rfc5322_now()}"
        return "\r\n".join(lines) + "\r\n"

    async def handle_exception(self, error: Exception) -> str:
        log.error("%s: SMTP session error", self.config.domain, exc_info=error)
        return R451_LOCAL_ERROR


class _SubmissionHandler(_Handler):
    """The MSA (RFC 6409): authenticated submission on 587 and 465."""

    submission = True

    async def handle_AUTH(
        self, server: _SMTPSession, session: Session, envelope: Envelope, args: list[str],
    ) -> str | None:
        if envelope.mail_from is not None and not self.quirk("msa_auth_in_transaction"):
            # RFC 4954 §4: "An AUTH command issued during a mail transaction MUST be rejected
            # with a 503 reply."  The quirk breaks it.
            return R503_AUTH_IN_TRANSACTION
        mechanism = args[0]
        initial = args[1] if len(args) > 1 else None
        try:
            if mechanism == "PLAIN":
                if initial is None and self.quirk("msa_auth_plain_no_continuation"):
                    # Breaks RFC 4954 §4: without an initial response the server sends an empty
                    # challenge ("334 ") and reads the response.
                    return R501_BAD_AUTH_RESPONSE
                if initial is None:
                    response = await server.challenge_auth("")
                    if response is MISSING:
                        return None  # aiosmtpd answered the cancel or the bad base64
                    assert isinstance(response, bytes)
                else:
                    response = sasl.decode_initial_response(initial)
                authzid, user, password = sasl.parse_plain_message(response)
            elif mechanism == "LOGIN":
                if initial is None:
                    raw_user = await server.challenge_auth("Username:")
                    if raw_user is MISSING:
                        return None
                    assert isinstance(raw_user, bytes)
                else:
                    raw_user = sasl.decode_initial_response(initial)
                raw_password = await server.challenge_auth("Password:")
                if raw_password is MISSING:
                    return None
                assert isinstance(raw_password, bytes)
                authzid, user, password = "", raw_user.decode("utf-8"), raw_password.decode("utf-8")
            else:  # pragma: no cover - aiosmtpd only passes the mechanisms it advertises
                return R535_AUTH_INVALID
        except ValueError as error:
            if "limit" in str(error):
                # StreamReader.readline: the response did not fit in the stream's line limit.
                return R500_AUTH_LINE_TOO_LONG
            if self.quirk("msa_auth_bad_base64_535"):
                # Breaks RFC 4954 §4: "If the server cannot [BASE64] decode any client response,
                # it MUST reject the AUTH command with a 501 reply."
                return R535_AUTH_INVALID
            return R501_BAD_AUTH_RESPONSE
        if mechanism == "LOGIN" and self.quirk("msa_auth_login_broken"):
            return await self._auth_failed(server)  # breaks AUTH-LOGIN: advertised, never works
        account = await asyncio.to_thread(self._verify, user, password)
        # RFC 4616 §2: the server "will verify that the authentication credentials permit the
        # client to act as the (presented or derived) authorization identity (authzid)".
        if account is not None and authzid and authzid.lower() not in (
            account.username.lower(), account.address.lower()
        ):
            account = None
        if account is None:
            return await self._auth_failed(server)
        session.authenticated = True
        session.auth_data = account  # type: ignore[assignment]  # aiosmtpd annotates it None
        return R235_AUTH_OK

    async def _auth_failed(self, server: _SMTPSession) -> str:
        """535, later and later from the third failure on, and 421 with a close at the limit.

        RFC 4954 §14: "Servers MAY implement a policy whereby the connection is dropped after a
        number of failed authentication attempts.  If they do so, they SHOULD NOT drop the
        connection until at least 3 attempts to authenticate have failed."
        """
        server.auth_failures += 1
        failures = server.auth_failures
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

    async def handle_MAIL(
        self, server: _SMTPSession, session: Session, envelope: Envelope, address: str,
        mail_options: list[str],
    ) -> str:
        account = _account_of(session)
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
        return await super().handle_MAIL(server, session, envelope, address, mail_options)

    async def handle_RCPT(
        self, server: _SMTPSession, session: Session, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
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
        return self._accept_recipient(envelope, address, rcpt_options)

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
            fields.append((b"Date", _rfc5322_now().encode("ascii")))
        if not self.quirk("msa_no_message_id"):
            # RFC 6409 §8.3: "The MSA SHOULD add or replace the 'Message-ID' field, if it lacks
            # it".
            fields.append((b"Message-ID", f"<{uuid.uuid4().hex}@{self.config.domain}>".encode("ascii")))
        return add_missing_fields(message, fields)


class _InboundHandler(_Handler):
    """The MTA's inbound side on port 25: mail for local users, no relaying."""

    async def handle_RCPT(
        self, server: _SMTPSession, session: Session, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:
        # The quirk breaks RFC 5321 §4.5.3.1.8: "Rejection of messages (for excessive
        # recipients) with fewer than 100 RCPT commands is a violation of this specification."
        limit = MAX_RECIPIENTS // 2 if self.quirk("mta_rcpt_limit_50") else MAX_RECIPIENTS
        if len(envelope.rcpt_tos) >= limit:
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
                return self._accept_recipient(envelope, f"{user}@{foreign}", rcpt_options)
            if (local_part.startswith('"') and "@" in local_part
                    and self.quirk("mta_relay_quoted_local_part")):
                # Breaks RFC 5321 §3.6.2: "user@foreign"@local is unquoted and relayed.
                return self._accept_recipient(envelope, local_part.strip('"'), rcpt_options)
            if self.quirk("mta_reject_local"):
                # Breaks RFC 5321 §3.6: the MTA must accept mail for the domains it serves.
                return _reply(C451_LOCAL_ERROR, "4.3.0", "Temporary local problem, try again later")
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
            return self._accept_recipient(envelope, address, rcpt_options)
        if _account_of(session) is None and not self.quirk("mta_open_relay"):
            # RFC 5321 §3.6.2: "If it declines to relay mail to a particular address for policy
            # reasons, a 550 response SHOULD be returned."
            return R550_RELAY_DENIED
        return self._accept_recipient(envelope, address, rcpt_options)


class SMTPServers:
    """The MSA on ``config.ports.submission`` (STARTTLS) and ``.submissions`` (implicit TLS),
    and the inbound MTA on ``.smtp``; port 0 picks a free port, see ``ports`` after start()."""

    def __init__(self, config: ProviderConfig, enqueue: Enqueue) -> None:
        if not config.hostname:
            raise ValueError("ProviderConfig.hostname is required (no FQDN lookups)")
        self.config = config
        self._enqueue = enqueue
        self.ports: dict[str, int] = {}
        self._servers: list[asyncio.Server] = []
        self._tracker = _SessionTracker()

    def _listeners(self) -> list[tuple[_Listener, int, _Handler]]:
        config = self.config
        quirk = config.has_quirk
        msa = _SubmissionHandler(config, self._enqueue)
        mta = _InboundHandler(config, self._enqueue)
        return [
            (
                _Listener(
                    name="submission",
                    # Quirk msa_no_starttls breaks RFC 3207 §4: a server offering STARTTLS
                    # answers it 220 and negotiates TLS (SUBMIT-STARTTLS).
                    starttls=None if quirk("msa_no_starttls") else config.server_tls,
                    implicit_tls=None,
                    offer_auth=True,
                    # RFC 4954 §4 and RFC 8314 §3: no plaintext AUTH mechanisms without TLS.
                    # The quirk breaks it.
                    auth_require_tls=not quirk("msa_auth_before_tls"),
                    greeting_554=quirk("msa_greeting_554"),
                ),
                config.ports.submission,
                msa,
            ),
            (
                _Listener(
                    name="submissions",
                    starttls=None,
                    # RFC 8314 §3.3: "When a TCP connection is established for the
                    # "submissions" service (default port 465), a TLS handshake begins
                    # immediately."  The quirk breaks it.
                    implicit_tls=None if quirk("msa_implicit_tls_plaintext") else config.server_tls,
                    offer_auth=True,
                    auth_require_tls=False,  # the whole connection is TLS
                    greeting_554=quirk("msa_greeting_554"),
                ),
                config.ports.submissions,
                msa,
            ),
            (
                _Listener(
                    name="smtp",
                    # Allowance mx_no_starttls: the MX does not offer STARTTLS at all.
                    starttls=None if config.allows("mx_no_starttls") else config.server_tls,
                    implicit_tls=None,
                    offer_auth=False,
                    auth_require_tls=True,
                    greeting_554=False,
                ),
                config.ports.smtp,
                mta,
            ),
        ]

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tracker.stopping = False
        try:
            for listener, port, handler in self._plaintext(self._listeners()):
                sock = _loopback_socket(self.config.address, port)
                try:
                    server = await loop.create_server(
                        functools.partial(self._session, handler, listener, loop),
                        sock=sock,
                        ssl=listener.implicit_tls,
                    )
                except BaseException:
                    sock.close()
                    raise
                self._servers.append(server)
                self.ports[listener.name] = sock.getsockname()[1]
        except BaseException:
            await self.stop()
            raise

    def _plaintext(
        self, listeners: list[tuple[_Listener, int, _Handler]]
    ) -> list[tuple[_Listener, int, _Handler]]:
        """Without TLS (``config.tls`` false): no implicit-TLS listener, no STARTTLS, and AUTH
        allowed in plain text."""
        if self.config.tls:
            return listeners
        return [
            (replace(listener, starttls=None, auth_require_tls=False), port, handler)
            for listener, port, handler in listeners if listener.name != "submissions"
        ]

    def _session(
        self, handler: _Handler, listener: _Listener, loop: asyncio.AbstractEventLoop
    ) -> _SMTPSession:
        return _SMTPSession(handler, listener=listener, config=self.config, tracker=self._tracker, loop=loop)

    async def stop(self) -> None:
        self._tracker.stopping = True
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()
        for server in servers:
            await server.wait_closed()
        sessions = list(self._tracker.sessions)
        for session in sessions:
            session.shutdown()
        try:
            async with asyncio.timeout(SHUTDOWN_GRACE):
                for session in sessions:
                    await session.wait_closed()
        except TimeoutError:
            for session in sessions:
                session.abort()
            for session in sessions:
                await session.wait_closed()
