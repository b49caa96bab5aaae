"""IMAP commands of the not-authenticated state (RFC 9051 §6.2): STARTTLS, LOGIN, AUTHENTICATE."""

from __future__ import annotations

import asyncio
import ssl

from harness.protocol import sasl
from harness.protocol.imap.commands import Authenticate, Command, Login
from harness.protocol.imap.formatting import format_continuation, format_tagged
from harness.protocol.imap.state import Transition
from reference_agents.accounts import Account
from reference_agents.imapd.cmd_auth import ensure_special_mailboxes
from reference_agents.imapd.context import HandlerContext
from reference_agents.imapd.state import MAX_AUTH_FAILURES, Handler, Result

_MAX_FAILURE_DELAY = 2.0


def _result(status: str, text: str, code: str | None = None) -> Result:
    return Result(status, text, code)


async def starttls(s: HandlerContext, cmd: Command) -> Result | None:
    if s.config.has_quirk("imap_no_starttls") or not s.config.tls:  # quirk, or no TLS at all
        return _result("BAD", "STARTTLS not supported")
    if s.conn.tls:
        return _result("BAD", "TLS already active")
    s.write(format_tagged(cmd.tag, "OK", "Begin TLS negotiation now"))
    await s.flush()
    # RFC 9051 §6.2.1: "the server MUST discard any data that arrives before the TLS
    # negotiation is complete" — here, anything the client pipelined after STARTTLS.
    s.reader.discard_pending()
    try:
        await s.conn.start_tls(s.config.server_tls)
    except (ssl.SSLError, ConnectionError, OSError, TimeoutError):
        s.advance(Transition.LOGOUT)
        s.conn.abort()
    return None


def _peer(s: HandlerContext) -> str:
    transport = s.conn.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    return str(peer[0]) if peer else "unknown"


async def _throttled(s: HandlerContext, user: str) -> Result | None:
    """The provider-wide throttle (reference_agents/limits.py): wait as long as this address's
    recent failures ask, or refuse the attempt for now, as a temporary failure. RFC 5530 §3:
    UNAVAILABLE, "Temporary failure because a subsystem is down" — try again later."""
    if s.config.has_quirk("imap_no_auth_delay"):  # quirk: no delay, and no throttle either
        return None
    verdict = s.config.auth_throttle.before(_peer(s), user)
    if verdict.refuse:
        return _result("NO", "too many failed authentications from here; try again later",
                       "UNAVAILABLE")
    if verdict.wait:
        await asyncio.sleep(verdict.wait)
    return None


async def _verify(s: HandlerContext, user: str, password: str) -> Account | None:
    account = await asyncio.to_thread(s.config.accounts.verify, user, password)
    if account is None and s.config.has_quirk("imap_accept_any_password"):
        # quirk: any password works for a known user
        account = s.config.accounts.by_username(user)
    return account


async def _authenticated(s: HandlerContext, account: Account, what: str) -> Result:
    s.user = account.username
    s.auth_failures = 0
    s.config.auth_throttle.succeeded(_peer(s))
    s.advance(Transition.AUTHENTICATE)
    await asyncio.to_thread(ensure_special_mailboxes, s)
    return _result("OK", f"{what} completed", "CAPABILITY " + " ".join(s.capabilities()))


async def _failed(s: HandlerContext, cmd: Command, user: str | None) -> Result | None:
    s.auth_failures += 1
    s.config.auth_throttle.failed(_peer(s), user)
    if not s.config.has_quirk("imap_no_auth_delay"):  # quirk: failures answered at once
        # RFC 9051 §11.7: "A server SHOULD have mechanisms in place to limit or delay failed
        # AUTHENTICATE/LOGIN attempts."
        await asyncio.sleep(min(s.auth_failure_delay * s.auth_failures, _MAX_FAILURE_DELAY))
    failed = _result("NO", "authentication failed", "AUTHENTICATIONFAILED")
    if s.auth_failures < MAX_AUTH_FAILURES:
        return failed
    # The last failure the connection takes: the command is answered (its tagged NO) before
    # the server says BYE and closes (RFC 9051 §3.4: BYE, then the connection is closed).
    s.write(format_tagged(cmd.tag, failed.status, failed.text, failed.code))
    s.untagged("BYE", "too many authentication failures")
    s.advance(Transition.LOGOUT)
    return None


async def login(s: HandlerContext, cmd: Command) -> Result | None:
    assert isinstance(cmd.args, Login)
    if s.login_disabled():
        # RFC 9051 §6.2.3: LOGINDISABLED — "the server ... MUST reject" LOGIN with NO.
        return _result("NO", "LOGIN needs TLS: use STARTTLS first", "PRIVACYREQUIRED")
    user = cmd.args.user
    if s.config.has_quirk("imap_login_broken"):  # quirk: LOGIN always fails
        return await _failed(s, cmd, user)
    refused = await _throttled(s, user)
    if refused is not None:
        return refused
    account = await _verify(s, user, cmd.args.password)
    if account is None:
        return await _failed(s, cmd, user)
    return await _authenticated(s, account, "LOGIN")


async def authenticate(s: HandlerContext, cmd: Command) -> Result | None:
    assert isinstance(cmd.args, Authenticate)
    if cmd.args.mechanism != "PLAIN":
        return _result("NO", "unsupported mechanism", "CANNOT")
    if s.login_disabled():
        return _result("NO", "AUTHENTICATE PLAIN needs TLS", "PRIVACYREQUIRED")
    response = cmd.args.initial_response
    if s.config.has_quirk("imap_sasl_ir_ignored"):  # quirk: the initial response is dropped
        response = None
    if response is None:
        s.write(format_continuation(""))
        await s.flush()
        line = await s.read_line()
        if line is None:
            s.advance(Transition.LOGOUT)
            return _result("BAD", "connection closed")
        # RFC 9051 §6.2.2: "If the server receives such a response ["*"], it MUST reject the
        # AUTHENTICATE command by sending a tagged BAD response."
        if line == b"*":
            if s.config.has_quirk("imap_auth_cancel_not_bad"):  # quirk: NO, not BAD
                return _result("NO", "authentication cancelled")
            return _result("BAD", "authentication cancelled")
        response = line.decode("ascii", "replace")
    try:
        authzid, authcid, password = sasl.parse_plain_message(
            sasl.decode_initial_response(response))
    except ValueError:
        return _result("BAD", "malformed PLAIN response")
    if authzid and authzid != authcid:
        return _result("NO", "cannot act as another user", "AUTHORIZATIONFAILED")
    refused = await _throttled(s, authcid)
    if refused is not None:
        return refused
    account = await _verify(s, authcid, password)
    if account is None:
        return await _failed(s, cmd, authcid)
    return await _authenticated(s, account, "AUTHENTICATE")


COMMANDS: dict[str, Handler] = {
    "STARTTLS": starttls,
    "LOGIN": login,
    "AUTHENTICATE": authenticate,
}
