"""One IMAP session: connection state (RFC 9051 §3), the single command dispatcher, I/O helpers."""

from __future__ import annotations

import asyncio
import bisect
import logging
import re
import ssl

from harness.protocol.imap.commands import (
    COMMAND_NAMES,
    Append,
    Command,
    CommandReader,
    Event,
    InvalidCommand,
    LiteralTooLarge,
    Login,
    MailboxArg,
    NeedContinuation,
    parse_command,
)
from harness.protocol.imap.formatting import (
    format_continuation,
    format_tagged,
    format_untagged,
)
from harness.protocol.imap.lexer import INVALID_UTF8
from harness.protocol.imap.state import State, Transition, next_state
from reference_agents.config import ProviderConfig
from reference_agents.imapd import (
    cmd_any,
    cmd_append,
    cmd_auth,
    cmd_compress,
    cmd_nonauth,
    cmd_notify,
    cmd_quota,
    cmd_search,
    cmd_selected,
    cmd_sort,
    names,
)
from reference_agents.imapd.connection import Connection
from reference_agents.imapd.selected import SelectedMailbox
from reference_agents.imapd.state import Handler, Result
from reference_agents.mailstore import MailStore, MailStoreError, StorageError
from reference_agents.serverlog import IMAP_LOG, describe, peer_text, tls_text

_log = logging.getLogger(__name__)

#: RFC 9051 §5.4: "If a server has an inactivity autologout timer that applies to sessions
#: after authentication, the duration of that timer MUST be at least 30 minutes."
AUTOLOGOUT_SECONDS = 30 * 60.0

#: Before authentication only small literals (user names, passwords) are accepted, so that an
#: anonymous client cannot make the server buffer a whole message.
UNAUTHENTICATED_MAX_LITERAL = 16 * 1024

#: Longest command line accepted (RFC 9051 §11.7: protection against denial of service).
MAX_LINE = 65536

#: Commands during which an untagged EXPUNGE must not be sent (RFC 9051 §7.5.1: "An EXPUNGE
#: response MUST NOT be sent when no command is in progress, nor while responding to a FETCH,
#: STORE, or SEARCH command."); RFC 5256 §3: "Untagged EXPUNGE responses are not permitted
#: while the server is responding to a SORT command" (THREAD likewise).
_NO_EXPUNGE_DURING = frozenset({"FETCH", "STORE", "SEARCH", "SORT", "THREAD"})

#: Allowance imap_late_exists: the commands that look for new messages as they run. The polls
#: (RFC 9051 §6.1.2: NOOP "can be used as a periodic poll for new messages"), SELECT/EXAMINE,
#: and the commands that add messages to the selected mailbox themselves (§6.3.12: "the server
#: SHOULD notify the client immediately via an untagged EXISTS response").
_LOOK_AT_ONCE = frozenset({"NOOP", "CHECK", "IDLE", "SELECT", "EXAMINE", "APPEND", "COPY", "MOVE"})


#: Commands of the authenticated state that the selected state does not take. RFC 5161 §3.1:
#: "The ENABLE command is only valid in the authenticated state, before any mailbox is
#: selected."
_AUTHENTICATED_ONLY = frozenset({"ENABLE"})


def _handlers() -> dict[State, dict[str, Handler]]:
    """The one table of which command each state takes: a command missing from a state's
    table gets BAD from the dispatcher."""
    authenticated = {**cmd_any.COMMANDS, **cmd_auth.COMMANDS, **cmd_append.COMMANDS,
                     **cmd_compress.COMMANDS, **cmd_notify.COMMANDS,
                     **cmd_quota.COMMANDS}
    selected = {**authenticated, **cmd_selected.COMMANDS, **cmd_search.COMMANDS,
                **cmd_sort.COMMANDS}
    return {
        State.NOT_AUTHENTICATED: {**cmd_any.COMMANDS, **cmd_nonauth.COMMANDS},
        State.AUTHENTICATED: authenticated,
        State.SELECTED: {k: v for k, v in selected.items() if k not in _AUTHENTICATED_ONLY},
        State.LOGOUT: {},
    }


