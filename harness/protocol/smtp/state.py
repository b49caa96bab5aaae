"""The SMTP command-order state machine (RFC 5321 §4.1.4) and the legal replies per command, for both roles."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

from harness.protocol import diagrams
from harness.protocol.errors import LocalProtocolError
from harness.protocol.smtp.replies import (
    C220_READY,
    C354_START_DATA,
    C421_SERVICE_UNAVAILABLE,
    C554_TRANSACTION_FAILED,
)

# ---------------------------------------------------------------------------------------------
# Command order (RFC 5321 §3.3, §4.1.4; RFC 3207 §4.2)
# ---------------------------------------------------------------------------------------------


class SessionState(enum.Enum):
    CONNECTED = "connected, before the greeting"
    GREETED = "greeted, before EHLO/HELO"
    REFUSED = "greeting was 554: only QUIT"
    READY = "after EHLO/HELO, no transaction"
    MAIL = "MAIL accepted"
    RCPT = "at least one RCPT accepted"
    DATA = "after 354, sending mail data"
    CLOSED = "closed"


class SessionEvent(enum.Enum):
    GREETING_OK = "220 greeting"
    GREETING_REFUSED = "554 greeting"
    HELLO_OK = "EHLO/HELO accepted"
    MAIL_OK = "MAIL accepted"
    RCPT_OK = "RCPT accepted"
    DATA_START = "DATA answered 354"
    DATA_END = "reply to end of data"
    RSET_OK = "RSET accepted"
    STARTTLS_OK = "STARTTLS answered 220"
    QUIT = "QUIT answered 221"
    REJECTED = "command rejected"
    NEUTRAL = "accepted, no state change (NOOP, VRFY, EXPN, HELP, AUTH)"
    CONNECTION_CLOSED = "421 or connection lost"


Event = SessionEvent

_S = SessionState
_E = SessionEvent
_SESSION = (_S.GREETED, _S.READY, _S.MAIL, _S.RCPT)
_ALL_OPEN = (_S.CONNECTED, _S.GREETED, _S.REFUSED, _S.READY, _S.MAIL, _S.RCPT, _S.DATA)


def _build_transitions() -> dict[tuple[SessionState, SessionEvent], SessionState]:
    table: dict[tuple[SessionState, SessionEvent], SessionState] = {
        (_S.CONNECTED, _E.GREETING_OK): _S.GREETED,
        # RFC 5321 §3.1: after a 554 greeting the server "MUST wait for the client to send a QUIT
        # before closing the connection and SHOULD respond to any intervening commands with
        # '503 bad sequence of commands'".
        (_S.CONNECTED, _E.GREETING_REFUSED): _S.REFUSED,
        (_S.REFUSED, _E.REJECTED): _S.REFUSED,
        (_S.REFUSED, _E.QUIT): _S.CLOSED,
        (_S.MAIL, _E.RCPT_OK): _S.RCPT,
        (_S.RCPT, _E.RCPT_OK): _S.RCPT,
        (_S.READY, _E.MAIL_OK): _S.MAIL,
        (_S.RCPT, _E.DATA_START): _S.DATA,
        # RFC 5321 §4.1.1.4: after the end of mail data the transaction is over, whatever the
        # reply.
        (_S.DATA, _E.DATA_END): _S.READY,
        # RFC 3207 §4.2: "the client MUST discard any knowledge obtained from the server ...
        # The client SHOULD send an EHLO command as the first command after a successful TLS
        # negotiation."
        (_S.GREETED, _E.STARTTLS_OK): _S.GREETED,
        (_S.READY, _E.STARTTLS_OK): _S.GREETED,
        # RFC 3207 §4.2: after TLS "the SMTP server MUST discard any knowledge obtained from the
        # client" — a transaction in progress is gone too.
        (_S.MAIL, _E.STARTTLS_OK): _S.GREETED,
        (_S.RCPT, _E.STARTTLS_OK): _S.GREETED,
    }
    for state in _SESSION:
        # RFC 5321 §4.1.4: an accepted EHLO later in the session resets "exactly as if a RSET
        # command had been issued".
        table[(state, _E.HELLO_OK)] = _S.READY
        # RFC 5321 §4.1.1.5: RSET aborts the transaction; before EHLO nothing changes.
        table[(state, _E.RSET_OK)] = _S.GREETED if state is _S.GREETED else _S.READY
        table[(state, _E.QUIT)] = _S.CLOSED
        # RFC 5321 §4.1.4: after a rejected command "the SMTP server MUST stay in the same state".
        table[(state, _E.REJECTED)] = state
        table[(state, _E.NEUTRAL)] = state
    for state in _ALL_OPEN:
        table[(state, _E.CONNECTION_CLOSED)] = _S.CLOSED
    table[(_S.CLOSED, _E.CONNECTION_CLOSED)] = _S.CLOSED
    return table


#: The one transition table: (state, event) -> next state. Missing pairs are protocol errors.
TRANSITIONS: Mapping[tuple[SessionState, SessionEvent], SessionState] = MappingProxyType(
    _build_transitions()
)


def transition(state: SessionState, event: SessionEvent) -> SessionState:
    """The next state; LocalProtocolError when *event* cannot happen in *state*."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise LocalProtocolError(
            f"no SMTP transition from {state.name} on {event.name}"
        ) from None


