"""A model of one SMTP session: which reply codes the RFCs allow after each command in each state.

Built on harness.protocol.smtp (SessionState, transition, expected_reply_codes: RFC 5321
§4.1.4 and §4.3.2) by composition, refined with what those tables cannot know: the command's
arguments (malformed or not), TLS (RFC 3207) and authentication (RFC 4954). Pure: no I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from harness.protocol.errors import LocalProtocolError
from harness.protocol.smtp import (
    C220_READY,
    C235_AUTH_OK,
    C421_SERVICE_UNAVAILABLE,
    C500_SYNTAX_ERROR,
    C501_SYNTAX_PARAMS,
    C502_NOT_IMPLEMENTED,
    C503_BAD_SEQUENCE,
    C504_PARAM_NOT_IMPLEMENTED,
    C530_AUTH_REQUIRED,
    END_DATA,
    SessionEvent,
    SessionState,
    event_for_reply,
    expected_reply_codes,
    transition,
)

#: Services the model connects to (names of the target's endpoints).
SUBMISSION = "submission"
SUBMISSIONS = "submissions"
MX = "mx"

# RFC 5321 §4.3.2: "In addition to the codes listed below, any SMTP command can return any of
# the following codes": 500, 501, 421.
ANY_COMMAND: frozenset[int] = frozenset({C500_SYNTAX_ERROR, C501_SYNTAX_PARAMS,
                                         C421_SERVICE_UNAVAILABLE})
#: Every failure code RFC 5321 §4.2.3 and its extensions (RFC 3207, 4954, 1870) define.
FAILURES: frozenset[int] = frozenset({
    421, 432, 450, 451, 452, 454, 455,
    500, 501, 502, 503, 504, 530, 534, 535, 538, 550, 551, 552, 553, 554, 555,
})

#: Verbs the model knows; anything else is an unrecognised command.
KNOWN_VERBS = frozenset({
    "EHLO", "HELO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "VRFY", "EXPN", "HELP", "QUIT",
    "STARTTLS", "AUTH",
})


class Flaw(enum.Enum):
    """What is wrong with a command's arguments (None: nothing)."""

    SYNTAX = "malformed arguments"
    BAD_CREDENTIALS = "credentials that do not authenticate"
    UNKNOWN_MECHANISM = "a SASL mechanism the server does not offer"
    BAD_BASE64 = "an initial response that is not base64"


@dataclass(frozen=True, slots=True)
class Command:
    """One command line the model can send. ``line`` is a dialogue template (harness.dialogue:
    ``{sender}`` and friends); ``verb`` the upper-cased command word ("" for an empty line)."""

    verb: str
    line: str
    flaw: Flaw | None = None

    def spelled(self, style: str) -> Command:
        """The same command with its verb in ``upper``, ``lower`` or ``mixed`` case (RFC 5321
        §2.4: "Verbs and argument values ... are not case sensitive")."""
        word, sep, rest = self.line.partition(" ")
        if style == "lower":
            word = word.lower()
        elif style == "mixed":
            word = "".join(c.lower() if i % 2 else c.upper() for i, c in enumerate(word))
        return replace(self, line=word + sep + rest)


@dataclass(frozen=True, slots=True)
class SessionModel:
    """What the model knows of one session: the RFC 5321 §4.1.4 state and the flags beside it."""

    service: str = MX
    state: SessionState = SessionState.CONNECTED
    tls: bool = False
    authenticated: bool = False
    extended: bool = False  # the last accepted hello was EHLO (not HELO)
    #: Extension keywords the last accepted EHLO advertised (upper case).
    offers: frozenset[str] = frozenset()

    @property
    def open(self) -> bool:
        return self.state is not SessionState.CLOSED


@dataclass(frozen=True, slots=True)
class Prediction:
    """The reply codes allowed, and the RFC sentence that narrowed them last."""

    codes: frozenset[int]
    rule: str

    def allows(self, code: int) -> bool:
        return code in self.codes


_ORDER_RULE = ("RFC 5321 §4.1.4: \"If the commands in a transaction are out of order to the "
               "degree that they cannot be processed by the server, a 503 failure reply MUST be "
               "returned and the SMTP server MUST stay in the same state.\"")
_TABLE_RULE = "RFC 5321 §4.3.2: the command-reply sequences list every reply a command may get"
_SYNTAX_RULE = ("RFC 5321 §4.1.4: \"If the transaction beginning command argument is not "
                "acceptable, a 501 failure reply MUST be returned\"; §4.2.2: 501 \"Syntax error "
                "in parameters or arguments\"")
