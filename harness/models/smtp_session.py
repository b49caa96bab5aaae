"""A model of one SMTP session: which reply codes the RFCs allow after each command in each state,
and which requirement each rule belongs to.

Built on harness.protocol.smtp (SessionState, transition, expected_reply_codes: RFC 5321
§4.1.4 and §4.3.2) by composition, refined with what those tables cannot know: the command's
arguments (malformed or not), TLS (RFC 3207), authentication (RFC 4954), and what ended the
last transaction. A prediction is a list of *claims*, most specific first; each names the one
registry requirement a reply outside its codes breaks. Pure: no I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from functools import reduce

from harness.dialogue import code_patterns
from harness.protocol.errors import LocalProtocolError
from harness.protocol.smtp import (
    C220_READY,
    C221_CLOSING,
    C235_AUTH_OK,
    C250_OK,
    C421_SERVICE_UNAVAILABLE,
    C500_SYNTAX_ERROR,
    C501_SYNTAX_PARAMS,
    C502_NOT_IMPLEMENTED,
    C503_BAD_SEQUENCE,
    C504_PARAM_NOT_IMPLEMENTED,
    C530_AUTH_REQUIRED,
    END_DATA,
    GREETING,
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
#: Every well-formed reply code (RFC 5321 §4.2: three digits, the first 2 to 5).
ALL_CODES: frozenset[int] = frozenset(range(200, 600))
#: A refusal: a transient or permanent negative completion reply (RFC 5321 §4.2.1), so that
#: nothing was carried out.
REFUSALS: frozenset[int] = frozenset(range(400, 600))

#: Verbs the model knows; anything else is an unrecognised command.
KNOWN_VERBS = frozenset({
    "EHLO", "HELO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "VRFY", "EXPN", "HELP", "QUIT",
    "STARTTLS", "AUTH",
})

#: Every requirement a prediction of this module can name (the model's test lists them all).
REQUIREMENTS: tuple[str, ...] = (
    "SMTP-COMMAND-ORDER", "SMTP-REPLY-CODES", "SMTP-EHLO-SYNTAX", "SMTP-EHLO-RESET",
    "SMTP-PARAM-SYNTAX", "SMTP-NO-PARAMETERS", "SMTP-RSET", "SMTP-NOOP", "SMTP-VRFY-NO-FALSE-250",
    "SMTP-UNKNOWN-COMMAND", "SMTP-QUIT", "AUTH-ONCE", "AUTH-IN-TRANSACTION", "AUTH-CANCEL",
    "AUTH-BAD-CREDENTIALS", "AUTH-BAD-BASE64", "AUTH-UNKNOWN-MECHANISM", "STARTTLS-SYNTAX",
    "STARTTLS-RESET", "STARTTLS-ONCE",
)


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
    #: The requirement of the reset that ended the last open transaction (SMTP-RSET,
    #: SMTP-EHLO-RESET, STARTTLS-RESET); None when no reset did, or a MAIL was accepted since.
    #: A RCPT or DATA carried out after it shows that reset did not discard the transaction --
    #: when the server refused the same command with nothing open (refuses_unopened); else it
    #: may as well be a server that takes it out of order, and the order is what it fails.
    reset_by: str | None = None
    #: RCPT, DATA: refused on this connection after EHLO with no transaction open and none reset.
    refuses_unopened: frozenset[str] = frozenset()
    #: The server refused MAIL before any EHLO with 503 on this connection before TLS: it
    #: insists on EHLO, so after the TLS handshake it must insist again (RFC 3207 §4.2).
    hello_required: bool = False

    @property
    def open(self) -> bool:
        return self.state is not SessionState.CLOSED

    @property
    def in_transaction(self) -> bool:
        return self.state in (SessionState.MAIL, SessionState.RCPT)


@dataclass(frozen=True, slots=True)
class Claim:
    """One rule a reply must keep: *requirement* allows only *codes* here, by *rule* (the RFC
    sentence)."""

    requirement: str
    codes: frozenset[int]
    rule: str

    def allows(self, code: int) -> bool:
        return code in self.codes


@dataclass(frozen=True, slots=True)
class Prediction:
    """The claims a reply must keep, the most specific first. A reply outside the codes of
    several breaks the first of them: that claim's requirement is the one the reply fails."""

    claims: tuple[Claim, ...]

    def __post_init__(self) -> None:
        if not self.claims:
            raise ValueError("a prediction needs at least one claim")

    @property
    def codes(self) -> frozenset[int]:
        """The reply codes every claim allows."""
        return reduce(frozenset.intersection, (c.codes for c in self.claims))

    @property
    def rule(self) -> str:
        return self.claims[0].rule

    @property
    def requirements(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.requirement for c in self.claims))

    def allows(self, code: int) -> bool:
        return all(c.allows(code) for c in self.claims)

    def broken_by(self, code: int) -> Claim | None:
        """The first claim *code* breaks (None when every claim allows it)."""
        return next((c for c in self.claims if not c.allows(code)), None)