def event_for_reply(verb: str, code: int) -> SessionEvent:
    """The session event a final reply *code* to command *verb* means ("" = the greeting,
    "." = the end of mail data)."""
    verb = verb.upper()
    klass = code // 100
    if verb == "":
        if code == C220_READY:
            return _E.GREETING_OK
        if code == C554_TRANSACTION_FAILED:
            return _E.GREETING_REFUSED
        return _E.CONNECTION_CLOSED
    if verb == ".":
        return _E.CONNECTION_CLOSED if code == C421_SERVICE_UNAVAILABLE else _E.DATA_END
    if code == C421_SERVICE_UNAVAILABLE:
        # RFC 5321 §3.8: 421 means the server is closing the transmission channel.
        return _E.CONNECTION_CLOSED
    if verb == "QUIT":
        return _E.QUIT if klass == 2 else _E.REJECTED
    if verb == "STARTTLS":
        return _E.STARTTLS_OK if code == C220_READY else _E.REJECTED
    if verb == "DATA":
        return _E.DATA_START if code == C354_START_DATA else _E.REJECTED
    if klass not in (2, 3):
        return _E.REJECTED
    if klass == 3:
        return _E.NEUTRAL
    return {
        "EHLO": _E.HELLO_OK,
        "HELO": _E.HELLO_OK,
        "MAIL": _E.MAIL_OK,
        "RCPT": _E.RCPT_OK,
        "RSET": _E.RSET_OK,
    }.get(verb, _E.NEUTRAL)


def transitions_markdown() -> str:
    """The transition table as a Markdown table (for docs and reports), in state order."""
    ordered = dict(sorted(
        TRANSITIONS.items(), key=lambda kv: (list(_S).index(kv[0][0]), list(_E).index(kv[0][1]))))
    return diagrams.transitions_markdown(ordered)


def transitions_mermaid() -> str:
    """The transition table as a Mermaid state diagram (self-loops omitted)."""
    return diagrams.transitions_mermaid(TRANSITIONS, _S.CONNECTED, _S.CLOSED)


# ---------------------------------------------------------------------------------------------
# Legal replies per command (RFC 5321 §4.3.2, RFC 3207 §4, RFC 4954 §4 and §6)
# ---------------------------------------------------------------------------------------------

GREETING = ""  # pseudo-verb: the connection greeting
END_DATA = "."  # pseudo-verb: the reply to the end of mail data

# RFC 5321 §4.3.2: "In addition to the codes listed below, any SMTP command can return any of
# the following codes": 500, 501, 421.
_ANY_COMMAND = frozenset({500, 501, 421})