_AUTH_AGAIN_RULE = ("RFC 4954 §4: \"After a successful AUTH command completes, a server MUST "
                    "reject any further AUTH commands with a 503 reply.\"")
_AUTH_IN_TRANSACTION_RULE = ("RFC 4954 §4: \"An AUTH command issued during a mail transaction "
                             "MUST be rejected with a 503 reply.\"")
_AUTH_CREDENTIALS_RULE = ("RFC 4954 §6: 535 5.7.8 \"indicates that the authentication failed due "
                          "to invalid or insufficient authentication credentials\"")
_AUTH_MECHANISM_RULE = ("RFC 4954 §4: if the \"requested authentication mechanism is invalid "
                        "(e.g., is not supported or requires an encryption layer), the server "
                        "rejects the AUTH command with a 504 reply.\"")
_AUTH_BASE64_RULE = ("RFC 4954 §4: \"If the server cannot [BASE64] decode any client response, "
                     "it MUST reject the AUTH command with a 501 reply\"")
_TLS_AGAIN_RULE = ("RFC 3207 §4.2: \"A client MUST NOT attempt to start a TLS session if a TLS "
                   "session is already active.\" — a server cannot accept a second STARTTLS")
_UNKNOWN_RULE = ("RFC 5321 §4.2.4: \"reply code 500 ... when the command is unrecognized\"; 502 "
                 "for a command not implemented")
_CANCEL_RULE = ("RFC 4954 §4: \"If the client wishes to cancel an authentication exchange, it "
                "issues a line with a single \"*\". If the server receives such a response, it "
                "MUST reject the AUTH command by sending a 501 reply.\"")
_END_DATA_RULE = "RFC 5321 §4.3.2: DATA ... \"I: 354 -> data -> S: 250  E: 552, 554, 451, 452\""


_BEFORE_TLS_ALWAYS = frozenset({"NOOP", "EHLO", "STARTTLS", "QUIT"})


def _positive(codes: frozenset[int]) -> frozenset[int]:
    return frozenset(c for c in codes if c < 400)


def predict(session: SessionModel, command: Command) -> Prediction:
    """The reply codes a conforming server may send to *command* in *session*."""
    state = session.state
    if state in (SessionState.CONNECTED, SessionState.DATA, SessionState.CLOSED):
        raise LocalProtocolError(f"no command is sent in state {state.name}")
    verb = command.verb.upper()
    if verb not in KNOWN_VERBS:
        # An empty line or an unrecognised word: expected_reply_codes knows unknown verbs, not
        # the empty line (its "" is the greeting pseudo-verb).
        codes = frozenset({C500_SYNTAX_ERROR, C502_NOT_IMPLEMENTED, C504_PARAM_NOT_IMPLEMENTED})
        codes |= ANY_COMMAND
        if state is SessionState.REFUSED:
            codes |= {C503_BAD_SEQUENCE}
        return Prediction(codes, _UNKNOWN_RULE)
    codes = expected_reply_codes(state, verb)
    rule = _ORDER_RULE if C503_BAD_SEQUENCE in codes and not _positive(codes) else _TABLE_RULE
    if verb in ("STARTTLS", "AUTH"):
        # Extensions: a server that does not offer one answers 502 (RFC 5321 §4.2.4) or 500.
        codes |= {C502_NOT_IMPLEMENTED}
    if verb == "STARTTLS" and state in (SessionState.MAIL, SessionState.RCPT):
        # expected_reply_codes() calls STARTTLS in a transaction out of sequence, but RFC 3207
        # forbids it nowhere: a server may refuse it (503) or start TLS, which resets the
        # session (RFC 3207 §4.2) and so discards the transaction.
        codes |= {C220_READY}
    # RFC 4954 binds servers that offer AUTH; one that does not may call it unimplemented.
    auth_offered = "AUTH" in session.offers
    if verb == "AUTH" and auth_offered and session.authenticated:
        return Prediction(frozenset({C503_BAD_SEQUENCE}) | ANY_COMMAND, _AUTH_AGAIN_RULE)
    if verb == "AUTH" and auth_offered and state in (SessionState.MAIL, SessionState.RCPT):
        return Prediction(frozenset({C503_BAD_SEQUENCE}) | ANY_COMMAND, _AUTH_IN_TRANSACTION_RULE)
    if verb == "STARTTLS" and session.tls:
        # Implicit TLS (465) or after a completed STARTTLS: a second handshake cannot start.
        return Prediction(FAILURES, _TLS_AGAIN_RULE)
    if not session.tls and verb not in _BEFORE_TLS_ALWAYS and state is not SessionState.REFUSED:
        # RFC 3207 §4: a server that requires TLS answers "530 Must issue a STARTTLS command
        # first" to "a command other than NOOP, EHLO, STARTTLS, or QUIT".
        codes |= {C530_AUTH_REQUIRED}
    flaw = command.flaw
    if flaw is not None and verb != "QUIT":
        # (QUIT with a stray argument may still be honoured with 221: it harms no one.)
        codes = codes - _positive(codes)
        if flaw is Flaw.BAD_CREDENTIALS:
            rule = _AUTH_CREDENTIALS_RULE
        elif flaw is Flaw.UNKNOWN_MECHANISM:
            rule = _AUTH_MECHANISM_RULE
        elif flaw is Flaw.BAD_BASE64:
            rule = _AUTH_BASE64_RULE
        elif rule is _TABLE_RULE:
            rule = _SYNTAX_RULE
    return Prediction(codes, rule)


