"""Replay a dialogue (harness.dialogue) against a target's SMTP endpoint, recording a transcript.

The replay stops at the first expectation that does not hold. Its outcome, per requirement:
the requirement of that line fails, those of the lines before it that matched pass, the rest
are not reached; a ``[precondition]`` line (or ``@ connect``, ``@ starttls``, ``@ auth``) that
does not hold leaves them all not reached, a ``[need]`` line or ``@ need`` not applicable."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field

from harness.clients.smtp import (
    SMTPClient,
    SMTPClientError,
    SMTPConnectionClosed,
    SMTPTimeout,
)
from harness.clients.transcript import Transcript
from harness.dialogue import (
    NEED,
    Auth,
    Connect,
    Dialogue,
    Expect,
    ExpectClosed,
    ExpectNone,
    Need,
    Send,
    StartTLS,
    Step,
    is_judged,
    mismatch,
    template_variables,
)
from harness.protocol.errors import RemoteProtocolError
from harness.protocol.smtp import C220_READY, C235_AUTH_OK, C250_OK, Reply, parse_ehlo_keywords
from harness.targets import Endpoint, ProviderTarget, Target

#: The client's host name in {helo}.
HELO_NAME = "client.mailharness.invalid"
#: How long ``S: none`` listens for a reply that should not come.
QUIET_PERIOD = 1.0
#: How long to wait for each reply.
REPLY_TIMEOUT = 30.0


class ReplayError(Exception):
    """The dialogue cannot run against this target (no such endpoint, no account)."""


#: The requirement a malformed reply fails, whatever the line (RFC 5321 §4.2 reply grammar).
GRAMMAR_REQUIREMENT = "SMTP-REPLY-SYNTAX"


@dataclass(frozen=True, slots=True)
class Mismatch:
    """Where and how the server departed from the dialogue. ``requirement`` is the one the
    line checks (None for a step the dialogue depends on: a ``[precondition]`` line, ``@
    connect``, ``@ starttls``, ``@ auth``)."""

    line: int
    where: str
    expected: str
    got: str
    message: str
    requirement: str | None = None

    def __str__(self) -> str:
        return f"{self.where}: {self.requirement or 'precondition'}: {self.message}"


@dataclass(frozen=True, slots=True)
class Matched:
    """An expectation of *requirement* that held, at *where*, with the code seen."""

    requirement: str
    where: str
    got: str

    def __str__(self) -> str:
        return f"{self.where}: {self.got}"


@dataclass(slots=True)
class ReplayResult:
    """The outcome of one replay: ``mismatch`` is the line that did not hold (None when
    every one did), ``not_applicable`` the reason a ``[need]`` line or ``@ need`` gave."""

    dialogue: Dialogue
    transcripts: list[Transcript] = field(default_factory=list)
    mismatch: Mismatch | None = None
    not_applicable: str | None = None
    matched: list[Matched] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.mismatch is None and self.not_applicable is None

    @property
    def failed(self) -> bool:
        """A requirement is red (a step that did not hold is not a failure of one)."""
        return self.mismatch is not None and self.mismatch.requirement is not None

    def verdicts(self) -> dict[str, tuple[str, str]]:
        """Each requirement of the dialogue (and the grammar's, when a reply was malformed):
        (pass | fail | not_reached | not_applicable, detail)."""
        ids = list(self.dialogue.requirements)
        failed = self.mismatch.requirement if self.mismatch is not None else None
        if failed is not None and failed not in ids:
            ids.append(failed)
        passed = {m.requirement: m for m in self.matched}
        result: dict[str, tuple[str, str]] = {}
        for req in ids:
            if req == failed and self.mismatch is not None:
                result[req] = ("fail", str(self.mismatch))
            elif req in passed:
                result[req] = ("pass", str(passed[req]))
            elif self.not_applicable is not None:
                result[req] = ("not_applicable", self.not_applicable)
            elif self.mismatch is not None:
                result[req] = ("not_reached", f"not reached: {self.mismatch}")
            else:
                result[req] = ("not_reached", "no line of the dialogue checked it")
        return result

    def render(self, *, mask_auth: bool = True) -> str:
        return "".join(t.render(mask_auth=mask_auth) for t in self.transcripts)


def _endpoint(target: Target, service: str) -> tuple[ProviderTarget, Endpoint]:
    if service == "mx":
        provider = target.receiver
        endpoint = provider.mx
    else:
        provider = target.sender
        endpoint = provider.submission if service == "submission" else provider.submissions
    if endpoint is None:
        raise ReplayError(f"target has no {service} endpoint")
    return provider, endpoint


def target_variables(target: Target, service: str) -> dict[str, str]:
    """The values of the dialogue variables (harness.dialogue.VARIABLES) for *service*."""
    provider, _ = _endpoint(target, service)
    values = {"domain": provider.domain, "helo": HELO_NAME}
    if target.sender.accounts:
        values["sender"] = target.sender.accounts[0].address
    if target.receiver.accounts:
        values["recipient"] = target.receiver.accounts[0].address
    if provider.accounts:
        acct = provider.accounts[0]
        values["local_recipient"] = acct.address
        values["user"] = acct.user
        values["password"] = acct.password
        plain = f"\0{acct.user}\0{acct.password}".encode()
        values["auth_plain"] = base64.b64encode(plain).decode("ascii")
    return values


def check_runnable(dialogue: Dialogue, target: Target) -> None:
    """ReplayError when *target* lacks an endpoint or a variable the dialogue uses."""
    service = ""
    values: dict[str, str] = {}
    for step in dialogue.steps:
        if isinstance(step, Connect):
            service = step.service
            values = target_variables(target, service)
        elif isinstance(step, Send):
            missing = [n for n in template_variables(step.text) if n not in values]
            if missing:
                raise ReplayError(
                    f"{dialogue.where(step)}: target has no account for {{{missing[0]}}} on {service}"
                )
        elif isinstance(step, Auth) and "auth_plain" not in values:
            raise ReplayError(f"{dialogue.where(step)}: target has no account to AUTH on {service}")


class _Replayer:
    def __init__(self, dialogue: Dialogue, target: Target, result: ReplayResult,
                 reply_timeout: float, quiet: float) -> None:
        self.dialogue = dialogue
        self.target = target
        self.result = result
        self.reply_timeout = reply_timeout
        self.quiet = quiet
        self.client: SMTPClient | None = None
        self.variables: Mapping[str, str] = {}
        #: A reply read but not yet matched (the greeting, read by SMTPClient.connect).
        self._pending: Reply | None = None
        #: What was sent since the last reply was read: an EHLO when it starts with one.
        self._sent = ""
        #: The service extensions the last EHLO reply of this connection advertised.
        self.offers: frozenset[str] | None = None

    def fail(self, step: Step, expected: str, got: str, message: str | None = None,
             requirement: str | None = None) -> Mismatch:
        text = message or f"expected {expected}, got {got}"
        if requirement is None and isinstance(step, Expect | ExpectClosed | ExpectNone):
            requirement = step.requirement if is_judged(step.requirement) else None
        return Mismatch(step.line, self.dialogue.where(step), expected, got, text, requirement)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None

    async def connect(self, step: Connect) -> Mismatch | None:
        await self.close()
        _, endpoint = _endpoint(self.target, step.service)
        self.variables = target_variables(self.target, step.service)
        self.offers = None
        self._sent = ""
        transcript = Transcript(f"{step.service} smtp {endpoint.host}:{endpoint.port}")
        self.result.transcripts.append(transcript)
        try:
            client = await SMTPClient.connect(
                endpoint.host, endpoint.port, implicit_tls=endpoint.implicit_tls,
                ssl_context=self.target.client_ssl_context() if endpoint.implicit_tls else None,
                transcript=transcript, timeout=self.reply_timeout, local_hostname=HELO_NAME,
            )
        except RemoteProtocolError as exc:
            return self.fail(step, "a well-formed greeting", "malformed reply",
                             f"malformed greeting: {exc.message}: {exc.data[:80]!r}",
                             GRAMMAR_REQUIREMENT)
        except (SMTPClientError, OSError) as exc:
            return self.fail(step, "a connection", type(exc).__name__, f"cannot connect: {exc}")
        self.client = client
        # SMTPClient.connect read the greeting; it is kept for the dialogue's first S: line.
        self._pending = client.greeting
        return None

    async def read(self) -> Reply:
        assert self.client is not None
        pending = self._pending
        if pending is not None:
            self._pending = None
            return pending
        return await self.client.read_reply(self.reply_timeout)

    def _seen(self, reply: Reply) -> None:
        """Keep *reply*; when it answers an EHLO, remember the extensions it advertises."""
        self.result.replies.append(reply)
        if reply.code == C250_OK and self._sent.lstrip().upper().startswith("EHLO"):
            self.offers = frozenset(parse_ehlo_keywords(reply))
        self._sent = ""

    async def expect(self, step: Expect | ExpectClosed | ExpectNone) -> Mismatch | None:
        if self.client is None:
            return self.fail(step, "a reply", "no connection", "no connection to read from")
        if isinstance(step, ExpectNone):
            if self._pending is not None:
                return self.fail(step, "no reply", str(self._pending.code))
            try:
                reply = await self.client.read_reply(self.quiet)
            except SMTPTimeout:
                return None
            except SMTPConnectionClosed:
                return self.fail(step, "no reply", "connection closed")
            except RemoteProtocolError as exc:
                return self.fail(step, "no reply", "malformed reply",
                                 f"malformed reply: {exc.message}: {exc.data[:80]!r}",
                                 GRAMMAR_REQUIREMENT)
            self._seen(reply)
            return self.fail(step, "no reply", str(reply.code))
        try:
            reply = await self.read()
        except SMTPConnectionClosed:
            if isinstance(step, ExpectClosed):
                return None
            return self.fail(step, step.describe(), "connection closed")
        except SMTPTimeout:
            expected = "connection closed" if isinstance(step, ExpectClosed) else step.describe()
            return self.fail(step, expected, f"no reply within {self.reply_timeout:g} s")
        except RemoteProtocolError as exc:
            return self.fail(step, "a well-formed reply", "malformed reply",
                             f"malformed reply: {exc.message}: {exc.data[:80]!r}",
                             GRAMMAR_REQUIREMENT)
        self._seen(reply)
        if isinstance(step, ExpectClosed):
            return self.fail(step, "connection closed", str(reply.code))
        problem = mismatch(step, reply.code, reply.enhanced)
        got = f"{reply.code} {reply.enhanced}" if reply.enhanced else str(reply.code)
        if problem is None:
            self._matched(step, got)
            return None
        return self.fail(step, step.describe(), got, problem)

    def _matched(self, step: Step, got: str) -> None:
        if isinstance(step, Expect | ExpectClosed | ExpectNone) and is_judged(step.requirement):
            assert step.requirement is not None
            self.result.matched.append(Matched(step.requirement, self.dialogue.where(step), got))

    async def send(self, step: Send) -> Mismatch | None:
        if self.client is None:
            return self.fail(step, "a connection", "none", "no connection to send on")
        data = step.render(self.variables)
        try:
            await self.client.send_raw(data)
        except SMTPClientError as exc:
            return self.fail(step, "to send", "connection closed", f"cannot send: {exc}")
        self._sent += data.decode("utf-8", "replace")
        return None

    def need(self, step: Need) -> str | None:
        """Why the dialogue does not apply (None when the server offers the extension)."""
        where = self.dialogue.where(step)
        if self.offers is None:
            return f"{where}: no EHLO reply on this connection says whether {step.keyword} is offered"
        if step.keyword not in self.offers:
            return f"{where}: the server does not advertise {step.keyword} (EHLO)"
        return None

    async def starttls(self, step: StartTLS) -> Mismatch | None:
        client = self.client
        if client is None:
            return self.fail(step, "a connection", "none", "no connection for STARTTLS")
        if self._pending is not None:
            return self.fail(step, "STARTTLS", "an unread reply",
                             f"reply {self._pending.code} was not read (add an S: line)")
        try:
            reply = await client.starttls(self.target.client_ssl_context())
        except (SMTPClientError, RemoteProtocolError) as exc:
            return self.fail(step, "220 and a TLS handshake", type(exc).__name__,
                             f"STARTTLS failed: {exc}")
        self.result.replies.append(reply)
        if reply.code != C220_READY:
            return self.fail(step, "220", str(reply.code))
        # RFC 3207 §4.2: the client forgets what the server said before TLS.
        self.offers = None
        self._sent = ""
        return None

    async def auth(self, step: Auth) -> Mismatch | None:
        client = self.client
        if client is None:
            return self.fail(step, "a connection", "none", "no connection for AUTH")
        if self._pending is not None:
            return self.fail(step, "AUTH", "an unread reply",
                             f"reply {self._pending.code} was not read (add an S: line)")
        line = f"AUTH PLAIN {self.variables['auth_plain']}"
        try:
            await client.send_raw(line.encode("ascii") + b"\r\n")
            reply = await client.read_reply(self.reply_timeout)
        except (SMTPClientError, RemoteProtocolError) as exc:
            return self.fail(step, "235", type(exc).__name__, f"AUTH failed: {exc}")
        self.result.replies.append(reply)
        self._sent = ""
        if reply.code != C235_AUTH_OK:
            return self.fail(step, "235", str(reply.code))
        return None

    async def run(self) -> None:
        try:
            for step in self.dialogue.steps:
                outcome: Mismatch | None = None
                if isinstance(step, Connect):
                    outcome = await self.connect(step)
                elif isinstance(step, Need):
                    self.result.not_applicable = self.need(step)
                    if self.result.not_applicable is not None:
                        return
                elif isinstance(step, Send):
                    outcome = await self.send(step)
                elif isinstance(step, Expect | ExpectClosed | ExpectNone):
                    outcome = await self.expect(step)
                    if (outcome is not None and step.requirement == NEED
                            and outcome.requirement is None and outcome.got[:3].isdigit()):
                        self.result.not_applicable = (
                            f"{outcome.where}: the server answered {outcome.got}, not "
                            f"{outcome.expected}, which this dialogue needs"
                        )
                        return
                elif isinstance(step, StartTLS):
                    outcome = await self.starttls(step)
                elif isinstance(step, Auth):
                    outcome = await self.auth(step)
                if outcome is not None:
                    self.result.mismatch = outcome
                    return
        finally:
            await self.close()


async def replay(
    dialogue: Dialogue, target: Target, *, reply_timeout: float = REPLY_TIMEOUT,  # noqa: ASYNC109
    quiet: float = QUIET_PERIOD,
) -> ReplayResult:
    """Run *dialogue* against *target*, stopping at the first mismatch. Raises ReplayError
    (before connecting) when the target lacks an endpoint or account the dialogue needs."""
    check_runnable(dialogue, target)
    result = ReplayResult(dialogue)
    await _Replayer(dialogue, target, result, reply_timeout, quiet).run()
    return result