# (success codes, error codes) per command, RFC 5321 §4.3.2 unless noted.
_REPLIES: dict[str, tuple[frozenset[int], frozenset[int]]] = {
    "EHLO": (frozenset({250}), frozenset({504, 550, 502})),
    "HELO": (frozenset({250}), frozenset({504, 550, 502})),
    "MAIL": (frozenset({250}), frozenset({552, 451, 452, 550, 553, 503, 455, 555})),
    "RCPT": (frozenset({250, 251}), frozenset({550, 551, 552, 553, 450, 451, 452, 503, 455, 555})),
    "DATA": (frozenset({354}), frozenset({503, 554})),
    "RSET": (frozenset({250}), frozenset()),
    "VRFY": (frozenset({250, 251, 252}), frozenset({550, 551, 553, 502, 504})),
    "EXPN": (frozenset({250, 252}), frozenset({550, 500, 502, 504})),
    "HELP": (frozenset({211, 214}), frozenset({502, 504})),
    "NOOP": (frozenset({250}), frozenset()),
    "QUIT": (frozenset({221}), frozenset()),
    # RFC 3207 §4: 220 Ready to start TLS, 501 Syntax error, 454 TLS not available.  503 for a
    # repeated STARTTLS is common practice; 502 where the extension is not implemented
    # (RFC 5321 §4.2.4: "Reply code 502 ... for commands that are not implemented").
    "STARTTLS": (frozenset({220}), frozenset({454, 501, 502, 503})),
    # RFC 4954 §4 and §6; 502 where AUTH is not offered (RFC 5321 §4.2.4).
    "AUTH": (
        frozenset({235, 334}),
        frozenset({432, 454, 500, 501, 502, 503, 504, 534, 535, 538}),
    ),
}

#: Where each command is in sequence; elsewhere only its error replies and 503 are legal.
_IN_SEQUENCE: dict[str, frozenset[SessionState]] = {
    "MAIL": frozenset({_S.READY}),
    "RCPT": frozenset({_S.MAIL, _S.RCPT}),
    "DATA": frozenset({_S.RCPT}),
    # RFC 4954 §4: "The AUTH command is not permitted during a mail transaction. An AUTH
    # command issued during a mail transaction MUST be rejected with a 503 reply."
    "AUTH": frozenset({_S.READY}),
    # RFC 3207 does not forbid STARTTLS inside a transaction; it resets the session.
    "STARTTLS": frozenset({_S.GREETED, _S.READY, _S.MAIL, _S.RCPT}),
}

def in_sequence(state: SessionState, verb: str) -> bool:
    """True when *verb* may succeed in *state*; elsewhere a server answers it 503 (RFC 5321
    §4.1.4: "If the commands are out of order, a 503 failure reply MUST be returned")."""
    allowed = _IN_SEQUENCE.get(verb.upper())
    return allowed is None or state in allowed


# RFC 4954 §6: 530 "SHOULD be returned by any command other than AUTH, EHLO, HELO, NOOP, RSET,
# or QUIT when server policy requires authentication".
_NO_530 = frozenset({"AUTH", "EHLO", "HELO", "NOOP", "RSET", "QUIT"})


def expected_reply_codes(state: SessionState, verb: str) -> frozenset[int]:
    """Reply codes a server may legally send to *verb* in *state* (RFC 5321 §4.3.2).

    ``verb`` GREETING ("") in CONNECTED gives the greeting codes; END_DATA (".") in DATA the
    codes after the end of mail data.  Out-of-sequence commands may only fail (RFC 5321 §4.1.4:
    "a 503 failure reply MUST be returned"); unknown commands may get 500/502/504."""
    verb = verb.upper()
    if state is _S.CONNECTED:
        if verb != GREETING:
            raise LocalProtocolError("before the greeting only the greeting is expected")
        return frozenset({220, 554, 421})
    if state is _S.DATA:
        if verb != END_DATA:
            raise LocalProtocolError("in DATA only the end-of-data reply is expected")
        return frozenset({250, 552, 554, 451, 452, 450, 550, 421})
    if state is _S.CLOSED or verb in (GREETING, END_DATA):
        raise LocalProtocolError(f"no reply to {verb!r} expected in state {state.name}")
    auth = frozenset() if verb in _NO_530 else frozenset({530})
    if state is _S.REFUSED:
        if verb == "QUIT":
            return frozenset({221}) | _ANY_COMMAND
        return frozenset({503}) | _ANY_COMMAND
    if verb not in _REPLIES:
        return frozenset({500, 502, 504}) | _ANY_COMMAND | auth
    ok, errors = _REPLIES[verb]
    allowed = _IN_SEQUENCE.get(verb)
    if allowed is not None and state not in allowed:
        ok = frozenset()
        errors = errors | {503}
    return ok | errors | _ANY_COMMAND | auth