def predict_end_of_data(session: SessionModel) -> Prediction:
    """The reply codes allowed after the end of mail data."""
    return Prediction(expected_reply_codes(SessionState.DATA, END_DATA), _END_DATA_RULE)


def predict_auth_cancel(session: SessionModel) -> Prediction:
    """The reply codes allowed after ``*`` cancels an AUTH exchange."""
    return Prediction(frozenset({C501_SYNTAX_PARAMS}) | ANY_COMMAND, _CANCEL_RULE)


def advance(
    session: SessionModel, command: Command, code: int, offers: frozenset[str] = frozenset()
) -> SessionModel:
    """The session after *command* got the final reply *code* (which predict() allowed);
    *offers* are the extension keywords an accepted EHLO advertised."""
    verb = command.verb.upper()
    if code == C421_SERVICE_UNAVAILABLE:
        # RFC 5321 §3.8: 421 means the server is closing the transmission channel.
        return replace(session, state=SessionState.CLOSED)
    if verb not in KNOWN_VERBS:
        event = SessionEvent.REJECTED
    else:
        event = event_for_reply(verb, code)
    if event is SessionEvent.STARTTLS_OK:
        # RFC 3207 §4.2: "Upon completion of the TLS handshake, the SMTP protocol is reset to
        # the initial state (the state in SMTP after a server issues a 220 service ready
        # greeting)." -- from any state STARTTLS was accepted in.
        state = SessionState.GREETED
    else:
        try:
            state = transition(session.state, event)
        except LocalProtocolError:
            state = session.state  # a reply the model refused already; stay put
    if verb in ("EHLO", "HELO") and code < 400:
        extended = verb == "EHLO"
        return replace(session, state=state, extended=extended,
                       offers=offers if extended else frozenset())
    if verb == "STARTTLS" and code == C220_READY:
        return replace(session, state=state, tls=True, authenticated=False, extended=False,
                       offers=frozenset())
    if verb == "AUTH" and code == C235_AUTH_OK:
        return replace(session, state=state, authenticated=True)
    return replace(session, state=state)


def after_greeting(session: SessionModel, code: int) -> SessionModel:
    """The session after the connection greeting *code*."""
    event = event_for_reply("", code)
    return replace(session, state=transition(session.state, event))


def after_end_of_data(session: SessionModel, code: int) -> SessionModel:
    """The session after the reply to the end of mail data."""
    event = event_for_reply(END_DATA, code)
    return replace(session, state=transition(session.state, event))


# ---------------------------------------------------------------------------------------------
# The commands the model sends (templates use harness.dialogue's variables)
# ---------------------------------------------------------------------------------------------

EHLO = Command("EHLO", "EHLO {helo}")
HELO = Command("HELO", "HELO {helo}")
MAIL = Command("MAIL", "MAIL FROM:<{sender}>")
MAIL_NULL = Command("MAIL", "MAIL FROM:<>")
RCPT = Command("RCPT", "RCPT TO:<{recipient}>")
DATA = Command("DATA", "DATA")
RSET = Command("RSET", "RSET")
NOOP = Command("NOOP", "NOOP")
NOOP_ARG = Command("NOOP", "NOOP mailharness was here")
VRFY = Command("VRFY", "VRFY {local_recipient}")
HELP = Command("HELP", "HELP")
HELP_ARG = Command("HELP", "HELP MAIL")
QUIT = Command("QUIT", "QUIT")
STARTTLS = Command("STARTTLS", "STARTTLS")
AUTH = Command("AUTH", "AUTH PLAIN {auth_plain}")
#: RFC 4954 §4: "*" cancels an exchange; sent when the server answers AUTH with 334.
AUTH_CANCEL_LINE = "*"