def _one(requirement: str, codes: frozenset[int], rule: str) -> Prediction:
    return Prediction((Claim(requirement, codes, rule),))


_ORDER_RULE = ("RFC 5321 §4.1.4: \"If the commands in a transaction are out of order to the "
               "degree that they cannot be processed by the server, a 503 failure reply MUST be "
               "returned and the SMTP server MUST stay in the same state.\"")
_NESTED_MAIL_RULE = ("RFC 5321 §4.1.4: \"MAIL ... MUST NOT be sent if a mail transaction is "
                     "already open\"; \"If the commands in a transaction are out of order to the "
                     "degree that they cannot be processed by the server, a 503 failure reply "
                     "MUST be returned\"")
_RCPT_ORDER_RULE = ("RFC 5321 §3.3: \"If a RCPT command appears without a previous MAIL command, "
                    "the server MUST return a 503 \"Bad sequence of commands\" response.\"")
_DATA_ORDER_RULE = ("RFC 5321 §4.1.1.4: \"If there was no MAIL, or no RCPT, command, or all such "
                    "commands were rejected, the server MAY return a \"command out of sequence\" "
                    "(503) or \"no valid recipients\" (554) reply in response to the DATA command.\"")
_REFUSED_RULE = ("RFC 5321 §3.1: after a 554 greeting the server \"MUST still wait for the client "
                 "to send a QUIT ... and SHOULD respond to any intervening commands with \"503 bad "
                 "sequence of commands\"\"")
_RSET_RULE = ("RFC 5321 §4.1.1.5: RSET: \"Any stored sender, recipients, and mail data MUST be "
              "discarded\" -- the transaction it ended cannot go on")
_RSET_REPLY_RULE = ("RFC 5321 §4.1.1.5: \"The receiver MUST send a \"250 OK\" reply to a RSET "
                    "command with no arguments.\"")
_EHLO_RESET_RULE = ("RFC 5321 §4.1.4: after a later EHLO \"the SMTP server MUST clear all buffers "
                    "and reset the state exactly as if a RSET command had been issued\" -- the "
                    "transaction it ended cannot go on")
_STARTTLS_RESET_RULE = ("RFC 3207 §4.2: \"Upon completion of the TLS handshake, the SMTP protocol "
                        "is reset to the initial state\" -- the transaction open before it "
                        "cannot go on")
_STARTTLS_FORGETS_EHLO_RULE = ("RFC 3207 §4.2: \"The server MUST discard any knowledge obtained "
                               "from the client, such as the argument to the EHLO command\" -- "
                               "this server refused MAIL before EHLO with 503 before TLS, so "
                               "without a new EHLO it must refuse it again")
_TABLE_RULE = "RFC 5321 §4.3.2: the command-reply sequences list every reply a command may get"
_GREETING_RULE = "RFC 5321 §4.3.2: CONNECTION ESTABLISHMENT \"S: 220  E: 554\""
_NOOP_RULE = ("RFC 5321 §4.1.1.9: NOOP \"specifies no action other than that the receiver send a "
              "\"250 OK\" reply\"")
_QUIT_RULE = ("RFC 5321 §4.1.1.10: \"the receiver MUST send a \"221 OK\" reply, and then close the "
              "transmission channel.\"")
_SYNTAX_RULE = ("RFC 5321 §4.1.4: \"If the transaction beginning command argument is not "
                "acceptable, a 501 failure reply MUST be returned\"; §4.2.2: 501 \"Syntax error "
                "in parameters or arguments\"")