class Session:
    """The state of one client connection, and the loop that serves it."""

    def __init__(self, *, config: ProviderConfig, store: MailStore, conn: Connection,
                 autologout: float = AUTOLOGOUT_SECONDS,
                 auth_failure_delay: float = 0.2) -> None:
        self.config = config
        self.store = store
        self.conn = conn
        self.autologout = autologout
        #: Seconds of delay per failed authentication so far (slows down password guessing).
        self.auth_failure_delay = auth_failure_delay
        # quirk imap_no_line_limit: a line is buffered whatever its length
        max_line = 1 << 40 if config.has_quirk("imap_no_line_limit") else MAX_LINE
        self.reader = CommandReader(max_line=max_line, max_literal=UNAUTHENTICATED_MAX_LITERAL)
        self.state = State.NOT_AUTHENTICATED
        self.user: str | None = None
        self.selected: SelectedMailbox | None = None
        self.rev2 = False  # ENABLE IMAP4rev2 (RFC 9051 §6.3.1)
        #: The client has sent a CONDSTORE enabling command (RFC 7162 §3.1): FETCH responses
        #: that carry FLAGS carry MODSEQ too from now on.
        self.condstore = False
        #: The client has sent ENABLE QRESYNC (RFC 7162 §3.2.3): expunges are announced as
        #: VANISHED, and SELECT (QRESYNC) and UID FETCH (VANISHED) are allowed.
        self.qresync = False
        #: The client has sent ENABLE UTF8=ACCEPT (RFC 6855 §3): UTF-8 in quoted strings both
        #: ways, mailbox names in UTF-8, messages with UTF-8 header fields as they are.
        self.utf8 = False
        #: NOTIFY SET in force (RFC 5465): what the session tells between commands.
        self.notify: cmd_notify.NotifyState | None = None
        self.auth_failures = 0
        #: BAD responses sent so far (allowance imap_bye_after_five_bad ends the session at 5).
        self.bad_responses = 0
        #: Quirk imap_size_changes: toggles with every RFC822.SIZE sent.
        self.size_flip = 0
        #: Quirk imap_idle_slow: when IDLE next looks for changes (event loop time).
        self.idle_next_look = 0.0
        #: Allowance imap_late_exists: the highest UID of the selected mailbox when the session
        #: last looked for new messages (None: it has not looked since selecting).
        self.looked_upto: int | None = None
        #: Quirk imap_searchres_kept_over_select: the "$" of the mailbox selected before.
        self.kept_search_result: frozenset[int] = frozenset()
        self._handlers = _handlers()
        #: "example.net imap 127.0.0.1:40000": how the server log names this session.
        self.log_name = config.domain
        self.logged_out = False

    # -- state ---------------------------------------------------------------------------------

    def advance(self, transition: Transition) -> None:
        if self.config.has_quirk("imap_searchres_kept_over_select"):
            # quirk: "$" survives the end of the selection, into the next mailbox selected
            if self.selected is not None and transition is Transition.DESELECT:
                self.kept_search_result = self.selected.search_result
            elif self.selected is not None and transition is Transition.SELECT:
                self.selected.search_result = self.kept_search_result
        if self.selected is not None and transition is Transition.SELECT:
            # quirk imap_searchres_empty_bad: an empty "$" makes FETCH, STORE, COPY BAD
            self.selected.empty_search_result_bad = self.config.has_quirk(
                "imap_searchres_empty_bad")
        self.state = next_state(self.state, transition)
        if self.state is not State.NOT_AUTHENTICATED:
            self.reader.max_literal = max(self.config.max_message_size,
                                          UNAUTHENTICATED_MAX_LITERAL)
        if self.state is not State.SELECTED:
            self.selected = None

    def login_disabled(self) -> bool:
        """RFC 9051 §6.2.3: "A server implementation MUST implement a configuration in which it
        does not permit any plaintext password mechanisms, unless the STARTTLS command has been
        negotiated or some other mechanism that protects the session from password snooping has
        been provided." """
        if self.config.has_quirk("imap_login_in_clear"):  # quirk: LOGIN in clear text
            return False
        return self.config.login_disabled_without_tls and not self.conn.tls

    def capabilities(self) -> list[str]:
        caps = ["IMAP4rev1", "IMAP4rev2"]
        if self.state is State.NOT_AUTHENTICATED:
            if not self.conn.tls and self.config.tls and not self.config.has_quirk("imap_no_starttls"):
                caps.append("STARTTLS")
            if self.login_disabled():
                # RFC 9051 §6.2.3: LOGINDISABLED, and no plaintext mechanism advertised.
                caps.append("LOGINDISABLED")
            else:
                caps.append("AUTH=PLAIN")
        caps += ["SASL-IR", "LITERAL+", "ENABLE", "ID", "IDLE", "NAMESPACE", "UNSELECT",
                 "UIDPLUS", "MOVE", "SPECIAL-USE", "CHILDREN", "CONDSTORE", "QRESYNC", "BINARY",
                 "LIST-EXTENDED", "LIST-STATUS", "STATUS=SIZE"]
        # SORT, THREAD, ESORT
        caps += ["SORT", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES", "ESORT"]
        # ESEARCH, SEARCHRES, WITHIN, CONTEXT=SEARCH
        caps += ["ESEARCH", "SEARCHRES", "WITHIN", "CONTEXT=SEARCH", "CONTEXT=SORT"]
        # MULTIAPPEND, CATENATE
        caps += ["MULTIAPPEND", "CATENATE"]
        # QUOTA, OBJECTID, PREVIEW, CREATE-SPECIAL-USE
        caps += [*cmd_quota.capabilities(self), "OBJECTID", "PREVIEW", "CREATE-SPECIAL-USE"]
        # UTF8=ACCEPT, COMPRESS=DEFLATE, NOTIFY
        caps += ["UTF8=ACCEPT", "COMPRESS=DEFLATE", "NOTIFY"]
        return caps

    # -- output --------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        self.conn.write(data)

    async def flush(self) -> None:
        await self.conn.drain()

    def untagged(self, keyword: str, text: str = "", code: str | None = None) -> None:
        self.write(format_untagged(keyword, text, code))

    # -- input ---------------------------------------------------------------------------------

    async def receive(self, seconds: float) -> bool:
        """Wait for input and feed it to the reader; False at end of input. TimeoutError after
        *seconds* without any."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            self.conn.wakeup.clear()
            data = self.conn.take()
            if data:
                self.reader.feed(data)
                return True
            if self.conn.eof:
                return False
            if self.notify is not None:
                # RFC 5465 §3.1: "the client listens for event notifications all the time (even
                # when no command is in progress)": look at the store on every wakeup and poll.
                await self._notify_between_commands(deadline)
                continue
            async with asyncio.timeout_at(deadline):
                await self.conn.wakeup.wait()

    def notify_push(self) -> None:
        """NOTIFY (RFC 5465): tell what changed since the session last looked."""
        cmd_notify.push(self)

    async def _notify_between_commands(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        poll = max(self.config.idle_poll_interval, 0.01)
        if loop.time() >= deadline:
            raise TimeoutError
        try:
            async with asyncio.timeout(min(poll, deadline - loop.time())):
                await self.conn.wakeup.wait()
        except TimeoutError:
            pass
        if self.state is State.SELECTED or self.state is State.AUTHENTICATED:
            cmd_notify.push(self)
            await self.flush()

    async def wait_wakeup(self, seconds: float) -> bool:
        """Wait until data, end of input or a store change, at most *seconds*; feed
        what came. False at end of input."""
        if not self.conn.wakeup.is_set():
            try:
                async with asyncio.timeout(seconds):
                    await self.conn.wakeup.wait()
            except TimeoutError:
                pass
        self.conn.wakeup.clear()
        data = self.conn.take()
        if data:
            self.reader.feed(data)
        return not (self.conn.eof and not data)

    async def read_line(self) -> bytes | None:
        """One raw line (AUTHENTICATE responses), None at end of input."""
        while True:
            line = self.reader.next_line()
            if line is not None:
                return line
            if not await self.receive(self.idle_limit()):
                return None

    def idle_limit(self) -> float:
        """Seconds of silence before autologout. RFC 9051 §5.4: "If a server has an inactivity
        autologout timer that applies to sessions after authentication, the duration of that
        timer MUST be at least 30 minutes"; before authentication a shorter one is allowed, and
        keeps idle unauthenticated connections from piling up."""
        if self.state is State.NOT_AUTHENTICATED:
            return min(self.autologout, self.config.connection_limits.preauth_timeout)
        return self.autologout

    def store_changed(self, user: str, mailbox: str) -> None:
        """Called on the event loop when the store reports a change."""
        if user == self.user:
            self.conn.wakeup.set()

    def enable_condstore(self) -> None:
        """A CONDSTORE enabling command (RFC 7162 §3.1). "A first CONDSTORE enabling command
        executed in the session with a mailbox selected MUST cause the server to return
        HIGHESTMODSEQ ... for the mailbox"."""
        if self.condstore:
            return
        self.condstore = True
        if self.selected is not None and self.user is not None:
            try:
                highest = self.store.version(self.user, self.selected.name)
            except KeyError:
                return
            self.untagged("OK", "mod-sequences", code=f"HIGHESTMODSEQ {highest}")

    # -- selected mailbox ----------------------------------------------------------------------

    def sync_selected(self, *, allow_expunge: bool, force: bool = False,
                      announce_upto: int | None = None, report_flags: bool = True) -> None:
        """Tell the client what changed in its selected mailbox (EXISTS, EXPUNGE, FLAGS); with
        *announce_upto*, new messages above that UID wait for a later sync; without
        *report_flags*, flag changes wait too."""
        sel = self.selected
        if sel is None or self.user is None:
            return
        try:
            version = self.store.version(self.user, sel.name)
            if version == sel.version and not force:
                return
            current = self.store.messages(self.user, sel.name)
        except KeyError:
            # The mailbox was deleted under us: RFC 9051 §6.3.4 leaves it to the server; end
            # the session's view of it.
            self.untagged("BYE", "selected mailbox was deleted")
            self.advance(Transition.LOGOUT)
            return
        # quirk imap_flags_not_shared: flag changes made elsewhere are never reported
        share = report_flags and not self.config.has_quirk("imap_flags_not_shared")
        known = sel.uids[-1] if sel.uids else 0
        before = list(sel.uids)
        # RFC 7162 §3.2.10.2: after ENABLE QRESYNC, VANISHED "instead of the EXPUNGE response"
        # (quirk imap_qresync_sends_expunge: EXPUNGE all the same)
        vanished = self.qresync and not self.config.has_quirk("imap_qresync_sends_expunge")
        lines = list(sel.sync(current, version, allow_expunge=allow_expunge, report_flags=share,
                              modseq=self.condstore, vanished=vanished,
                              announce_upto=announce_upto,
                              flags_with_uid=cmd_notify.flag_changes_with_uid(self)))
        # RFC 5267 §4.3: the updating searches hear of it with the responses of the change.
        removals, additions = cmd_search.context_updates(self, before)
        lines = [*removals, *lines, *additions]
        new = sel.uids[bisect.bisect_right(sel.uids, known):]
        if new and self.config.has_quirk("imap_fetch_before_exists"):
            # Breaks RFC 9051 §2.3.1.2 (IMAP-SEQ-UID-STABLE): a new message's FETCH uses its
            # sequence number before the EXISTS that announces it.
            present = {m.uid: m for m in current}
            for line in sel.describe([present[u] for u in new if u in present], modseq=self.condstore):
                self.write(line)
        for line in lines:
            self.write(line)
        if new and sel.recent is not None:
            # RFC 3501 §2.3.2: this session is the first to be told of them, so they are
            # \Recent here and nowhere else.
            try:
                above = self.take_recent(sel.name, sel.read_only, new[-1])
            except KeyError:
                return  # deleted meanwhile: the next sync ends the selection
            self.write(sel.mark_recent(new, above))
        if new and self.config.allows("imap_late_exists"):
            # Allowance imap_late_exists: each new message's UID and flags follow its EXISTS, in
            # a FETCH response sent "by a unilateral server decision" (RFC 9051 §7.5.2).
            present = {m.uid: m for m in current}
            for line in sel.describe([present[u] for u in new if u in present],
                                     modseq=self.condstore):
                self.write(line)

    def take_recent(self, name: str, read_only: bool, upto: int) -> int:
        """The mailbox's recent mark: messages above it are \\Recent in this session, which has
        just been told of those up to *upto*. A read-write selection moves the mark to *upto*,
        so no later session sees them as recent; EXAMINE never does (RFC 3501 §6.3.2: "EXAMINE
        MUST NOT cause messages to lose the \\Recent flag")."""
        assert self.user is not None
        if self.config.has_quirk("imap_recent_never"):
            return upto  # quirk: the server keeps no recent state; nothing is ever \Recent
        if read_only:
            claim = self.config.has_quirk("imap_examine_claims_recent")
        else:
            # quirk imap_recent_not_claimed: every session sees a new message as \Recent
            claim = not self.config.has_quirk("imap_recent_not_claimed")
        return self.store.take_recent(self.user, name, upto=upto if claim else None)

    def _announce_upto(self, command: str) -> int | None:
        """Allowance imap_late_exists: the highest UID *command* may announce as new. The
        session looks for new messages between commands; one found there is announced after
        the responses of the next command, which were computed over the messages the session
        knew (a SEARCH, then the EXISTS, then the tagged OK). RFC 9051 §5.2 obliges a server to
        send size updates "if a mailbox size change is observed during the processing of a
        command"; one observed while no command is in progress may be sent then (§5.3), or
        with the next command's responses. None: no limit."""
        if command in _LOOK_AT_ONCE or not self.config.allows("imap_late_exists"):
            return None
        return self.looked_upto

    def _look_for_new_messages(self) -> None:
        """Allowance imap_late_exists: after a command, note the selected mailbox's highest UID
        (what the next command may announce)."""
        if not self.config.allows("imap_late_exists"):
            return
        sel = self.selected
        self.looked_upto = None
        if sel is None or self.user is None:
            return
        try:
            current = self.store.messages(self.user, sel.name)
        except KeyError:
            return  # deleted meanwhile: the next sync ends the selection
        self.looked_upto = current[-1].uid if current else 0

    # -- the loop ------------------------------------------------------------------------------

    async def run(self) -> None:
        transport = self.conn.transport
        kind = "imaps" if self.conn.tls else "imap"
        self.log_name = (f"{self.config.domain} {kind} "
                         f"{peer_text(transport.get_extra_info('peername') if transport else None)}")
        if IMAP_LOG.isEnabledFor(logging.INFO):
            tls = (f" ({tls_text(transport.get_extra_info('ssl_object'))})"
                   if self.conn.tls and transport else "")
            IMAP_LOG.info("%s connect%s", self.log_name, tls)
        ended = "closed by the client"
        try:
            caps = " ".join(self.capabilities())
            self.untagged("OK", f"{self.config.hostname} IMAP4rev1 IMAP4rev2 ready",
                          code=f"CAPABILITY {caps}")
            while self.state is not State.LOGOUT:
                if self.conn.closed:
                    # The client has gone: the commands it pipelined before it went are not
                    # run, nobody would read their answers.
                    break
                event = self.reader.next_event()
                if event is None:
                    if not await self.receive(self.idle_limit()):
                        break
                    continue
                await self.handle(event)
                await self.flush()
            if self.state is State.LOGOUT:
                ended = "LOGOUT" if self.logged_out else "BYE"
        except TimeoutError:
            ended = "autologout: idle for too long"
            self.untagged("BYE", "autologout: idle for too long")
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            ended = f"lost: {describe(exc)}"
        finally:
            IMAP_LOG.info("%s disconnect (%s)", self.log_name, ended)
            if self.config.has_quirk("imap_append_partial"):
                self._store_partial_append()
            self.state = State.LOGOUT
            self.selected = None
            self.conn.close()

    def _store_partial_append(self) -> None:
        """Quirk imap_append_partial: store what an interrupted APPEND had sent (RFC 9051
        §6.3.12: "no partial appending is permitted")."""
        pending = self.reader.pending_command()
        m = re.search(rb"\{(\d+)\+?\}\r\n", pending)
        if m is None or self.user is None or self.state is State.NOT_AUTHENTICATED:
            return
        body = pending[m.end():]
        head = pending[: m.start()] + b"{%d}\r\n" % len(body)
        cmd = parse_command(head + body)
        if isinstance(cmd, Command) and isinstance(cmd.args, Append) and body:
            try:
                self.store.append(self.user, cmd.args.mailbox, body, cmd.args.flags)
            except (KeyError, ValueError, OSError):
                pass

    def shutdown(self) -> None:
        """Server stopping: say BYE and close (RFC 9051 §7.1.5)."""
        if self.state is not State.LOGOUT:
            self.untagged("BYE", "server shutting down")
        self.state = State.LOGOUT
        self.conn.close()

    async def handle(self, event: Event) -> None:
        if isinstance(event, NeedContinuation):
            # RFC 9051 §4.3: the client waits for a command continuation request before
            # sending the octets of a synchronizing literal.
            self.write(format_continuation("Ready for literal data"))
        elif isinstance(event, InvalidCommand):
            if self.config.has_quirk("imap_unknown_command_bye"):  # quirk: BYE, not BAD
                self.untagged("BYE", "bad command")
                self.advance(Transition.LOGOUT)
                return
            if (event.reason == INVALID_UTF8 and event.tag is not None
                    and self.config.has_quirk("imap_utf8_invalid_no")):
                # quirk: malformed UTF-8 answered NO, not BAD (RFC 6855 §3)
                self.write(format_tagged(event.tag, "NO", "not UTF-8"))
                return
            self._bad(event.tag, event.reason)
        elif isinstance(event, LiteralTooLarge):
            if not event.non_synchronizing and self.config.has_quirk("imap_toobig_reads_literal"):
                self.write(format_continuation("go ahead"))  # quirk: asks for the octets
            # RFC 7888 §4 / RFC 9051 §7.1: refused before its octets are read.
            # RFC 9051 §7.1 TOOBIG; RFC 7888 §4 for a refused non-synchronizing literal.
            status = "BAD" if event.non_synchronizing else "NO"
            if status == "BAD" or event.tag is None:
                self.bad_responses += 1
            if event.tag is None:
                self.untagged("BAD", "literal too large", code="TOOBIG")
            else:
                self.write(format_tagged(event.tag, status, "literal too large", code="TOOBIG"))
        else:
            cmd_notify.push(self)
            await self.dispatch(event)
            self._look_for_new_messages()
        self._end_after_bad_commands()

    def _end_after_bad_commands(self) -> None:
        """Allowance imap_bye_after_five_bad: after the fifth BAD the server ends the session
        with BYE, a defence against a client that keeps sending garbage (RFC 9051 §3.4: the
        logout state can be entered "by unilateral action on the part of ... the server"; "A
        server SHOULD NOT unilaterally close the connection without first sending an untagged
        BYE response that contains the reason for doing so.")."""
        if (self.bad_responses >= 5 and self.state is not State.LOGOUT
                and self.config.allows("imap_bye_after_five_bad")):
            self.untagged("BYE", "too many bad commands")
            self.advance(Transition.LOGOUT)

    def _bad(self, tag: str | None, reason: str) -> None:
        self.bad_responses += 1
        if tag is None:
            self.untagged("BAD", reason)
        else:
            self.write(format_tagged(tag, "BAD", reason))

    def _log_command(self, cmd: Command, result: Result) -> None:
        """Logins and selections at info; at debug every command (never a password)."""
        code = result.code if result.code and not result.code.startswith("CAPABILITY") else ""
        said = f"{result.status}{f' [{code}]' if code else ''}"
        name, args = cmd.name, cmd.args
        if name in ("LOGIN", "AUTHENTICATE"):
            user = args.user if isinstance(args, Login) else (self.user or "")
            how = "LOGIN" if isinstance(args, Login) else f"AUTHENTICATE {getattr(args, 'mechanism', '')}"
            IMAP_LOG.info("%s %s %s: %s", self.log_name, how, user, said)
        elif name in ("SELECT", "EXAMINE") and isinstance(args, MailboxArg):
            IMAP_LOG.info("%s %s %s %s: %s", self.log_name, self.user, name, args.mailbox, said)
        elif name == "STARTTLS":
            transport = self.conn.transport
            IMAP_LOG.info("%s STARTTLS: %s", self.log_name,
                          said if result.status != "OK" or transport is None else
                          f"OK, {tls_text(transport.get_extra_info('ssl_object'))}")
        elif IMAP_LOG.isEnabledFor(logging.DEBUG):
            IMAP_LOG.debug("%s %s: %s", self.log_name, name, said)

    async def dispatch(self, cmd: Command) -> None:
        """The one place that rejects commands not valid in the current state."""
        if cmd.name == "LOGOUT":
            self.logged_out = True
        handler = self._handlers[self.state].get(cmd.name)
        if handler is None:
            if cmd.name in COMMAND_NAMES:
                self._bad(cmd.tag, f"{cmd.name} not allowed in {self.state.value} state")
            else:
                self._bad(cmd.tag, f"unknown command {cmd.name}")
            return
        if self.reader.last_had_non_sync_literal and self.config.has_quirk(
                "imap_literal_plus_refused"):
            self._bad(cmd.tag, "non-synchronizing literals not accepted")  # quirk
            return
        named = names.resolve(self, cmd)
        try:
            result = named if isinstance(named, Result) else await handler(self, named)
        except MailStoreError as exc:
            # The one place a store error becomes a response: its RFC 5530 code and text.
            if isinstance(exc, StorageError):
                _log.exception("storage failure in %s", cmd.name)
            result = Result("NO", exc.reason(), exc.response_code)
        except (ConnectionError, ssl.SSLError, TimeoutError):
            raise
        except Exception:
            _log.exception("internal error in %s", cmd.name)
            result = Result("NO", "internal error", "SERVERBUG")
        # RFC 5465 §5: "The server SHOULD omit notifying the client if the event is caused by
        # this client": what the command changed is known before its completion goes out.
        cmd_notify.absorb(self)
        if result is None:
            return
        if cmd.name == "NOOP" and self.config.has_quirk("imap_noop_no_updates"):
            pass  # quirk: NOOP reports nothing
        elif self.state is State.SELECTED:
            base = cmd.name.removeprefix("UID ")
            allow = cmd.name.startswith("UID ") or base not in _NO_EXPUNGE_DURING
            self.sync_selected(allow_expunge=allow, announce_upto=self._announce_upto(base))
        if self.state is State.LOGOUT and cmd.name != "LOGOUT":
            return
        if result.status == "BAD":
            self.bad_responses += 1
        if IMAP_LOG.isEnabledFor(logging.INFO):
            self._log_command(cmd, result)
        self.write(format_tagged(cmd.tag, result.status, result.text, result.code))
