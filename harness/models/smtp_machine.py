"""The stateful SMTP model run against a target: a hypothesis RuleBasedStateMachine.

Rules are synchronous (hypothesis has no async rules); each runs one command on an event loop
the machine owns, through an SMTPClient living on that loop. Every reply is checked against
harness.models.smtp_session.predict(). On a mismatch the machine writes the dialogue so far,
ending with the failing expectation, as a replayable file (harness.dialogue): hypothesis
replays the minimal failing example last, so the file left behind is the minimal one.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from harness.clients.smtp import SMTPClient, SMTPClientError
from harness.dialogue import (
    Auth,
    Comment,
    Connect,
    Expect,
    Requirement,
    Send,
    StartTLS,
    Step,
    expand,
    write_dialogue,
)
from harness.models.smtp_session import (
    AUTH,
    AUTH_CANCEL_LINE,
    DATA,
    EHLO,
    MESSAGE_LINES,
    MX,
    STARTTLS,
    SUBMISSION,
    SUBMISSIONS,
    WEIGHTED,
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
)
from harness.protocol.errors import RemoteProtocolError
from harness.protocol.smtp import (
    C220_READY,
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

#: Requirement ids the model checks (and writes into its dialogues).
REQUIREMENTS = ("SMTP-COMMAND-ORDER", "SMTP-REPLY-CODES")
#: Environment variable naming the directory failing runs write their dialogue to.
DIALOGUE_DIR_ENV = "MAILHARNESS_DIALOGUE_DIR"
DEFAULT_DIALOGUE_DIR = Path(".mailharness") / "dialogues"
#: How long one reply may take.
REPLY_TIMEOUT = 15.0
#: Upper bound for one rule (a command, or a whole DATA exchange).
RULE_TIMEOUT = 60.0

#: How a session is prepared before the random commands, drawn per connection; the first is
#: what examples shrink towards. "auth" is listed twice: transactions need it on submission.
SETUPS = ("auth", "none", "ehlo", "tls", "auth")
STYLES = ("upper", "lower", "mixed")


def dialogue_dir(configured: str | os.PathLike[str] | None = None) -> Path:
    """Where failing runs write dialogues: *configured*, else $MAILHARNESS_DIALOGUE_DIR, else
    .mailharness/dialogues under the current directory."""
    if configured:
        return Path(configured)
    env = os.environ.get(DIALOGUE_DIR_ENV)
    return Path(env) if env else Path.cwd() / DEFAULT_DIALOGUE_DIR


class ModelMismatch(AssertionError):
    """The server's reply was not one the RFCs allow; ``path`` is the written dialogue."""

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        self.path = path


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
        self.steps: list[Step] = [
            Comment("Written by the mailharness SMTP session model: the minimal failing example."),
            Comment(f"Replay it with: mailharness replay {dialogue_path.name} [--target FILE]"),
            Requirement(REQUIREMENTS),
        ]
        # Keep the transcripts of this example only (the last one run is the one reported).
        evidence.transcripts.clear()

    # --- plumbing ---------------------------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(coro, RULE_TIMEOUT))

    def teardown(self) -> None:
        try:
            if self.client is not None:
                self._run(self.client.close())
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()

    def _fail(self, expected: Prediction, got: str, sent: Send | None) -> None:
        """Write the dialogue ending at the failing expectation, then raise."""
        steps = list(self.steps)
        if sent is not None:
            steps.append(sent)
        steps.append(Comment(f"{expected.rule}"))
        steps.append(Comment(f"The model allows {describe_codes(expected.codes)}; got {got}."))
        steps.append(Expect.of(expected.codes))
        path = write_dialogue(self.dialogue_path, steps)
        what = f"after {sent.text!r}" if sent is not None else "at connection"
        self._note_written(path)
        raise ModelMismatch(
            f"{what} in state {self.session.state.name}: got {got}, the model allows "
            f"{describe_codes(expected.codes)} ({expected.rule}). Dialogue: {path} "
            f"(mailharness replay {path})",
            path,
        )

    def _note_written(self, path: Path) -> None:
        note = f"minimal failing dialogue written to {path} (mailharness replay {path})"
        if note not in self.evidence.notes:  # shrinking writes it again and again
            self.evidence.note(note)

    def _record(self, sent: Send | None, reply: Reply) -> None:
        if sent is not None:
            self.steps.append(sent)
        self.steps.append(Expect.of([reply.code]))

    def _check(self, prediction: Prediction, sent: Send | None, reply: Reply) -> None:
        if not prediction.allows(reply.code):
            got = f"{reply.code} {reply.enhanced}" if reply.enhanced else str(reply.code)
            self._fail(prediction, got, sent)
        self._record(sent, reply)

    async def _exchange(self, line: str) -> Reply | str:
        """Send one line, read one reply; a string describes what went wrong instead."""
        client = self.client
        assert client is not None
        try:
            await client.send_raw(expand(line, self.variables).encode("utf-8") + b"\r\n")
            return await client.read_reply(REPLY_TIMEOUT)
        except SMTPClientError as exc:
            return f"{type(exc).__name__}: {exc}"
        except RemoteProtocolError as exc:
            return f"malformed reply {exc.data[:80]!r}"

    def _lost(self) -> None:
        """The connection is gone (QUIT, 421): the session is over. The dialogue does not
        assert the close itself; its next "@ connect" opens a new session."""
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
        if isinstance(outcome, str):
            self._fail(prediction, outcome, sent)
        assert isinstance(outcome, Reply)
        reply = outcome
        if command.verb == "AUTH" and reply.code == C334_AUTH_CONTINUE and prediction.allows(334):
            self._record(sent, reply)
            return self._cancel_auth(command)
        self._check(prediction, sent, reply)
        self._after(command, reply.code)
        return reply

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
        if isinstance(outcome, str):
            self._fail(prediction, outcome, sent)
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

        async def go() -> Reply | str:
            try:
                return await client.starttls(self.target.client_ssl_context())
            except (SMTPClientError, RemoteProtocolError) as exc:
                last = client.last_reply
                if last is not None and last.code == C220_READY:
                    if not prediction.allows(C220_READY):
                        return last
                    return f"TLS handshake failed after 220: {type(exc).__name__}: {exc}"
                return f"{type(exc).__name__}: {exc}"

        outcome = self._run(go())
        if isinstance(outcome, str) and outcome.startswith("TLS handshake failed"):
            self.steps.append(StartTLS())
            path = write_dialogue(self.dialogue_path, self.steps)
            self._note_written(path)
            raise ModelMismatch(f"{outcome}. Dialogue: {path} (mailharness replay {path})", path)
        if isinstance(outcome, str):
            self._fail(prediction, outcome, sent)
        assert isinstance(outcome, Reply)
        if outcome.code == C220_READY and prediction.allows(C220_READY):
            self.steps.append(StartTLS())
        else:
            self._check(prediction, sent, outcome)
        self._after(STARTTLS, outcome.code)

    def _data(self) -> None:
        reply = self._command(DATA)
        if reply is None or reply.code != C354_START_DATA or not self.session.open:
            return
        # In DATA now (advance() followed the 354): send the message, check the final reply.
        client = self.client
        assert client is not None
        sends = [Send(line) for line in MESSAGE_LINES]
        payload = b"".join(s.render(self.variables) for s in sends)
        prediction = predict_end_of_data(self.session)

        async def go() -> Reply | str:
            try:
                await client.send_raw(payload)
                return await client.read_reply(REPLY_TIMEOUT)
            except SMTPClientError as exc:
                return f"{type(exc).__name__}: {exc}"
            except RemoteProtocolError as exc:
                return f"malformed reply {exc.data[:80]!r}"

        outcome = self._run(go())
        self.steps.extend(sends[:-1])
        if isinstance(outcome, str):
            self._fail(prediction, outcome, sends[-1])
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
            raise AssertionError(f"model cannot run: {exc}") from None
        if "auth_plain" not in variables and service != MX:
            raise AssertionError(f"model cannot run: target has no account on {service}")
        self.variables = variables
        endpoint = (self.target.receiver.mx if service == MX else
                    self.target.sender.submissions if service == SUBMISSIONS else
                    self.target.sender.submission)
        assert endpoint is not None
        self.steps.append(Connect(service))
        self.session = SessionModel(service, tls=endpoint.implicit_tls)
        transcript = self.evidence.transcript(f"model {service} smtp {endpoint.host}:{endpoint.port}")

        async def go() -> SMTPClient | str:
            try:
                return await SMTPClient.connect(
                    endpoint.host, endpoint.port, implicit_tls=endpoint.implicit_tls,
                    ssl_context=self.target.client_ssl_context() if endpoint.implicit_tls else None,
                    transcript=transcript, timeout=REPLY_TIMEOUT, local_hostname=HELO_NAME,
                )
            except (SMTPClientError, RemoteProtocolError) as exc:
                return f"{type(exc).__name__}: {exc}"

        outcome = self._run(go())
        greeting = Prediction(frozenset({220, 554, 421}), "RFC 5321 §4.3.2: CONNECTION "
                              "ESTABLISHMENT \"S: 220  E: 554\"")
        if isinstance(outcome, str):
            self._fail(greeting, outcome, None)
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
        outcome = self._run(self._exchange(AUTH.line))
        if isinstance(outcome, str):
            self._fail(prediction, outcome, Send(AUTH.line))
        assert isinstance(outcome, Reply)
        if not prediction.allows(outcome.code):
            self._fail(prediction, str(outcome.code), Send(AUTH.line))
        if outcome.code == C235_AUTH_OK:
            self.steps.append(Auth())
        else:
            self._record(Send(AUTH.line), outcome)
        self._after(AUTH, outcome.code)

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