_EHLO_SYNTAX_RULE = ("RFC 5321 §4.1.1.1: ehlo = \"EHLO\" SP ( Domain / address-literal ) CRLF; "
                     "§4.1.4: \"If the EHLO command is not acceptable to the SMTP server, 501, 500, "
                     "502, or 550 failure replies MUST be returned\"")
_NO_PARAMETERS_RULE = ("RFC 5321 §4.3.2: \"commands that are specified in this document as not "
                       "accepting arguments (DATA, RSET, QUIT) SHOULD return a 501 message if "
                       "arguments are supplied\"")
_VRFY_RULE = ("RFC 5321 §3.5.3: \"A server MUST NOT return a 250 code in response to a VRFY or "
              "EXPN command unless it has actually verified the address\" -- a VRFY without an "
              "argument names none (252, \"cannot VRFY\", is fine)")
_STARTTLS_SYNTAX_RULE = "RFC 3207 §4: STARTTLS takes no parameter: \"501 Syntax error (no parameters allowed)\""
_AUTH_AGAIN_RULE = ("RFC 4954 §4: \"After a successful AUTH command completes, a server MUST "
                    "reject any further AUTH commands with a 503 reply.\"")
_AUTH_IN_TRANSACTION_RULE = ("RFC 4954 §4: \"An AUTH command issued during a mail transaction "
                             "MUST be rejected with a 503 reply.\"")
_AUTH_CREDENTIALS_RULE = ("RFC 4954 §6: 535 5.7.8 \"indicates that the authentication failed due "
                          "to invalid or insufficient authentication credentials\"")
_AUTH_MECHANISM_RULE = ("RFC 4954 §4: if the \"requested authentication mechanism is invalid "
                        "(e.g., is not supported or requires an encryption layer), the server "
                        "rejects the AUTH command with a 504 reply.\"")
_AUTH_NO_MECHANISM_RULE = ("RFC 4954 §4: AUTH mechanism [initial-response] -- an AUTH that names "
                           "no mechanism names none the server supports")
_AUTH_BASE64_RULE = ("RFC 4954 §4: \"If the server cannot [BASE64] decode any client response, "
                     "it MUST reject the AUTH command with a 501 reply\"")
_TLS_AGAIN_RULE = ("RFC 3207 §4.2: \"A client MUST NOT attempt to start a TLS session if a TLS "
                   "session is already active.\" -- a server cannot accept a second STARTTLS")
_UNKNOWN_RULE = ("RFC 5321 §4.2.4: \"reply code 500 ... when the command is unrecognized\"; 502 "
                 "for a command not implemented")
_CANCEL_RULE = ("RFC 4954 §4: \"If the client wishes to cancel an authentication exchange, it "
                "issues a line with a single \"*\". If the server receives such a response, it "
                "MUST reject the AUTH command by sending a 501 reply.\"")
_END_DATA_RULE = "RFC 5321 §4.3.2: DATA ... \"I: 354 -> data -> S: 250  E: 552, 554, 451, 452\""

#: RFC 3207 §4: a server that requires TLS answers 530 "to every command other than NOOP,
#: EHLO, STARTTLS, or QUIT".
_BEFORE_TLS_ALWAYS = frozenset({"NOOP", "EHLO", "STARTTLS", "QUIT"})
#: The states a command may be sent in.
_COMMAND_STATES = (SessionState.GREETED, SessionState.READY, SessionState.MAIL, SessionState.RCPT)
#: A reset that ends an open transaction, by the verb that made it.
_RESETS = {"RSET": "SMTP-RSET", "EHLO": "SMTP-EHLO-RESET", "HELO": "SMTP-EHLO-RESET",
           "STARTTLS": "STARTTLS-RESET"}
_RESET_RULES = {"SMTP-RSET": _RSET_RULE, "SMTP-EHLO-RESET": _EHLO_RESET_RULE,
                "STARTTLS-RESET": _STARTTLS_RESET_RULE}
