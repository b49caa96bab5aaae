"""One SMTP session of the MSA or the inbound MTA: the per-connection state and the verbs, on
the core's parser, reply catalogue and command-order table (harness/protocol/smtp)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from harness.protocol.smtp import MAX_COMMAND_LINE, SessionState, format_reply, in_sequence
from harness.protocol.smtp import codes as R
from harness.protocol.smtp.replies import Reply
from harness.protocol.smtp.server import (
    BadCommandLine,
    Command,
    LineTooLong,
    ReceivedLine,
    ServerParser,
)
from reference_agents.accounts import Account
from reference_agents.config import ProviderConfig
from reference_agents.memory import connection_closed
from reference_agents.serverlog import SMTP_LOG, describe, peer_text, tls_text
from reference_agents.smtpd.connection import Connection
from reference_agents.smtpd.handlers import AuthLineTooLong, Handler
from reference_agents.smtpd.verbs import VERBS

IDENT = "ESMTP mailharness"

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

#: Unrecognised commands after which the session is cut off with 421 (RFC 5321 §7.8).
UNKNOWN_COMMAND_LIMIT = 5

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Listener:
    """How one port behaves."""

    name: str
    starttls: ssl.SSLContext | None  # offered via STARTTLS
    implicit_tls: ssl.SSLContext | None  # TLS from the first byte
    offer_auth: bool
    auth_require_tls: bool
    greeting_554: bool


class SessionTracker:
    """The open sessions of one SMTPServers, so stop() can close them."""

    def __init__(self) -> None:
        self.sessions: set[Session] = set()
        self.stopping = False
        #: Held by every session while quirk mta_one_session_at_a_time is on.
        self.serial = asyncio.Lock()


class Session:
    """One SMTP connection: its state (EHLO name, authenticated account, the open transaction)
    and its verbs. Handlers read and fill in the transaction."""

    def __init__(
        self, handler: Handler, *, listener: Listener, config: ProviderConfig, tracker: SessionTracker
    ) -> None:
        self.handler = handler
        self.listener = listener
        self.config = config
        #: "msa" or "mta": which agent's quirks apply to this session.
        self.agent = "msa" if listener.offer_auth else "mta"
        # RFC 6531: UTF-8 addresses and headers. The quirk advertises SMTPUTF8 (in the EHLO
        # hook) while this session takes ASCII only and refuses them.
        self.utf8 = not (self.agent == "mta" and config.has_quirk("mta_smtputf8_advertised_unsupported"))
        self.parser = ServerParser(utf8=self.utf8)
        self.connection = Connection(self.parser, self._started)
        self._tracker = tracker
        self.size_limit = config.max_message_size or None
        self.errors = 0
        self.auth_failures = 0
        self._unknown_commands = 0
        self._close_after_reply = False
        self._task: asyncio.Task[None] | None = None
        self.starttls_done = False
        # Set by EHLO/HELO; cleared by STARTTLS (RFC 3207 §4.2).
        self.host_name: str | None = None
        self.extended = False
        self.account: Account | None = None
        #: The last reply sent, and why the session ended (both for the server log).
        self.last_reply: Reply | None = None
        self.end_reason = ""
        #: "example.org submission 127.0.0.1:40000": how the server log names this session.
        self.log_name = f"{config.domain} {listener.name}"
        self.reset_transaction()

    def reset_transaction(self) -> None:
        self.mail_from: str | None = None
        self.mail_options: list[str] = []
        self.rcpt_tos: list[str] = []
        self.rcpt_options: list[str] = []
        self.smtp_utf8 = False

    # --- what handlers and quirks ask -------------------------------------------------------

    def quirk(self, name: str) -> bool:
        """True when quirk *name* is on and belongs to this session's agent (msa_/mta_)."""
        return self.config.has_quirk(name) and name.startswith(self.agent + "_")

    def allows(self, name: str) -> bool:
        """True when allowance *name* (reference_agents/allowances.py) is on for this session:
        smtp_ allowances hold for the MSA and the MTA, mx_ ones for the inbound MTA only."""
        return (not name.startswith("mx_") or self.agent == "mta") and self.config.allows(name)

    @property
    def tls_active(self) -> bool:
        return self.connection.tls_active

    @property
    def peer_ip(self) -> str | None:
        peer = self.connection.peer
        return peer[0] if peer else None

    @property
    def state(self) -> SessionState:
        """Where the session is in the command order (harness/protocol/smtp TRANSITIONS)."""
        if self.listener.greeting_554:
            return SessionState.REFUSED
        if self.host_name is None and not self.allows("smtp_mail_before_ehlo"):
            return SessionState.GREETED
        # Allowance smtp_mail_before_ehlo: RFC 5321 §4.1.4 puts the rule on the client ("A
        # session that will contain mail transactions MUST first be initialized by the use of
        # the EHLO command"); this server takes MAIL, RCPT and DATA before any EHLO or HELO.
        if self.rcpt_tos:
            return SessionState.RCPT
        return SessionState.MAIL if self.mail_from is not None else SessionState.READY

    def in_sequence(self, verb: str) -> bool:
        """True when *verb* is in order now (RFC 5321 §4.1.4)."""
        return in_sequence(self.state, verb)

    def close_after_reply(self) -> None:
        """Close the connection once the next reply has been sent."""
        self._close_after_reply = True

    # --- connection bookkeeping -------------------------------------------------------------

    def _started(self, connection: Connection) -> None:
        self.log_name = f"{self.config.domain} {self.listener.name} {peer_text(connection.peer)}"
        if SMTP_LOG.isEnabledFor(20):
            tls = (f" ({tls_text(connection.transport.get_extra_info('ssl_object'))})"
                   if self.listener.implicit_tls is not None and connection.transport else "")
            SMTP_LOG.info("%s connect%s", self.log_name, tls)
        self._tracker.sessions.add(self)
        self._task = asyncio.get_running_loop().create_task(self._run())
        self._task.add_done_callback(self._finished)
        if self._tracker.stopping:
            self.shutdown()

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tracker.sessions.discard(self)
        self.connection.close()
        connection_closed()
        error = None if task.cancelled() else task.exception()
        if error is not None and isinstance(error, Exception) and not isinstance(
                error, ConnectionError | ssl.SSLError | TimeoutError):
            self.handler.handle_exception(error)
            return
        if SMTP_LOG.isEnabledFor(20):
            lost = error or self.connection.lost_error
            reason = self.end_reason or (f"lost: {describe(lost)}" if lost is not None
                                         else "closed by the client")
            SMTP_LOG.info("%s disconnect (%s)", self.log_name, reason)

    def shutdown(self) -> None:
        """Say 421 and close (RFC 5321 §3.8: a server being shut down "SHOULD attempt to send a
        line containing a 421 response code to the SMTP client before exiting")."""
        transport = self.connection.transport
        if transport is not None and not transport.is_closing():
            self.end_reason = "server shutting down"
            reply = R.with_text(R.R421_SHUTTING_DOWN, f"{self.config.hostname} Service shutting down")
            transport.write(reply.raw)
            transport.close()

    def abort(self) -> None:
        self.connection.abort()

    async def wait_closed(self) -> None:
        if self._task is not None:
            await self.connection.wait_closed()
            await asyncio.wait({self._task})

    # --- the session ------------------------------------------------------------------------

    async def _run(self) -> None:
        if self.quirk("mta_one_session_at_a_time"):
            # Breaks RFC 5321 §7.8 (SMTP-HOSTILE-SESSION): one slow client holds the server.
            async with self._tracker.serial:
                await self._serve()
            return
        await self._serve()

    def _one_too_many(self) -> bool:
        """Whether this connection is past its listener's limits (reference_agents/limits.py);
        the session itself is already counted."""
        limits = self.config.connection_limits
        mine = [s for s in self._tracker.sessions if s.listener.name == self.listener.name]
        peer = self.peer_ip
        return (len(mine) > limits.max_connections
                or sum(1 for s in mine if s.peer_ip == peer) > limits.max_connections_per_address)

    async def _serve(self) -> None:
        hostname = self.config.hostname
        if self._one_too_many():
            # RFC 5321 §3.1: "If the SMTP server is unable to accept the connection, it may
            # respond with a 421 reply" — as the greeting, then the close.
            self.end_reason = "refused: too many connections (421)"
            await self.connection.write(
                R.with_text(R.R421_TOO_MANY_CONNECTIONS, f"{hostname} Too many connections, "
                            "try again later").raw)
            return
        if self.listener.greeting_554:
            # Quirk msa_greeting_554 breaks RFC 5321 §4.3.1 (CONNECTION ESTABLISHMENT S: 220):
            # this MSA does serve, yet greets as if refusing the session.
            await self.connection.write(format_reply(554, [f"{hostname} {IDENT}"]))
        else:
            await self.connection.write(R.with_text(R.H220_GREETING, f"{hostname} {IDENT}").raw)
        while not self.connection.closing:
            received = await self.next_input(self._take_command)
            if received is None:
                return
            if isinstance(received, LineTooLong):
                await self.reply(R.R500_COMMAND_TOO_LONG)
            elif isinstance(received, BadCommandLine):
                await self.reply(received.reply)
            else:
                await self._dispatch(received)

    async def next_input(self, take: Callable[[], _T]) -> _T | None:
        """The next thing *take* finds in the input, waiting for more bytes as needed; None once
        the client is gone or idle past SERVER_TIMEOUT (the connection is then closed)."""
        while True:
            if self.connection.ended:
                return None  # nothing more is answered once the client has gone
            found = take()
            if found is not None:
                return found
            if not await self.connection.wait_for_input(SERVER_TIMEOUT):
                if not self.connection.ended:
                    self.end_reason = f"idle for {SERVER_TIMEOUT:.0f} s"
                self.connection.close()
                return None

    def _take_command(self) -> ReceivedLine | None:
        return self.parser.next_command(self._command_limit)

    def _command_limit(self, verb: str) -> int:
        # RFC 1870 §4: MAIL may be SIZE_PARAM_ALLOWANCE longer once SIZE was offered in EHLO.
        if verb == "MAIL" and self.extended and self.size_limit:
            return MAX_COMMAND_LINE + SIZE_PARAM_ALLOWANCE
        return MAX_COMMAND_LINE

    async def _dispatch(self, command: Command) -> None:
        verb = VERBS.get(command.verb)
        if verb is None:
            self._unknown_commands += 1
            if self._unknown_commands >= UNKNOWN_COMMAND_LIMIT:
                # RFC 5321 §3.8: "An SMTP server MUST NOT intentionally close the connection
                # under normal operational circumstances ... except ... After detecting the need
                # to shut down the SMTP service and returning a 421 response code."
                self.close_after_reply()
                await self.reply(R.R421_TOO_MANY_ERRORS)
            elif self.quirk("msa_unknown_command_accepted"):
                # Breaks RFC 5321 §4.2.4: an unrecognised command gets 500, not success.
                await self.reply(R.R250_OK)
            else:
                await self.reply(R.R500_UNKNOWN_COMMAND)
            return
        if self.state is SessionState.REFUSED and command.verb != "QUIT":
            # RFC 5321 §3.1: "A server taking this approach MUST still wait for the client to
            # send a QUIT (see Section 4.1.1.10) before closing the connection and SHOULD
            # respond to any intervening commands with "503 bad sequence of commands"."
            await self.reply(R.R503_REFUSED)
            return
        envelope = (self.mail_from, tuple(self.rcpt_tos)) if command.verb == "DATA" else None
        self.last_reply = None
        try:
            await verb(self, command.argument)
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception as error:
            await self.reply(self.handler.handle_exception(error))
        if SMTP_LOG.isEnabledFor(20):
            self._log_command(command, envelope)

    def _log_command(self, command: Command, envelope: tuple[str | None, tuple[str, ...]] | None
                     ) -> None:
        """One line per command at debug; at info the events a person looks for: AUTH, a
        refused MAIL or RCPT, each DATA's outcome. AUTH's argument (credentials) is left out."""
        reply, verb = self.last_reply, command.verb
        said = (f"{reply.code} {reply.lines[-1]}".rstrip() if reply is not None and reply.lines
                else str(reply.code) if reply is not None else "no reply")
        argument = "" if verb == "AUTH" or not command.argument else " " + command.argument
        if verb == "AUTH":
            mechanism = (command.argument or "").split(" ", 1)[0].upper()
            who = f" as {self.account.username}" if self.account is not None else ""
            SMTP_LOG.info("%s AUTH %s%s: %s", self.log_name, mechanism, who, said)
        elif verb == "DATA" and envelope is not None and reply is not None and reply.code != 354:
            sender, recipients = envelope
            SMTP_LOG.info("%s message <%s> -> %s: %s", self.log_name, sender or "",
                      ", ".join(f"<{r}>" for r in recipients), said)
        elif verb in ("MAIL", "RCPT") and reply is not None and reply.code >= 400:
            SMTP_LOG.info("%s %s%s refused: %s", self.log_name, verb, argument, said)
        elif verb in ("EHLO", "HELO"):
            SMTP_LOG.info("%s %s%s%s", self.log_name, verb, argument,
                          f": {said}" if reply is not None else "")
        else:
            SMTP_LOG.debug("%s %s%s: %s", self.log_name, verb, argument, said)

    # --- replies ----------------------------------------------------------------------------

    async def reply(self, reply: Reply, *, hello: bool = False) -> None:
        """Send *reply*; *hello* marks the answer to EHLO or HELO, which carries no enhanced
        status code (RFC 2034 §3)."""
        if self.connection.closing:
            return  # cut off: nothing more is said
        if reply is R.R500_COMMAND_TOO_LONG and self.quirk("msa_long_command_line_closes"):
            # Breaks RFC 5321 §4.5.3.1.10: limits are "reported by using the reply codes"
            # (500 Line too long) — this server just hangs up.
            self.connection.close()
            return
        self.last_reply = reply
        raw = reply.raw
        if (not hello and reply.klass == 5 and reply.enhanced is not None
                and reply.enhanced.klass == 5 and self.quirk("mta_enhanced_class_mismatch")):
            # Breaks RFC 3463 §2: "The class sub-code ... [is] the same as the first digit of the
            # reply code" for a 5yz reply.
            raw = raw[:4] + b"4" + raw[5:]
        await self.connection.write(raw)
        await self.after_reply(reply.code)

    async def after_reply(self, code: int) -> None:
        if self._close_after_reply:
            self.connection.close()
            return
        if self.quirk("mta_pipelining_flush_input"):
            # Breaks RFC 2920 §3.2: the server "MUST respond to commands in the order they are
            # received from the client" — commands buffered after this one are lost.
            self.parser.discard()
        if code not in R.CLIENT_ERROR_CODES:
            return
        self.errors += 1
        if self.errors < ERROR_LIMIT or self.quirk("msa_no_error_limit"):
            return
        if not self.quirk("msa_error_limit_silent_close"):
            # RFC 5321 §3.8: a server closes on its own only "after detecting the need to shut
            # down the SMTP service and returning a 421 response code".
            await self.connection.write(R.R421_TOO_MANY_ERRORS.raw)
        self.end_reason = f"closed after {self.errors} errors"
        self.connection.close()

    async def challenge(self, text: str) -> bytes | None:
        """Send the AUTH challenge *text* (334, RFC 4954 §4) and return the decoded response;
        None when the client cancelled or the response is no base64 (both answered here)."""
        await self.connection.write(b"334 " + base64.b64encode(text.encode()) + b"\r\n")
        line = await self.next_input(self.parser.next_line)
        if line is None:
            raise ConnectionResetError("client gone during AUTH")
        if isinstance(line, LineTooLong):
            raise AuthLineTooLong()
        blob = line.strip()
        if blob == b"*":
            if self.quirk("msa_auth_cancel_535"):
                # Breaks RFC 4954 §4: on "*" the server "MUST reject the AUTH command by sending
                # a 501 reply".
                await self.reply(R.R535_AUTH_INVALID)
            else:
                await self.reply(R.R501_AUTH_CANCELLED)
            return None
        try:
            return base64.b64decode(blob, validate=True)
        except binascii.Error:
            await self.reply(R.R501_BAD_AUTH_RESPONSE)
            return None

    def helo_needed(self) -> bool:
        """True (before any EHLO or HELO) when MAIL, RCPT, DATA and AUTH get 503."""
        return self.state is SessionState.GREETED

