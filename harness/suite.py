"""What suites stand on: evidence recording, sessions opened against a target, messages, waiting."""

from __future__ import annotations

import asyncio
import email.utils
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from harness.checks import check as check
from harness.checks import fail as fail
from harness.checks import grammar_failure
from harness.checks import not_applicable as not_applicable
from harness.checks import precondition as precondition
from harness.clients.imap import IMAPClient
from harness.clients.smtp import SMTPClient
from harness.clients.transcript import Transcript
from harness.clients.wait import wait_for_message
from harness.dns import send_update
from harness.protocol.errors import RemoteProtocolError
from harness.protocol.smtp import Reply
from harness.targets import Account, Endpoint, ProviderTarget, Target

T = TypeVar("T")

#: Header fields an MTA or MDA may prepend on the way (trace and filter results).
TRACE_FIELDS = frozenset(
    {
        "received", "return-path", "delivered-to", "x-original-to", "x-spam-status",
        "x-spam-score", "x-spam-flag", "x-spam-level", "x-spam-checker-version",
        "authentication-results", "received-spf", "dkim-signature", "arc-seal",
        "arc-message-signature", "arc-authentication-results",
    }
)


@dataclass
class Evidence:
    """Everything one test saw: transcripts of every session and notes on the environment."""

    transcripts: list[Transcript] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def transcript(self, name: str) -> Transcript:
        transcript = Transcript(name)
        self.transcripts.append(transcript)
        return transcript

    def note(self, text: str) -> None:
        self.notes.append(text)