#: Malformed forms: each must be refused (no 2yz or 3yz). Not "QUIT now": servers commonly
#: ignore QUIT's argument and close as asked, which harms no one.
MALFORMED: tuple[Command, ...] = (
    Command("EHLO", "EHLO", Flaw.SYNTAX),
    Command("HELO", "HELO", Flaw.SYNTAX),
    Command("MAIL", "MAIL", Flaw.SYNTAX),
    Command("MAIL", "MAIL FROM:<{sender}", Flaw.SYNTAX),
    Command("MAIL", "MAIL TO:<{sender}>", Flaw.SYNTAX),
    Command("RCPT", "RCPT", Flaw.SYNTAX),
    Command("RCPT", "RCPT TO:<{recipient}", Flaw.SYNTAX),
    Command("RCPT", "RCPT FROM:<{recipient}>", Flaw.SYNTAX),
    Command("DATA", "DATA now", Flaw.SYNTAX),
    Command("RSET", "RSET now", Flaw.SYNTAX),
    Command("VRFY", "VRFY", Flaw.SYNTAX),
    Command("STARTTLS", "STARTTLS now", Flaw.SYNTAX),
    Command("AUTH", "AUTH", Flaw.SYNTAX),
    # base64 of "\0nobody@mailharness.invalid\0wrong-password": an account no server has.
    Command("AUTH", "AUTH PLAIN AG5vYm9keUBtYWlsaGFybmVzcy5pbnZhbGlkAHdyb25nLXBhc3N3b3Jk",
            Flaw.BAD_CREDENTIALS),
    Command("AUTH", "AUTH X-MAILHARNESS-NONE", Flaw.UNKNOWN_MECHANISM),
    Command("AUTH", "AUTH PLAIN !not*base64!", Flaw.BAD_BASE64),
)

#: Unrecognised commands: an unknown word and an empty line.
UNKNOWN: tuple[Command, ...] = (
    Command("XMAILHARNESS", "XMAILHARNESS"),
    Command("", ""),
)

#: Every command the model sends, each once (for tables and tests).
CATALOGUE: tuple[Command, ...] = (
    EHLO, HELO, MAIL, MAIL_NULL, RCPT, DATA, RSET, NOOP, NOOP_ARG, VRFY, HELP, HELP_ARG, QUIT,
    STARTTLS, AUTH, *MALFORMED, *UNKNOWN,
)

#: What the state machine draws from, weighted by repetition: transaction commands come often
#: so that transactions get deep; the first entries are what examples shrink towards.
WEIGHTED: tuple[Command, ...] = (
    MAIL, RCPT, NOOP, MAIL, RCPT, DATA, MAIL, RCPT, RSET, MAIL, RCPT, DATA, RSET, EHLO, EHLO,
    HELO, MAIL_NULL, NOOP_ARG, VRFY, HELP, HELP_ARG, QUIT, STARTTLS, AUTH, *MALFORMED, *UNKNOWN,
)

#: The message the model sends after 354, one template per line (the "." line ends it).
MESSAGE_LINES: tuple[str, ...] = (
    "From: <{sender}>",
    "To: <{recipient}>",
    "Subject: mailharness SMTP session model",
    "",
    "A message sent by the mailharness SMTP session model.",
    "..This line starts with a dot (RFC 5321 §4.5.2 transparency).",
    ".",
)


def describe_codes(codes: frozenset[int]) -> str:
    return "|".join(str(c) for c in sorted(codes))


def prediction_table(sessions: tuple[SessionModel, ...], commands: tuple[Command, ...]) -> str:
    """A Markdown table: allowed codes of every command in every session (for docs)."""
    rows = ["| state | tls | auth | command | allowed |", "|---|---|---|---|---|"]
    for session in sessions:
        for command in commands:
            prediction = predict(session, command)
            rows.append(
                f"| {session.state.name} | {session.tls} | {session.authenticated} | "
                f"`{command.line}` | {describe_codes(prediction.codes)} |"
            )
    return "\n".join(rows) + "\n"