#: What a malformed form of each verb breaks when it is carried out.
_FLAW_CLAIMS: dict[tuple[str, Flaw], tuple[str, frozenset[int], str]] = {
    ("EHLO", Flaw.SYNTAX): ("SMTP-EHLO-SYNTAX", REFUSALS, _EHLO_SYNTAX_RULE),
    ("HELO", Flaw.SYNTAX): ("SMTP-EHLO-SYNTAX", REFUSALS, _EHLO_SYNTAX_RULE),
    ("MAIL", Flaw.SYNTAX): ("SMTP-PARAM-SYNTAX", REFUSALS, _SYNTAX_RULE),
    ("RCPT", Flaw.SYNTAX): ("SMTP-PARAM-SYNTAX", REFUSALS, _SYNTAX_RULE),
    ("DATA", Flaw.SYNTAX): ("SMTP-NO-PARAMETERS", REFUSALS, _NO_PARAMETERS_RULE),
    ("RSET", Flaw.SYNTAX): ("SMTP-NO-PARAMETERS", REFUSALS, _NO_PARAMETERS_RULE),
    ("VRFY", Flaw.SYNTAX): ("SMTP-VRFY-NO-FALSE-250", ALL_CODES - {C250_OK}, _VRFY_RULE),
    ("STARTTLS", Flaw.SYNTAX): ("STARTTLS-SYNTAX", REFUSALS, _STARTTLS_SYNTAX_RULE),
    ("AUTH", Flaw.SYNTAX): ("AUTH-UNKNOWN-MECHANISM", REFUSALS, _AUTH_NO_MECHANISM_RULE),
    ("AUTH", Flaw.BAD_CREDENTIALS): ("AUTH-BAD-CREDENTIALS", REFUSALS, _AUTH_CREDENTIALS_RULE),
    ("AUTH", Flaw.UNKNOWN_MECHANISM): ("AUTH-UNKNOWN-MECHANISM", REFUSALS, _AUTH_MECHANISM_RULE),
    ("AUTH", Flaw.BAD_BASE64): ("AUTH-BAD-BASE64", REFUSALS, _AUTH_BASE64_RULE),
}


def _positive(codes: frozenset[int]) -> frozenset[int]:
    return frozenset(c for c in codes if c < 400)


def listed_codes(verb: str) -> frozenset[int]:
    """Every reply RFC 5321 §4.3.2 (and RFC 3207, RFC 4954 for their commands) lists for
    *verb*, in whatever state it is sent: its successes, its errors, 503 where it can be out
    of sequence, the codes any command may get."""
    return frozenset().union(*(expected_reply_codes(s, verb) for s in _COMMAND_STATES))


def _reset_claim(session: SessionModel, verb: str, fallback: str) -> Claim:
    """Nothing of a transaction is open: refusal due, for the reset that ended it when the
    server showed it refuses *verb* with nothing open; else for the command order."""
    if session.reset_by is not None and verb in session.refuses_unopened:
        return Claim(session.reset_by, REFUSALS, _RESET_RULES[session.reset_by])
    return Claim("SMTP-COMMAND-ORDER", REFUSALS, fallback)


def _sequence_claims(session: SessionModel, verb: str) -> list[Claim]:
    """Claims of the command order (RFC 5321 §4.1.4, §3.3; RFC 4954 §4 for AUTH)."""
    state = session.state
    if verb == "MAIL" and session.in_transaction:
        return [Claim("SMTP-COMMAND-ORDER", REFUSALS, _NESTED_MAIL_RULE)]
    if verb == "MAIL" and state is SessionState.GREETED and session.tls and session.hello_required:
        return [Claim("STARTTLS-RESET", REFUSALS, _STARTTLS_FORGETS_EHLO_RULE)]
    if verb == "RCPT" and not session.in_transaction:
        return [_reset_claim(session, verb, _RCPT_ORDER_RULE)]
    if verb == "DATA" and state is SessionState.MAIL:
        return [Claim("SMTP-COMMAND-ORDER", REFUSALS, _DATA_ORDER_RULE)]
    if verb == "DATA" and not session.in_transaction:
        return [_reset_claim(session, verb, _DATA_ORDER_RULE)]
    if verb != "AUTH":
        return []
    # RFC 4954 binds a server that implements AUTH: one that offered it, or accepted it once.
    known = "AUTH" in session.offers or session.authenticated
    refused = frozenset({C503_BAD_SEQUENCE}) | ANY_COMMAND
    if not session.tls:
        refused |= {C530_AUTH_REQUIRED}
    claims: list[Claim] = []
    if session.in_transaction:
        claims.append(Claim("AUTH-IN-TRANSACTION", refused if known else REFUSALS,
                            _AUTH_IN_TRANSACTION_RULE))
    if session.authenticated:
        claims.append(Claim("AUTH-ONCE", refused, _AUTH_AGAIN_RULE))
    return claims