def run(coro: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
    """Run one scenario on a fresh event loop, bounded in time."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    try:
        return asyncio.run(bounded())
    except RemoteProtocolError as exc:
        # A malformed reply or response is a finding of the grammar requirement, named once
        # with its bytes; the test's other checks are not reached.
        raise grammar_failure(exc) from exc


def need(condition: object, reason: str) -> None:
    """Skip the test (with a reason the report shows) when the target cannot take it."""
    if not condition:
        pytest.skip(reason)


def account(provider: ProviderTarget, index: int = 0) -> Account:
    need(len(provider.accounts) > index, f"{provider.domain}: target lists no account #{index + 1}")
    return provider.accounts[index]


def token() -> str:
    """A unique marker that identifies one test's message wherever it lands."""
    return "mh-" + uuid.uuid4().hex


def make_message(
    *, sender: str, recipient: str, subject: str, body: str | bytes, mark: str,
    date: bool = True, message_id: bool = True, extra: Sequence[tuple[str, str]] = (),
) -> bytes:
    """A well-formed RFC 5322 message (CRLF) carrying *mark* in a header and in the body."""
    headers = [("From", sender), ("To", recipient), ("Subject", f"{subject} [{mark}]")]
    if date:
        headers.append(("Date", email.utils.formatdate(localtime=False)))
    if message_id:
        headers.append(("Message-ID", f"<{mark}@client.mailharness.invalid>"))
    headers.append(("X-Mailharness-Token", mark))
    headers.extend(extra)
    head = b"".join(f"{k}: {v}\r\n".encode() for k, v in headers)
    text = body if isinstance(body, bytes) else body.encode("utf-8")
    text = re.sub(rb"\r?\n", b"\r\n", text)
    if not text.endswith(b"\r\n"):
        text += b"\r\n"
    return head + b"\r\n" + text + mark.encode() + b"\r\n"


def split_added_fields(delivered: bytes, original: bytes) -> tuple[list[bytes], bytes]:
    """If *delivered* is *original* with header fields prepended, return (those fields, b"").
    Otherwise return the fields parsed before the point where the two diverge, and the rest."""
    if delivered.endswith(original):
        prefix = delivered[: len(delivered) - len(original)]
        return _fields(prefix), b""
    return [], delivered


def _fields(block: bytes) -> list[bytes]:
    fields: list[bytes] = []
    for line in block.split(b"\r\n"):
        if not line:
            continue
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\r\n" + line
        else:
            fields.append(line)
    return fields


def field_name(raw_field: bytes) -> str:
    return raw_field.split(b":", 1)[0].decode("ascii", "replace").strip().lower()


def header_block(message: bytes) -> bytes:
    end = message.find(b"\r\n\r\n")
    return message if end < 0 else message[: end + 2]


def header_values(message: bytes, name: str) -> list[str]:
    wanted = name.lower()
    return [
        f.split(b":", 1)[1].decode("utf-8", "replace").strip()
        for f in _fields(header_block(message)) if b":" in f and field_name(f) == wanted
    ]


# --- scripted DNS ---------------------------------------------------------------------

#: The zone suites change with RFC 2136 UPDATE; the target's zone server must serve it.
SCRIPTED_ZONE = "test.mailharness.invalid"


@dataclass(frozen=True)
class ScriptedDNS:
    """The zone server the target's MTA resolves through, and where harness sinks may listen."""

    host: str
    port: int
    outbound_port: int
    sinks: tuple[str, ...]

    async def point(
        self, evidence: Evidence, domain: str, *, mx: Sequence[tuple[int, str]] = (),
        a: str | None = None,
    ) -> None:
        """Give *domain* MX records (preference, address) — hosts mx<N>.<domain> — and/or an A."""
        records: list[tuple[str, int, str, str]] = []
        for index, (preference, address) in enumerate(mx):
            host = f"mx{index}.{domain}."
            records += [(f"{domain}.", 60, "MX", f"{preference} {host}"), (host, 60, "A", address)]
        if a is not None:
            records.append((f"{domain}.", 60, "A", a))
        await send_update(self.host, self.port, SCRIPTED_ZONE, add=records)
        shown = ", ".join(f"MX {p} → {addr}" for p, addr in mx) or f"no MX, A {a}"
        evidence.note(f"DNS UPDATE {domain}: {shown}")


def dns_control(target: Target, provider: ProviderTarget | None = None) -> ScriptedDNS | None:
    """The zone server and sinks for tests of an MTA's routing (the sender's, unless *provider*
    is given), or None when the target lacks any of them."""
    mta = provider or target.sender
    if target.dns is None or not target.dns.update or mta.outbound_port is None:
        return None
    if not target.sink_addresses:
        return None
    return ScriptedDNS(target.dns.host, target.dns.port, mta.outbound_port, target.sink_addresses)


def scripted_dns(
    target: Target, sinks: int, provider: ProviderTarget | None = None
) -> ScriptedDNS:
    """What tests of an MTA's routing need (the sender's, unless *provider* is given); skips
    with the reason when the target lacks it."""
    mta = provider or target.sender
    need(target.dns is not None and target.dns.update,
         "target's MTA does not resolve through a zone server the harness may update")
    need(mta.outbound_port is not None,
         f"{mta.domain}: target does not give its MTA's outbound port")
    need(len(target.sink_addresses) >= sinks, f"target gives fewer than {sinks} sink addresses")
    control = dns_control(target, provider)
    assert control is not None
    return control


# --- sessions -------------------------------------------------------------------------


async def smtp_connect(target: Target, evidence: Evidence, endpoint: Endpoint, label: str) -> SMTPClient:
    transcript = evidence.transcript(f"{label} smtp {endpoint.host}:{endpoint.port}")
    return await SMTPClient.connect(
        endpoint.host, endpoint.port, implicit_tls=endpoint.implicit_tls,
        ssl_context=target.client_ssl_context() if endpoint.implicit_tls else None,
        transcript=transcript, timeout=30.0,
    )


async def starttls_if_offered(client: SMTPClient, target: Target) -> None:
    """STARTTLS and EHLO again, when offered. A 454 (RFC 3207 §4: "TLS not available due to
    temporary reason") makes the test not applicable; another refusal is a failed precondition
    (SUBMIT-STARTTLS judges STARTTLS itself)."""
    if "STARTTLS" in client.extensions and not client.is_tls:
        reply = await client.starttls(target.client_ssl_context())
        need(reply.code != 454, "STARTTLS is offered but temporarily unavailable (454)")
        precondition(reply.code == 220, f"STARTTLS answered {reply.code}, not 220")
        await client.ehlo()


async def open_submission(
    target: Target, evidence: Evidence, *, implicit: bool = False, login: bool = True,
    account_index: int = 0,
) -> SMTPClient:
    """A submission session ready for MAIL: EHLO, STARTTLS when offered, AUTH PLAIN."""
    provider = target.sender
    endpoint = provider.submissions if implicit else provider.submission
    need(endpoint is not None, f"target has no {'submissions' if implicit else 'submission'} endpoint")
    assert endpoint is not None
    acct = account(provider, account_index) if login else None
    client = await smtp_connect(target, evidence, endpoint, "submission")
    try:
        await client.ehlo()
        await starttls_if_offered(client, target)
        if acct is not None:
            reply = await client.auth_plain(acct.user, acct.password)
            precondition(reply.code == 235, f"AUTH PLAIN for {acct.user} answered {reply.code}, not 235")
    except BaseException:
        await client.close()
        raise
    return client


async def open_mx(
    target: Target, evidence: Evidence, provider: ProviderTarget, *, starttls: bool = True
) -> SMTPClient:
    """An unauthenticated session with a provider's inbound MX, as another MTA would open it:
    EHLO, then STARTTLS (and EHLO again) when offered unless *starttls* is False."""
    need(provider.mx is not None, f"{provider.domain}: target has no mx endpoint")
    assert provider.mx is not None
    client = await smtp_connect(target, evidence, provider.mx, "mx")
    try:
        await client.ehlo("relay.mailharness.invalid")
        if starttls:
            await starttls_if_offered(client, target)
    except BaseException:
        await client.close()
        raise
    return client


def imap_endpoint(provider: ProviderTarget) -> Endpoint:
    endpoint = provider.imaps or provider.imap
    need(endpoint is not None, f"{provider.domain}: target has no imap endpoint")
    assert endpoint is not None
    return endpoint


def imap_connector(
    target: Target, evidence: Evidence, provider: ProviderTarget, endpoint: Endpoint | None = None
) -> Callable[[], Awaitable[IMAPClient]]:
    chosen = endpoint or imap_endpoint(provider)

    async def connect() -> IMAPClient:
        transcript = evidence.transcript(f"imap {chosen.host}:{chosen.port}")
        return await IMAPClient.connect(
            chosen.host, chosen.port, implicit_tls=chosen.implicit_tls,
            ssl_context=target.client_ssl_context() if chosen.implicit_tls else None,
            transcript=transcript, timeout=30.0,
        )

    return connect


#: What a test that needs an encrypted IMAP session says when the server has no TLS at all.
NO_TLS_HINT = ("IMAP endpoint offers neither TLS nor STARTTLS (for a server without TLS on a "
               "trusted network, set allow_plaintext = true in the target, or --allow-plaintext)")


async def imap_secure(client: IMAPClient, target: Target) -> None:
    """Make an IMAP session fit for LOGIN: TLS already, or STARTTLS when offered; in plain text
    only when the target allows it (``allow_plaintext``); otherwise not applicable."""
    if client.is_tls:
        return
    if not client.capabilities:
        await client.capability()
    if "STARTTLS" not in client.capabilities:
        need(target.allow_plaintext, NO_TLS_HINT)
        return
    result = await client.starttls(target.client_ssl_context())
    precondition(result.ok, f"IMAP STARTTLS answered {result.status}")


async def open_imap(
    target: Target, evidence: Evidence, provider: ProviderTarget, *, account_index: int = 0,
    select: str | None = "INBOX",
) -> IMAPClient:
    """An IMAP session, over TLS (implicit or STARTTLS), logged in, with *select* selected."""
    acct = account(provider, account_index)
    client = await imap_connector(target, evidence, provider)()
    try:
        await imap_secure(client, target)
        result = await client.login(acct.user, acct.password)
        precondition(result.ok, f"IMAP LOGIN for {acct.user} answered {result.status}")
        if select is not None:
            selected = await client.select(select)
            precondition(selected.result.ok, f"SELECT {select} answered {selected.result.status}")
    except BaseException:
        await client.close()
        raise
    return client


async def submit(
    target: Target, evidence: Evidence, message: bytes, recipients: Sequence[str], *,
    account_index: int = 0,
) -> tuple[Reply, str]:
    """Submit *message* as the sender account; return the final DATA reply and envelope sender."""
    acct = account(target.sender, account_index)
    client = await open_submission(target, evidence, account_index=account_index)
    try:
        params: list[str] = []
        if any(b > 0x7F for b in message):
            # RFC 6152 §3: 8-bit content is sent only to a server that advertises 8BITMIME,
            # declared with BODY=8BITMIME.
            need("8BITMIME" in client.extensions, "server does not advertise 8BITMIME")
            params.append("BODY=8BITMIME")
        if not all(a.isascii() for a in (acct.address, *recipients)):
            # RFC 6531 §3.4: UTF-8 addresses need the SMTPUTF8 parameter, where advertised.
            need("SMTPUTF8" in client.extensions, "server does not advertise SMTPUTF8")
            params.append("SMTPUTF8")
        mail = await client.mail(acct.address, params)
        precondition(mail.code == 250, f"submission: MAIL FROM answered {mail.code}")
        for rcpt in recipients:
            reply = await client.rcpt(rcpt)
            precondition(reply.code in (250, 251), f"submission: RCPT TO:<{rcpt}> answered {reply.code}")
        data = await client.data(message)
        precondition(data.code == 250, f"submission: DATA answered {data.code}")
        await client.quit()
    finally:
        await client.close()
    return data, acct.address


async def wait_delivery(
    target: Target, evidence: Evidence, provider: ProviderTarget, mark: str, *,
    mailbox: str = "INBOX", account_index: int = 0, timeout: float | None = None,
) -> tuple[int, bytes]:
    """Wait (IDLE, or polling) until a message carrying *mark* is in *mailbox*; return (uid, bytes)."""
    acct = account(provider, account_index)
    endpoint = imap_endpoint(provider)
    started = time.monotonic()
    limit = target.delivery_timeout if timeout is None else timeout
    try:
        return await wait_for_message(
            imap_connector(target, evidence, provider, endpoint), acct.user, acct.password,
            lambda data: mark.encode() in data, timeout=limit, mailbox=mailbox,
            starttls_context=None if endpoint.implicit_tls else target.client_ssl_context(),
        )
    except TimeoutError:
        evidence.note(f"no message marked {mark} reached {acct.user}/{mailbox} within {limit:.0f} s")
        raise AssertionError(
            f"message {mark} did not reach {acct.address} {mailbox} within {limit:.0f} s"
        ) from None
    finally:
        evidence.note(f"waited {time.monotonic() - started:.2f} s for {mark} in {mailbox}")


# --- SMTP in depth (suites/smtp, suites/security) ----------------------------------------


async def open_mx_plain(target: Target, evidence: Evidence, provider: ProviderTarget) -> SMTPClient:
    """An unauthenticated clear-text session with a provider's MX, after EHLO (no STARTTLS)."""
    return await open_mx(target, evidence, provider, starttls=False)


async def send_pipelined(
    client: SMTPClient, lines: Sequence[str], *, timeout: float | None = None  # noqa: ASYNC109
) -> list[Reply]:
    """Send the command *lines* in one write and read one reply per line, in order."""
    await client.send_raw(b"".join(line.encode("utf-8") + b"\r\n" for line in lines))
    return [await client.read_reply(timeout) for _ in lines]


async def replies_until_closed(
    client: SMTPClient, *, limit: int = 50, timeout: float = 5.0  # noqa: ASYNC109
) -> tuple[list[Reply], bool]:
    """Read replies until the server closes the connection (True), or until *limit* replies or
    *timeout* seconds without one (False)."""
    from harness.clients.smtp import SMTPConnectionClosed, SMTPTimeout

    replies: list[Reply] = []
    try:
        for _ in range(limit):
            replies.append(await client.read_reply(timeout))
    except SMTPConnectionClosed:
        return replies, True
    except SMTPTimeout:
        return replies, False
    return replies, False
