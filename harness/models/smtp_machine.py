"""The stateful SMTP model run against a target: a hypothesis RuleBasedStateMachine.

Rules are synchronous (hypothesis has no async rules); each runs one command on an event loop
the machine owns, through an SMTPClient living on that loop. Every reply is checked against
the claims of harness.models.smtp_session.predict(), each naming its requirement: a claim
that holds is a passed check of its requirement, the first that breaks raises the failure of
its requirement alone (a ModelMismatch, which is a harness.checks.CheckFailed). On a mismatch
the machine writes the dialogue so far, ending with the failing expectation tagged with that
requirement, as a replayable file (harness.dialogue): hypothesis replays the minimal failing
example last, so the file left behind is the minimal one.

Before the random runs, probe_sessions() sends VRFY (with and without an argument) in every
setup of a session and at every step of a transaction, so that every run meets VRFY's whole
reply set, which depends on the session (policy before TLS, before AUTH, in a transaction).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from harness.checks import CheckFailed, PreconditionFailed, check, fail
from harness.clients.smtp import SMTPClient, SMTPClientError, SMTPConnectionClosed, SMTPTimeout
from harness.dialogue import (
    PRECONDITION,
    Auth,
    Comment,
    Connect,
    Expect,
    ExpectClosed,
    Need,
    Requirement,
    Send,
    StartTLS,
    Step,
    expand,
    write_dialogue,
)
from harness.models.smtp_session import (
    ALL_CODES,
    AUTH,
    AUTH_ASK,
    AUTH_CANCEL_LINE,
    DATA,
    EHLO,
    MAIL,
    MESSAGE_LINES,
    MX,
    QUIT,
    RCPT,
    REQUIREMENTS,
    STARTTLS,
    SUBMISSION,
    SUBMISSIONS,
    VRFY,
    VRFY_BARE,
    WEIGHTED,
    Claim,
    Command,
    Prediction,
    SessionModel,
    advance,
    after_end_of_data,
    after_greeting,
    describe_codes,
    predict,
    predict_auth_cancel,
    predict_end_of_data,
    predict_greeting,
)
from harness.protocol.errors import RemoteProtocolError
from harness.protocol.smtp import (
    C220_READY,
    C221_CLOSING,
    C235_AUTH_OK,
    C334_AUTH_CONTINUE,
    C354_START_DATA,
    Reply,
    SessionState,
    parse_ehlo_keywords,
)
from harness.replay import HELO_NAME, ReplayError, target_variables
from harness.suite import Evidence
from harness.targets import Target

T = TypeVar("T")

#: The reply grammar (RFC 5321 §4.2) and the rule that a server closes a connection on its own
#: only after 421 (RFC 5321 §3.8): what a reply that is not one, or none at all, breaks.
GRAMMAR = "SMTP-REPLY-SYNTAX"
CLOSE = "SMTP-CLOSE-421"
#: Every requirement the model can red (its tests list them all).
MODEL_REQUIREMENTS: tuple[str, ...] = (*REQUIREMENTS, GRAMMAR, CLOSE)
#: Environment variable naming the directory failing runs write their dialogue to.
DIALOGUE_DIR_ENV = "MAILHARNESS_DIALOGUE_DIR"
DEFAULT_DIALOGUE_DIR = Path(".mailharness") / "dialogues"
#: How long one reply may take.
REPLY_TIMEOUT = 15.0
#: How long the server may take to close the connection after 221 to QUIT.
QUIT_CLOSE_TIMEOUT = 3.0
#: Upper bound for one rule (a command, or a whole DATA exchange).
RULE_TIMEOUT = 60.0

#: How a session is prepared before the random commands, drawn per connection; the first is
#: what examples shrink towards. "auth" is listed twice: transactions need it on submission.
SETUPS = ("auth", "none", "ehlo", "tls", "auth")
STYLES = ("upper", "lower", "mixed")
#: The setups probe_sessions() goes through, and what it sends at each step.
PROBE_SETUPS = ("none", "ehlo", "tls", "auth")
#: Sent in every setup and at each step of a transaction: VRFY's replies depend on the session,
#: and AUTH without an initial response is what reaches the cancel exchange (AUTH-CANCEL).
PROBES: tuple[Command, ...] = (VRFY, VRFY_BARE, AUTH_ASK)

_CLOSE_RULE = ("RFC 5321 §3.8: \"An SMTP server MUST NOT intentionally close the connection under "
               "normal operational circumstances\" except after 221 to QUIT or after a 421 reply")
_GRAMMAR_RULE = ("RFC 5321 §4.2: a reply is a three-digit code, a text, CRLF; every line of a "
                 "multiline reply but the last has a hyphen after the code")
_QUIT_CLOSE_RULE = ("RFC 5321 §4.1.1.10: \"the receiver MUST send a \"221 OK\" reply, and then "
                    "close the transmission channel.\"")


def dialogue_dir(configured: str | os.PathLike[str] | None = None) -> Path:
    """Where failing runs write dialogues: *configured*, else $MAILHARNESS_DIALOGUE_DIR, else
    .mailharness/dialogues under the current directory."""
    if configured:
        return Path(configured)
    env = os.environ.get(DIALOGUE_DIR_ENV)
    return Path(env) if env else Path.cwd() / DEFAULT_DIALOGUE_DIR


class ModelMismatch(CheckFailed):
    """The server's reply broke the claim of ``requirement``; ``path`` is the written dialogue."""

    def __init__(self, requirement: str, detail: str, path: Path, marks: Sequence[Any] = ()) -> None:
        super().__init__(requirement, detail, marks)
        self.path = path