def _own_claim(verb: str, flawed: bool, codes: frozenset[int]) -> Claim:
    """The command's own code set: QUIT, RSET and NOOP have a requirement each (their sections
    say what the receiver MUST send); the others' sets are RFC 5321 §4.3.2's."""
    if verb == "QUIT":
        return Claim("SMTP-QUIT", codes, _QUIT_RULE)
    if verb == "NOOP":
        return Claim("SMTP-NOOP", codes, _NOOP_RULE)
    if verb == "RSET" and not flawed:
        return Claim("SMTP-RSET", codes, _RSET_REPLY_RULE)
    return Claim("SMTP-REPLY-CODES", codes, _TABLE_RULE)


def predict(session: SessionModel, command: Command) -> Prediction:
    """The claims a conforming server's reply to *command* in *session* keeps."""
    state = session.state
    if state in (SessionState.CONNECTED, SessionState.DATA, SessionState.CLOSED):
        raise LocalProtocolError(f"no command is sent in state {state.name}")
    verb = command.verb.upper()
    tls_first = not session.tls and verb not in _BEFORE_TLS_ALWAYS and state is not SessionState.REFUSED
    if verb not in KNOWN_VERBS:
        # An empty line or an unrecognised word.
        codes = frozenset({C500_SYNTAX_ERROR, C502_NOT_IMPLEMENTED, C504_PARAM_NOT_IMPLEMENTED})
        codes |= ANY_COMMAND
        if state is SessionState.REFUSED:
            codes |= {C503_BAD_SEQUENCE}
        if tls_first:
            codes |= {C530_AUTH_REQUIRED}
        return _one("SMTP-UNKNOWN-COMMAND", codes, _UNKNOWN_RULE)
    if state is SessionState.REFUSED:
        if verb == "QUIT":
            return _one("SMTP-QUIT", frozenset({C221_CLOSING}) | ANY_COMMAND, _QUIT_RULE)
        return Prediction((
            Claim("SMTP-COMMAND-ORDER", REFUSALS, _REFUSED_RULE),
            Claim("SMTP-REPLY-CODES", frozenset({C503_BAD_SEQUENCE}) | ANY_COMMAND, _REFUSED_RULE),
        ))
    codes = listed_codes(verb)
    if tls_first:
        # RFC 3207 §4: "530 Must issue a STARTTLS command first".
        codes |= {C530_AUTH_REQUIRED}
    claims = _sequence_claims(session, verb)
    flaw = command.flaw
    if verb == "STARTTLS" and session.tls:
        # Implicit TLS (465) or after a completed STARTTLS: a second handshake cannot start.
        claims.append(Claim("STARTTLS-ONCE", REFUSALS, _TLS_AGAIN_RULE))
        codes = FAILURES
    if flaw is not None and (verb, flaw) in _FLAW_CLAIMS:
        requirement, allowed, rule = _FLAW_CLAIMS[(verb, flaw)]
        claims.append(Claim(requirement, allowed, rule))
    claims.append(_own_claim(verb, flaw is not None, codes))
    return Prediction(tuple(claims))


def predict_greeting() -> Prediction:
    """The claims the connection greeting keeps."""
    return _one("SMTP-REPLY-CODES", expected_reply_codes(SessionState.CONNECTED, GREETING),
                _GREETING_RULE)


def predict_end_of_data(session: SessionModel) -> Prediction:
    """The claims the reply to the end of mail data keeps."""
    return _one("SMTP-REPLY-CODES", expected_reply_codes(SessionState.DATA, END_DATA), _END_DATA_RULE)


def predict_auth_cancel(session: SessionModel) -> Prediction:
    """The claims the reply to ``*`` (an AUTH exchange cancelled) keeps."""
    return _one("AUTH-CANCEL", frozenset({C501_SYNTAX_PARAMS}) | ANY_COMMAND, _CANCEL_RULE)


