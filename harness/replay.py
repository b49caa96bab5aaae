"""Replay a dialogue (harness.dialogue) against a target's SMTP endpoint, recording a transcript."""

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
    Auth,
    Connect,
    Dialogue,
    Expect,
    ExpectClosed,
    ExpectNone,
    Send,
    StartTLS,
    Step,
    mismatch,
    template_variables,
)
from harness.protocol.errors import RemoteProtocolError
from harness.protocol.smtp import C220_READY, C235_AUTH_OK, Reply
from harness.targets import Endpoint, ProviderTarget, Target

#: The client's host name in {helo}.
HELO_NAME = "client.mailharness.invalid"
#: How long ``S: none`` listens for a reply that should not come.
QUIET_PERIOD = 1.0
#: How long to wait for each reply.
REPLY_TIMEOUT = 30.0


class ReplayError(Exception):
    """The dialogue cannot run against this target (no such endpoint, no account)."""


@dataclass(frozen=True, slots=True)
class Mismatch:
    """Where and how the server departed from the dialogue."""

    line: int
    where: str
    expected: str
    got: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(slots=True)
class ReplayResult:
    """The outcome of one replay: ``mismatch`` is None when every expectation held."""

    dialogue: Dialogue
    transcripts: list[Transcript] = field(default_factory=list)
    mismatch: Mismatch | None = None
    replies: list[Reply] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.mismatch is None

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

    def fail(self, step: Step, expected: str, got: str, message: str | None = None) -> Mismatch:
        text = message or f"expected {expected}, got {got}"
        return Mismatch(step.line, self.dialogue.where(step), expected, got, text)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None

    async def connect(self, step: Connect) -> Mismatch | None:
        await self.close()
        _, endpoint = _endpoint(self.target, step.service)
        self.variables = target_variables(self.target, step.service)
        transcript = Transcript(f"{step.service} smtp {endpoint.host}:{endpoint.port}")
        self.result.transcripts.append(transcript)
        try:
            client = await SMTPClient.connect(
                endpoint.host, endpoint.port, implicit_tls=endpoint.implicit_tls,
                ssl_context=self.target.client_ssl_context() if endpoint.implicit_tls else None,
                transcript=transcript, timeout=self.reply_timeout, local_hostname=HELO_NAME,
            )
        except (SMTPClientError, RemoteProtocolError, OSError) as exc:
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
            self.result.replies.append(reply)
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
                             f"malformed reply: {exc.message}: {exc.data[:80]!r}")
        self.result.replies.append(reply)
        if isinstance(step, ExpectClosed):
            return self.fail(step, "connection closed", str(reply.code))
        problem = mismatch(step, reply.code, reply.enhanced)
        if problem is None:
            return None
        got = f"{reply.code} {reply.enhanced}" if reply.enhanced else str(reply.code)
        return self.fail(step, step.describe(), got, problem)

    async def send(self, step: Send) -> Mismatch | None:
        if self.client is None:
            return self.fail(step, "a connection", "none", "no connection to send on")
        try:
            await self.client.send_raw(step.render(self.variables))
        except SMTPClientError as exc:
            return self.fail(step, "to send", "connection closed", f"cannot send: {exc}")
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
        if reply.code != C235_AUTH_OK:
            return self.fail(step, "235", str(reply.code))
        return None

    async def run(self) -> None:
        try:
            for step in self.dialogue.steps:
                outcome: Mismatch | None = None
                if isinstance(step, Connect):
                    outcome = await self.connect(step)
                elif isinstance(step, Send):
                    outcome = await self.send(step)
                elif isinstance(step, Expect | ExpectClosed | ExpectNone):
                    outcome = await self.expect(step)
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