_MISMATCH_TYPES: dict[str, type[ModelMismatch]] = {}


def model_mismatch(requirement: str, detail: str, path: Path) -> ModelMismatch:
    """The failure of *requirement*, of a ModelMismatch class of its own: hypothesis tells
    failures apart by exception type and place, so each requirement's failure is shrunk (and
    reported) on its own and never shrinks into another requirement's."""
    base = fail(requirement, detail)  # refuses an id the registry does not know
    kind = _MISMATCH_TYPES.get(requirement)
    if kind is None:
        kind = type(f"ModelMismatch[{requirement}]", (ModelMismatch,), {"__module__": __name__})
        _MISMATCH_TYPES[requirement] = kind
    return kind(requirement, detail, path, base.marks)


class _NoReply(Exception):
    """What came instead of a reply: the connection closed, a timeout, or a malformed reply."""

    def __init__(self, requirement: str | None, text: str) -> None:
        super().__init__(text)
        self.requirement = requirement  # None: the command's own claim
        self.text = text


class SMTPSessionMachine(RuleBasedStateMachine):
    """Random SMTP sessions against *target*'s *services*, each reply checked by the model."""

    def __init__(
        self, target: Target, evidence: Evidence, *, services: Sequence[str] = (SUBMISSION,),
        dialogue_path: Path,
    ) -> None:
        super().__init__()
        self.target = target
        self.evidence = evidence
        self.services = tuple(services)
        self.dialogue_path = dialogue_path
        self.loop = asyncio.new_event_loop()
        self.client: SMTPClient | None = None
        self.session = SessionModel(state=SessionState.CLOSED)
        self.variables: dict[str, str] = {}
        self.steps: list[Step] = []
        # Keep the transcripts of this example only (the last one run is the one reported).
        evidence.transcripts.clear()

    # --- plumbing ---------------------------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(coro, RULE_TIMEOUT))

    def teardown(self) -> None:
        try:
            if self.client is not None:
                self._close_quietly(self.client)
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()

    def _close_quietly(self, client: SMTPClient) -> None:
        """Close a connection the example is done with. A transport broken by a failed TLS
        handshake inside TLS (a server that accepted a second STARTTLS) may fail to close
        (asyncio's SSL-in-SSL teardown); that is no finding, and must not hide the one made."""
        try:
            self._run(client.close())
        except Exception as exc:  # noqa: BLE001
            client.transcript.note(f"closing the connection failed: {type(exc).__name__}: {exc}")

    def _write(self, steps: list[Step], requirement: str | None) -> Path:
        header: list[Step] = [
            Comment("Written by the mailharness SMTP session model: the minimal failing example."),
            Comment(f"Replay it with: mailharness replay {self.dialogue_path.name} [--target FILE]"),
            Comment("The earlier replies are pinned to the codes seen: [precondition] steps."),
        ]
        if requirement is not None:
            header.append(Requirement((requirement,)))
        path = write_dialogue(self.dialogue_path, header + steps)
        note = f"minimal failing dialogue written to {path} (mailharness replay {path})"
        if note not in self.evidence.notes:  # shrinking writes it again and again
            self.evidence.note(note)
        return path

    def _fail(self, claim: Claim, got: str, sent: Send | None, last: Step | None = None,
              allowed: str | None = None, what: str | None = None) -> None:
        """Write the dialogue ending at the expectation *claim* failed (*last*, by default the
        claim's codes tagged with its requirement), then raise the failure of its requirement."""
        steps = list(self.steps)
        if sent is not None:
            steps.append(sent)
        allowed = allowed or describe_codes(claim.codes)
        steps.append(Comment(claim.rule))
        steps.append(Comment(f"{claim.requirement} allows {allowed}; got {got}."))
        steps.append(last if last is not None else Expect.of(claim.codes, requirement=claim.requirement))
        path = self._write(steps, claim.requirement)
        what = what or (f"after {sent.text!r}" if sent is not None else "at connection")
        raise model_mismatch(
            claim.requirement,
            f"{what} in state {self.session.state.name}: got {got}, {claim.requirement} allows "
            f"{allowed} ({claim.rule}). Dialogue: {path} (mailharness replay {path})",
            path,
        )

    def _no_reply(self, prediction: Prediction, problem: _NoReply, sent: Send | None) -> None:
        if problem.requirement == CLOSE:
            claim = Claim(CLOSE, ALL_CODES, _CLOSE_RULE)
        elif problem.requirement == GRAMMAR:
            claim = Claim(GRAMMAR, ALL_CODES, _GRAMMAR_RULE)
        else:
            claim = prediction.claims[-1]  # no reply in time: the command's own code set
        self._fail(claim, problem.text, sent)

    def _record(self, sent: Send | None, reply: Reply) -> None:
        if sent is not None:
            self.steps.append(sent)
        self.steps.append(Expect.of([reply.code], requirement=PRECONDITION))

    def _check(self, prediction: Prediction, sent: Send | None, reply: Reply) -> None:
        """Judge *reply*: the first claim it breaks fails; else every claim passes a check."""
        broken = prediction.broken_by(reply.code)
        if broken is not None:
            got = f"{reply.code} {reply.enhanced}" if reply.enhanced else str(reply.code)
            self._fail(broken, got, sent)
        what = f"{sent.text!r} in {self.session.state.name}" if sent is not None else "greeting"
        for claim in prediction.claims:
            check(claim.requirement, True, f"{what}: {reply.code}")
        check(GRAMMAR, True, f"{what}: a well-formed {reply.code} reply")
        check(CLOSE, True, f"{what}: answered, connection open")
        self._record(sent, reply)

    async def _read(self, timeout: float = REPLY_TIMEOUT) -> Reply:  # noqa: ASYNC109
        client = self.client
        assert client is not None
        try:
            return await client.read_reply(timeout)
        except SMTPConnectionClosed as exc:
            raise _NoReply(CLOSE, f"the connection closed without a reply ({exc})") from None
        except SMTPTimeout:
            raise _NoReply(None, f"no reply within {timeout:g} s") from None
        except RemoteProtocolError as exc:
            raise _NoReply(GRAMMAR, f"malformed reply: {exc.message}: {exc.data[:80]!r}") from None

    async def _send(self, data: bytes) -> None:
        client = self.client
        assert client is not None
        try:
            await client.send_raw(data)
        except SMTPClientError as exc:
            raise _NoReply(CLOSE, f"the connection closed before the command ({exc})") from None

    async def _exchange(self, line: str) -> Reply | _NoReply:
        """Send one line, read one reply (or what came instead)."""
        try:
            await self._send(expand(line, self.variables).encode("utf-8") + b"\r\n")
            return await self._read()
        except _NoReply as problem:
            return problem

    def _lost(self) -> None:
        """The connection is gone (QUIT, 421): the session is over; the dialogue's next
        "@ connect" opens a new session."""
        self.session = SessionModel(self.session.service, state=SessionState.CLOSED)
        if self.client is not None:
            self._run(self.client.close())
            self.client = None

    # --- one command ------------------------------------------------------------------------

    def _command(self, command: Command) -> Reply | None:
        """Send *command*, check and record its reply, advance the model."""
        prediction = predict(self.session, command)
        sent = Send(command.line)
        outcome = self._run(self._exchange(command.line))
        if isinstance(outcome, _NoReply):
            self._no_reply(prediction, outcome, sent)
        assert isinstance(outcome, Reply)
        reply = outcome
        if command.verb == "AUTH" and reply.code == C334_AUTH_CONTINUE and prediction.allows(334):
            self._record(sent, reply)
            return self._cancel_auth(command)
        self._check(prediction, sent, reply)
        if command.verb == "QUIT" and reply.code == C221_CLOSING:
            self._quit_closes()
        self._after(command, reply.code)
        return reply

    def _quit_closes(self) -> None:
        """After 221 to QUIT the server closes the connection (RFC 5321 §4.1.1.10)."""

        async def go() -> str | None:
            try:
                reply = await self._read(QUIT_CLOSE_TIMEOUT)
            except _NoReply as problem:
                return None if problem.requirement == CLOSE else problem.text
            return f"a {reply.code} reply"

        outcome = self._run(go())
        if outcome is not None:
            claim = Claim("SMTP-QUIT", frozenset(), _QUIT_CLOSE_RULE)
            self._fail(claim, f"{outcome}, the connection open", None,
                       ExpectClosed(requirement="SMTP-QUIT"), "the connection closed",
                       "after 221 to QUIT")
        check("SMTP-QUIT", True, "221, then the connection closed")
        self.steps.append(ExpectClosed(requirement=PRECONDITION))

    def _after(self, command: Command, code: int) -> None:
        offers: frozenset[str] = frozenset()
        if command.verb == "EHLO" and self.client is not None:
            last = self.client.last_reply
            if last is not None:
                offers = frozenset(parse_ehlo_keywords(last))
        self.session = advance(self.session, command, code, offers)
        if not self.session.open:
            self._lost()

    def _cancel_auth(self, command: Command) -> Reply | None:
        prediction = predict_auth_cancel(self.session)
        sent = Send(AUTH_CANCEL_LINE)
        outcome = self._run(self._exchange(AUTH_CANCEL_LINE))
        if isinstance(outcome, _NoReply):
            self._no_reply(prediction, outcome, sent)
        assert isinstance(outcome, Reply)
        self._check(prediction, sent, outcome)
        self._after(command, outcome.code)
        return outcome

    def _starttls(self) -> None:
        """STARTTLS through the client (which does the handshake on 220)."""
        client = self.client
        assert client is not None
        prediction = predict(self.session, STARTTLS)
        sent = Send(STARTTLS.line)
        offered = "STARTTLS" in self.session.offers

        async def go() -> Reply | str | _NoReply:
            try:
                return await client.starttls(self.target.client_ssl_context())
            except Exception as exc:
                last = client.last_reply
                if last is not None and last.code == C220_READY:
                    # The handshake after the 220 failed, by whatever error (asyncio's TLS
                    # inside TLS raises a TypeError).
                    if not prediction.allows(C220_READY):
                        return last
                    return f"TLS handshake failed after 220: {type(exc).__name__}: {exc}"
                if isinstance(exc, SMTPTimeout):
                    return _NoReply(None, f"no reply within {client.timeout:g} s")
                if isinstance(exc, RemoteProtocolError):
                    return _NoReply(GRAMMAR, f"malformed reply: {exc.message}: {exc.data[:80]!r}")
                if isinstance(exc, SMTPClientError):
                    return _NoReply(CLOSE, f"the connection closed without a reply ({exc})")
                raise

        outcome = self._run(go())
        if isinstance(outcome, str):
            # Not a reply the model judges: the TLS layer itself (certificates, the handshake).
            self.steps.append(StartTLS())
            path = self._write(list(self.steps), None)
            raise PreconditionFailed(f"{outcome}. Dialogue: {path}")
        if isinstance(outcome, _NoReply):
            self._no_reply(prediction, outcome, sent)
        assert isinstance(outcome, Reply)
        if outcome.code == C220_READY and prediction.allows(C220_READY):
            for claim in prediction.claims:
                check(claim.requirement, True, f"STARTTLS in {self.session.state.name}: 220")
            if offered:
                self.steps.append(Need("STARTTLS"))
            self.steps.append(StartTLS())
        else:
            self._check(prediction, sent, outcome)
        self._after(STARTTLS, outcome.code)

    def _data(self) -> None:
        reply = self._command(DATA)
        if reply is None or reply.code != C354_START_DATA or not self.session.open:
            return
        # In DATA now (advance() followed the 354): send the message, check the final reply.
        sends = [Send(line) for line in MESSAGE_LINES]
        payload = b"".join(s.render(self.variables) for s in sends)
        prediction = predict_end_of_data(self.session)

        async def go() -> Reply | _NoReply:
            try:
                await self._send(payload)
                return await self._read()
            except _NoReply as problem:
                return problem

        outcome = self._run(go())
        self.steps.extend(sends[:-1])
        if isinstance(outcome, _NoReply):
            self._no_reply(prediction, outcome, sends[-1])
        assert isinstance(outcome, Reply)
        self._check(prediction, sends[-1], outcome)
        self.session = after_end_of_data(self.session, outcome.code)
        if not self.session.open:
            self._lost()

    # --- connections ------------------------------------------------------------------------

    def _connect(self, service: str, setup: str) -> None:
        try:
            variables = target_variables(self.target, service)
        except ReplayError as exc:
            raise PreconditionFailed(f"model cannot run: {exc}") from None
        if "auth_plain" not in variables and service != MX:
            raise PreconditionFailed(f"model cannot run: target has no account on {service}")
        self.variables = variables
        endpoint = (self.target.receiver.mx if service == MX else
                    self.target.sender.submissions if service == SUBMISSIONS else
                    self.target.sender.submission)
        assert endpoint is not None
        self.steps.append(Connect(service))
        self.session = SessionModel(service, tls=endpoint.implicit_tls)
        transcript = self.evidence.transcript(f"model {service} smtp {endpoint.host}:{endpoint.port}")
        greeting = predict_greeting()

        async def go() -> SMTPClient | _NoReply:
            try:
                return await SMTPClient.connect(
                    endpoint.host, endpoint.port, implicit_tls=endpoint.implicit_tls,
                    ssl_context=self.target.client_ssl_context() if endpoint.implicit_tls else None,
                    transcript=transcript, timeout=REPLY_TIMEOUT, local_hostname=HELO_NAME,
                )
            except RemoteProtocolError as exc:
                return _NoReply(GRAMMAR, f"malformed greeting: {exc.message}: {exc.data[:80]!r}")
            except SMTPConnectionClosed as exc:
                return _NoReply(CLOSE, f"the connection closed before a greeting ({exc})")
            except SMTPTimeout:
                return _NoReply(None, f"no greeting within {REPLY_TIMEOUT:g} s")
            except (SMTPClientError, OSError) as exc:
                raise PreconditionFailed(f"cannot connect to {service}: {exc}") from None

        outcome = self._run(go())
        if isinstance(outcome, _NoReply):
            self._no_reply(greeting, outcome, None)
        assert isinstance(outcome, SMTPClient)
        self.client = outcome
        self._check(greeting, None, outcome.greeting)
        self.session = after_greeting(self.session, outcome.greeting.code)
        if not self.session.open:
            self._lost()
            return
        self._setup(setup)

    def _setup(self, setup: str) -> None:
        if setup == "none" or self.session.state is not SessionState.GREETED:
            return
        self._command(EHLO)
        if setup == "ehlo" or not self.session.open:
            return
        if not self.session.tls and "STARTTLS" in self.session.offers:
            self._starttls()
            if self.session.open and self.session.tls:
                self._command(EHLO)
        if setup != "auth" or not self.session.open or self.session.service == MX:
            return
        if "AUTH" not in self.session.offers:
            return
        prediction = predict(self.session, AUTH)
        sent = Send(AUTH.line)
        outcome = self._run(self._exchange(AUTH.line))
        if isinstance(outcome, _NoReply):
            self._no_reply(prediction, outcome, sent)
        assert isinstance(outcome, Reply)
        if outcome.code == C235_AUTH_OK and prediction.allows(C235_AUTH_OK):
            for claim in prediction.claims:
                check(claim.requirement, True, f"AUTH PLAIN in {self.session.state.name}: 235")
            self.steps.append(Auth())
        else:
            self._check(prediction, sent, outcome)
        self._after(AUTH, outcome.code)

    # --- the probes ---------------------------------------------------------------------------

    def probe(self, service: str, setup: str) -> None:
        """One session of *setup*: PROBES, then each step of a transaction and PROBES again
        (RFC 5321 §4.1.4: VRFY "can be used at any time during a session"), then QUIT."""
        self._connect(service, setup)
        for step in (MAIL, RCPT, None):
            for probe in PROBES:
                if self.session.open:
                    self._command(probe)
            if step is None or not self.session.open:
                break
            before = self.session.state
            self._command(step)
            if self.session.state is before or not self.session.open:
                break
        if self.session.open:
            self._command(QUIT)

    # --- rules ------------------------------------------------------------------------------

    @initialize(data=st.data())
    def connect(self, data: st.DataObject) -> None:
        service = data.draw(st.sampled_from(self.services), label="service")
        setup = data.draw(st.sampled_from(SETUPS), label="setup")
        self._connect(service, setup)

    @precondition(lambda self: not self.session.open)
    @rule(data=st.data())
    def reconnect(self, data: st.DataObject) -> None:
        service = data.draw(st.sampled_from(self.services), label="service")
        setup = data.draw(st.sampled_from(SETUPS), label="setup")
        self._connect(service, setup)

    @precondition(lambda self: self.session.open)
    @rule(command=st.sampled_from(WEIGHTED), style=st.sampled_from(STYLES))
    def send(self, command: Command, style: str) -> None:
        if command.verb == "STARTTLS" and command.flaw is None:
            self._starttls()
        elif command.verb == "DATA" and command.flaw is None:
            self._data()
        else:
            self._command(command.spelled(style))


def probe_sessions(
    target: Target, evidence: Evidence, *, services: Sequence[str], dialogue_path: Path
) -> None:
    """Run SMTPSessionMachine.probe() in every setup of every service; a failure raises (and
    writes its dialogue) like a failing random run."""
    for service in services:
        for setup in PROBE_SETUPS:
            machine = SMTPSessionMachine(target, evidence, services=(service,),
                                         dialogue_path=dialogue_path)
            try:
                machine.probe(service, setup)
            finally:
                machine.teardown()