def advance(
    session: SessionModel, command: Command, code: int, offers: frozenset[str] = frozenset()
) -> SessionModel:
    """The session after *command* got the final reply *code* (which predict() allowed);
    *offers* are the extension keywords an accepted EHLO advertised."""
    verb = command.verb.upper()
    if code == C421_SERVICE_UNAVAILABLE:
        # RFC 5321 §3.8: 421 means the server is closing the transmission channel.
        return replace(session, state=SessionState.CLOSED)
    before = session.state
    event = SessionEvent.REJECTED if verb not in KNOWN_VERBS else event_for_reply(verb, code)
    if event is SessionEvent.STARTTLS_OK:
        # RFC 3207 §4.2: "Upon completion of the TLS handshake, the SMTP protocol is reset to
        # the initial state (the state in SMTP after a server issues a 220 service ready
        # greeting)." -- from any state STARTTLS was accepted in.
        state = SessionState.GREETED
    elif event is SessionEvent.MAIL_OK and before is SessionState.GREETED:
        # RFC 5321 §4.1.4 asks the client to open with EHLO; a server may take MAIL without it.
        state = SessionState.MAIL
    else:
        try:
            state = transition(before, event)
        except LocalProtocolError:
            state = before  # a reply the model refused already; stay put
    reset_by = session.reset_by
    if event is SessionEvent.MAIL_OK:
        reset_by = None
    elif session.in_transaction and state in (SessionState.GREETED, SessionState.READY):
        reset_by = _RESETS.get(verb, reset_by)
    hello_required = session.hello_required or (
        verb == "MAIL" and before is SessionState.GREETED and code == C503_BAD_SEQUENCE
        and not session.tls and command.flaw is None
    )
    refuses_unopened = session.refuses_unopened
    if (verb in ("RCPT", "DATA") and before is SessionState.READY and session.reset_by is None
            and code >= 400 and command.flaw is None):
        refuses_unopened |= {verb}
    session = replace(session, state=state, reset_by=reset_by, hello_required=hello_required,
                      refuses_unopened=refuses_unopened)
    if verb in ("EHLO", "HELO") and code < 400:
        extended = verb == "EHLO"
        return replace(session, extended=extended, offers=offers if extended else frozenset())
    if verb == "STARTTLS" and code == C220_READY:
        return replace(session, tls=True, authenticated=False, extended=False, offers=frozenset())
    if verb == "AUTH" and code == C235_AUTH_OK:
        return replace(session, authenticated=True)
    return session


def after_greeting(session: SessionModel, code: int) -> SessionModel:
    """The session after the connection greeting *code*."""
    event = event_for_reply(GREETING, code)
    return replace(session, state=transition(session.state, event))


def after_end_of_data(session: SessionModel, code: int) -> SessionModel:
    """The session after the reply to the end of mail data: the transaction is over."""
    event = event_for_reply(END_DATA, code)
    return replace(session, state=transition(session.state, event), reset_by=None)


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
#: RFC 5321 §4.1.1.6: vrfy = "VRFY" SP String CRLF -- without the string.
VRFY_BARE = Command("VRFY", "VRFY", Flaw.SYNTAX)
HELP = Command("HELP", "HELP")
HELP_ARG = Command("HELP", "HELP MAIL")
QUIT = Command("QUIT", "QUIT")
STARTTLS = Command("STARTTLS", "STARTTLS")
AUTH = Command("AUTH", "AUTH PLAIN {auth_plain}")
#: AUTH without an initial response (RFC 4954 §4): a server that may authenticate answers 334,
#: and the model cancels the exchange (AUTH-CANCEL).
AUTH_ASK = Command("AUTH", "AUTH PLAIN")
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
    VRFY_BARE,
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
    STARTTLS, AUTH, AUTH_ASK, *MALFORMED, *UNKNOWN,
)

#: What the state machine draws from, weighted by repetition: transaction commands come often
#: so that transactions get deep; the first entries are what examples shrink towards.
WEIGHTED: tuple[Command, ...] = (
    MAIL, RCPT, NOOP, MAIL, RCPT, DATA, MAIL, RCPT, RSET, MAIL, RCPT, DATA, RSET, EHLO, EHLO,
    HELO, MAIL_NULL, NOOP_ARG, VRFY, HELP, HELP_ARG, QUIT, STARTTLS, AUTH, AUTH_ASK, *MALFORMED,
    *UNKNOWN,
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
    """*codes* as dialogue patterns (``4xx|5xx`` for every refusal)."""
    return "|".join(code_patterns(codes))


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
