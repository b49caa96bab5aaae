"""The MTA's outbound worker: takes queued mail, looks up MX hosts, transfers it, retries, bounces."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import dns.asyncresolver

from harness.clients.smtp import SMTPClient, SMTPClientError, SMTPTLSError
from harness.dns import (
    MXHost,
    PermanentDNSError,
    TemporaryDNSError,
    make_resolver,
    resolve_mx,
)
from harness.protocol.errors import RemoteProtocolError
from harness.protocol.smtp import C421_SERVICE_UNAVAILABLE, Reply
from reference_agents.config import ProviderConfig
from reference_agents.dsn import build_dsn
from reference_agents.queue import MailQueue, QueueEntry
from reference_agents.serverlog import QUEUE_LOG
from reference_agents.session_cache import SessionCache

log = logging.getLogger(__name__)


def _addresses(addresses: Iterable[str]) -> str:
    return ", ".join(f"<{a}>" for a in addresses)

DELIVERED = "delivered"
TEMPORARY = "temporary"
PERMANENT = "permanent"

#: How many queue entries are being delivered at the same time (Postfix's default
#: per-destination concurrency limit is 20 too).
DEFAULT_CONCURRENCY = 20

_STATUS_RE = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?:\s|$)")


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What happened to one recipient: ``status`` is "delivered", "temporary" or "permanent";
    ``detail`` the SMTP reply or reason; ``code`` the enhanced status ("5.1.1") when known."""

    status: str
    detail: str
    code: str = ""


#: (mail_from, recipient, data, delivery id) -> outcome; the id is the queue entry's and the
#: recipient's, so that the MDA stores one copy however often a crash makes it retry.
LocalDelivery = Callable[[str, str, bytes, str], Awaitable[DeliveryOutcome]]
#: ``settle(recipients)``: records durably that the queue entry is done with them.
Settle = Callable[[Sequence[str]], Awaitable[None]]

T = TypeVar("T")


class _HostFailure(Exception):
    """This host cannot take the message now (refused, timed out, 421): try the next MX."""


def _outcome_for_reply(reply: Reply) -> DeliveryOutcome:
    code = str(reply.enhanced) if reply.enhanced is not None else ""
    if not code:
        first = reply.lines[0] if reply.lines else ""
        match = _STATUS_RE.match(first)
        code = match.group(0).strip() if match else f"{reply.klass}.0.0"
    if reply.is_positive:
        status = DELIVERED
    elif reply.is_transient:
        status = TEMPORARY
    else:
        status = PERMANENT
    return DeliveryOutcome(status, str(reply), code)


def _domain_of(address: str) -> str:
    return address.rsplit("@", 1)[1].lower().rstrip(".") if "@" in address else ""


def _needs_smtputf8(mail_from: str, recipients: Sequence[str]) -> bool:
    return not all(a.isascii() for a in (mail_from, *recipients))


class GroupCommit:
    """Items handed to *apply* in batches on one thread of its own: while a batch is being
    written, the items that arrive wait for the next one, so one fsync serves them all. Each
    ``submit`` returns once its item's batch is applied (or raises what *apply* raised)."""

    def __init__(self, apply: Callable[[list[tuple[str, tuple[str, ...]]]], None]) -> None:
        self._apply = apply
        self._pending: list[tuple[tuple[str, tuple[str, ...]], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._thread: concurrent.futures.ThreadPoolExecutor | None = None

    async def submit(self, item: tuple[str, tuple[str, ...]]) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((item, done))
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write())
        await done

    async def _write(self) -> None:
        if self._thread is None:
            self._thread = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="queue-settle")
        loop = asyncio.get_running_loop()
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await loop.run_in_executor(self._thread, self._apply, [i for i, _ in batch])
            except Exception as exc:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)

    def close(self) -> None:
        if self._thread is not None:
            self._thread.shutdown(wait=False)
            self._thread = None


class OutboundWorker:
    """Delivers the entries of a MailQueue: local recipients through *local_delivery*, others
    over SMTP to their MX hosts (RFC 5321 §5.1), retrying temporary failures on
    ``config.retry_schedule`` and bouncing permanent ones (RFC 3464)."""

    def __init__(
        self,
        config: ProviderConfig,
        queue: MailQueue,
        local_delivery: LocalDelivery,
        *,
        resolver: dns.asyncresolver.Resolver | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self.config = config
        self.queue = queue
        self.local_delivery = local_delivery
        self.resolver = resolver if resolver is not None else make_resolver(*config.dns_server)
        self.concurrency = concurrency
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake_event: asyncio.Event | None = None
        self._progress: asyncio.Event | None = None
        self._inflight: set[str] = set()
        self._lookups: dict[str, asyncio.Future[tuple[MXHost, ...] | None]] = {}
        self._running = False
        #: Queue reads and writes (each an fsync) run here, not in the default thread pool
        #: that scrypt and the mail store share, so a delivery is recorded without waiting.
        self._io: concurrent.futures.ThreadPoolExecutor | None = None
        #: Settles: a thread of their own, group-committed (the ones that arrive while one is
        #: written share the next directory fsync). The time from a next hop's 250 to its
        #: durable record is the one window in which a crash makes a duplicate.
        self._settler = GroupCommit(queue.settle_many)
        #: Open sessions kept for the next message to the same host (session_cache.py).
        self.sessions = SessionCache(idle_seconds=config.outbound_session_cache)
        queue.add_listener(self.wake)

    # -- scheduling ---------------------------------------------------------------------------

    def _bind_loop(self) -> None:
        """Events belong to one event loop: (re)create them for the running one."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._wake_event = asyncio.Event()
            self._progress = asyncio.Event()

    def wake(self) -> None:
        """Look at the queue now (safe from any thread; a no-op while not running)."""
        loop = self._loop
        event = self._wake_event
        if loop is None or event is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(event.set)
        except RuntimeError:  # the loop closed between the check and the call
            pass

    def _signal_progress(self) -> None:
        if self._progress is not None:
            self._progress.set()
            self._progress = asyncio.Event()

    async def run(self) -> None:
        """Deliver due entries until cancelled: wakes on every enqueue, otherwise sleeps until
        the next entry is due. At most ``concurrency`` entries are in flight at once."""
        if self._running:
            raise RuntimeError("OutboundWorker.run() is already running")
        self._bind_loop()
        self._running = True
        self._io = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="queue-io")
        try:
            async with asyncio.TaskGroup() as tasks:
                while True:
                    assert self._wake_event is not None
                    self._wake_event.clear()
                    delay = self._dispatch(tasks)
                    try:
                        async with asyncio.timeout(delay):
                            await self._wake_event.wait()
                    except TimeoutError:
                        pass
        finally:
            self._running = False
            if self._io is not None:
                self._io.shutdown(wait=False)
                self._io = None
            self._settler.close()
            await self.sessions.close()
            self._inflight.clear()
            for lookup in list(self._lookups.values()):
                lookup.cancel()
            self._lookups.clear()

    def _dispatch(self, tasks: asyncio.TaskGroup) -> float | None:
        """Start due entries while there is room; return seconds until the next one is due."""
        now = time.time()
        next_due: float | None = None
        for entry in self.queue.entries():
            if entry.id in self._inflight:
                continue
            if entry.next_attempt > now:
                wait = entry.next_attempt - now
                next_due = wait if next_due is None else min(next_due, wait)
                continue
            if len(self._inflight) >= self.concurrency:
                continue  # a finishing task wakes us up
            self._inflight.add(entry.id)
            tasks.create_task(self._attempt(entry), name=f"outbound {entry.id}")
        return next_due

    async def _attempt(self, entry: QueueEntry) -> None:
        try:
            await self._process(entry)
        except Exception as exc:
            # A bug in one delivery must neither lose the message nor stop the worker.
            log.exception("delivery of queue entry %s failed unexpectedly", entry.id)
            await self._reschedule_after_error(entry, f"internal error: {exc!r}")
        finally:
            self._inflight.discard(entry.id)
            if self._wake_event is not None:
                self._wake_event.set()
            self._signal_progress()

    async def _reschedule_after_error(self, entry: QueueEntry, error: str) -> None:
        try:
            await self._queue_io(
                self.queue.reschedule,
                entry.id,
                recipients=entry.recipients,
                attempts=entry.attempts + 1,
                next_attempt=time.time() + self._retry_delay(entry.attempts),
                last_error=error,
            )
        except (KeyError, OSError, ValueError):
            log.exception("could not reschedule queue entry %s", entry.id)

    def _idle(self) -> bool:
        if self._inflight:
            return False
        now = time.time()
        return all(entry.next_attempt > now for entry in self.queue.entries())

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - part of this API
        """Wait until the queue is empty or holds only entries due later (for tests; run()
        must be running). TimeoutError otherwise."""
        self._bind_loop()
        async with asyncio.timeout(timeout):
            while not self._idle():
                assert self._progress is not None
                progress = self._progress
                self.wake()
                await progress.wait()

    async def _queue_io(self, function: Callable[..., T], /, *args: object, **kwargs: object) -> T:
        """Run a queue operation off the event loop, on the queue's own threads."""
        call = functools.partial(function, *args, **kwargs)
        if self._io is None:
            return await asyncio.to_thread(call)
        return await asyncio.get_running_loop().run_in_executor(self._io, call)

    def _retry_delay(self, attempts: int) -> float:
        schedule = self.config.retry_schedule or (300.0,)
        return schedule[min(attempts, len(schedule) - 1)]

    # -- one entry ----------------------------------------------------------------------------

    async def _process(self, entry: QueueEntry) -> None:
        try:
            data = await self._queue_io(self.queue.read_data, entry.id)
        except (KeyError, FileNotFoundError):
            return  # removed meanwhile
        async def settle(recipients: Sequence[str]) -> None:
            # Recorded the moment a recipient is done, before anything else is said to the
            # next hop: a crash after this cannot deliver to it twice. The last recipients'
            # entry is unlinked at once; the group commit adds the directory fsync.
            self.queue.remove_settled(entry.id, recipients)
            await self._settler.submit((entry.id, tuple(recipients)))

        QUEUE_LOG.info("%s %s attempt %d for %s", self.config.domain, entry.id, entry.attempts + 1,
                   _addresses(entry.recipients))
        outcomes = await self._deliver_all(entry, data, settle)

        delivered = [r for r in entry.recipients if outcomes[r].status == DELIVERED]
        permanent = [r for r in entry.recipients if outcomes[r].status == PERMANENT]
        temporary = [r for r in entry.recipients if outcomes[r].status == TEMPORARY]
        for r in delivered:
            QUEUE_LOG.info("%s %s delivered <%s>: %s", self.config.domain, entry.id, r,
                       outcomes[r].detail)

        bounce: list[tuple[str, DeliveryOutcome]] = []
        if permanent:
            if self.config.has_quirk("mta_no_bounce"):
                # Quirk: a 5yz is dropped silently instead of being reported to the sender.
                QUEUE_LOG.info("%s %s dropped %s without a bounce (quirk mta_no_bounce)",
                           self.config.domain, entry.id, _addresses(permanent))
            else:
                bounce.extend((r, outcomes[r]) for r in permanent)

        retry: list[str] = []
        if temporary:
            expired = time.time() - entry.created >= self.config.max_queue_lifetime
            if self.config.has_quirk("mta_no_retry"):
                # Quirk: RFC 5321 §4.5.4.1 says "mail that cannot be transmitted immediately
                # MUST be queued and periodically retried by the sender"; this drops it.
                QUEUE_LOG.info("%s %s dropped %s after a 4yz (quirk mta_no_retry)",
                           self.config.domain, entry.id, _addresses(temporary))
            elif expired:
                # RFC 5321 §4.5.4.1: "Retries continue until the message is transmitted or the
                # sender gives up"; giving up is a failure that must be reported (§6.1).
                for r in temporary:
                    last = outcomes[r]
                    code = last.code if last.code.startswith("4.") else "4.4.7"
                    bounce.append((r, DeliveryOutcome(PERMANENT, last.detail, code)))
            else:
                retry = temporary

        if bounce:
            await self._bounce(entry, data, bounce)
            await settle([r for r, _ in bounce])
        if retry:
            detail = "; ".join(f"{r}: {outcomes[r].detail}" for r in retry)
            QUEUE_LOG.info("%s %s deferred %s: %s; next attempt in %.0f s", self.config.domain,
                       entry.id, _addresses(retry), "; ".join(outcomes[r].detail for r in retry),
                       self._retry_delay(entry.attempts))
            # RFC 5321 §4.5.4.1: "The sender MUST delay retrying a particular destination after
            # one attempt has failed."
            await self._queue_io(
                self.queue.reschedule,
                entry.id,
                recipients=retry,
                attempts=entry.attempts + 1,
                next_attempt=time.time() + self._retry_delay(entry.attempts),
                last_error=detail,
            )
        else:
            await self._queue_io(self.queue.remove, entry.id)

    async def _deliver_all(self, entry: QueueEntry, data: bytes, settle: Settle) -> dict[str, DeliveryOutcome]:
        """Outcomes for every recipient: local ones one by one, remote ones per domain."""
        outcomes: dict[str, DeliveryOutcome] = {}
        local: list[str] = []
        remote: dict[str, list[str]] = {}
        for recipient in entry.recipients:
            domain = _domain_of(recipient)
            if self.config.accounts.is_local_domain(domain):
                local.append(recipient)
            elif not domain:
                outcomes[recipient] = DeliveryOutcome(PERMANENT, "recipient has no domain", "5.1.3")
            else:
                remote.setdefault(domain, []).append(recipient)

        async def deliver_local() -> None:
            for recipient in local:
                outcomes[recipient] = await self._deliver_local(
                    entry.mail_from, recipient, data, f"{entry.id}/{recipient}")
                if outcomes[recipient].status == DELIVERED:
                    await settle([recipient])

        async def deliver_domain(domain: str, recipients: list[str]) -> None:
            outcomes.update(await self._deliver_remote(domain, entry.mail_from, recipients, data,
                                                       settle))

        async with asyncio.TaskGroup() as group:
            if local:
                group.create_task(deliver_local())
            for domain, recipients in remote.items():
                group.create_task(deliver_domain(domain, recipients))
        return outcomes

    async def _deliver_local(self, mail_from: str, recipient: str, data: bytes,
                             delivery: str) -> DeliveryOutcome:
        try:
            return await self.local_delivery(mail_from, recipient, data, delivery)
        except Exception as exc:
            log.exception("local delivery to %s failed", recipient)
            return DeliveryOutcome(TEMPORARY, f"local delivery failed: {exc!r}", "4.3.0")

    # -- bounces ------------------------------------------------------------------------------

    async def _bounce(
        self, entry: QueueEntry, data: bytes, failed: Sequence[tuple[str, DeliveryOutcome]]
    ) -> None:
        if not entry.mail_from:
            # RFC 5321 §6.1: "if this address is null ("<>"), the receiver-SMTP MUST NOT send a
            # notification."
            QUEUE_LOG.info("%s %s failed %s; no bounce: the reverse-path is null", self.config.domain,
                       entry.id, _addresses(r for r, _ in failed))
            return
        daemon = f"MAILER-DAEMON@{self.config.domain}"
        if entry.mail_from.lower() == daemon.lower():
            # Only reachable with the mta_bounce_with_sender quirk: never bounce a bounce.
            return
        dsn = build_dsn(
            reporting_mta=self.config.hostname,
            original_from=entry.mail_from,
            failed=[(r, o.code or "5.0.0", o.detail) for r, o in failed],
            original_message=data,
            arrival=datetime.fromtimestamp(entry.created, UTC),
            domain=self.config.domain,
        )
        # RFC 5321 §4.5.5 / §6.1: "This notification MUST be sent using a null ("<>")
        # reverse-path in the envelope."
        sender = ""
        if self.config.has_quirk("mta_bounce_with_sender"):
            sender = daemon  # quirk: a non-null reverse-path on a bounce
        # Enqueue the bounce before the original goes: a crash in between duplicates, never loses.
        bounce_id = await self._queue_io(self.queue.enqueue, sender, [entry.mail_from], dsn)
        for recipient, outcome in failed:
            QUEUE_LOG.info("%s %s bounced <%s> (%s): %s; report %s to <%s>", self.config.domain,
                       entry.id, recipient, outcome.code, outcome.detail, bounce_id,
                       entry.mail_from)

    # -- SMTP transfer ------------------------------------------------------------------------

    async def _deliver_remote(
        self, domain: str, mail_from: str, recipients: list[str], data: bytes, settle: Settle
    ) -> dict[str, DeliveryOutcome]:
        def everyone(outcome: DeliveryOutcome) -> dict[str, DeliveryOutcome]:
            return {r: outcome for r in recipients}

        try:
            hosts = await self._resolve(domain)
        except PermanentDNSError as exc:
            code = "5.1.10" if exc.reason == "null MX" else "5.1.2"  # RFC 7505 §4.2, RFC 3463
            return everyone(DeliveryOutcome(PERMANENT, f"DNS: {exc}", code))
        except TemporaryDNSError as exc:
            return everyone(DeliveryOutcome(TEMPORARY, f"DNS: {exc}", "4.4.3"))
        if hosts is None:
            # Only with the mta_no_implicit_mx quirk, which breaks RFC 5321 §5.1: "If an empty
            # list of MXs is returned, the address is treated as if it was associated with an
            # implicit MX RR".
            return everyone(DeliveryOutcome(PERMANENT, f"DNS: {domain}: no MX records", "5.1.2"))

        ordered = list(hosts)
        if self.config.has_quirk("mta_mx_reverse_preference"):
            # Quirk: RFC 5321 §5.1 "Lower numbers are more preferred than higher ones."
            ordered.sort(key=lambda h: h.preference, reverse=True)

        failures: list[str] = []
        # RFC 5321 §5.1: "the SMTP client MUST be able to try (and retry) each of the relevant
        # addresses in this list in order, until a delivery attempt succeeds."
        for host in ordered:
            for address in host.addresses:
                try:
                    return await self._transfer(host, address, mail_from, recipients, data, settle)
                except _HostFailure as exc:
                    failures.append(f"{host.name}[{address}]: {exc}")
                    QUEUE_LOG.info("%s %s[%s]: %s", self.config.domain, host.name, address, exc)
        detail = "; ".join(failures) or f"no address for {domain}"
        return everyone(DeliveryOutcome(TEMPORARY, detail, "4.4.1"))

    async def _resolve(self, domain: str) -> tuple[MXHost, ...] | None:
        """resolve_mx, shared by the deliveries that ask for the same domain at the same time
        (no caching beyond that: a test may change the DNS between two messages)."""
        pending = self._lookups.get(domain)
        if pending is None:
            implicit = not self.config.has_quirk("mta_no_implicit_mx")
            pending = asyncio.ensure_future(
                resolve_mx(self.resolver, domain, implicit_mx=implicit)
            )
            self._lookups[domain] = pending
            pending.add_done_callback(lambda done: self._lookup_done(domain, done))
        # shield: one waiter being cancelled must not cancel the lookup for the others.
        return await asyncio.shield(pending)

    def _lookup_done(self, domain: str, done: asyncio.Future[tuple[MXHost, ...] | None]) -> None:
        if self._lookups.get(domain) is done:
            del self._lookups[domain]
        if not done.cancelled():
            done.exception()  # retrieved here too, in case every waiter was cancelled

    async def _transfer(
        self, host: MXHost, address: str, mail_from: str, recipients: list[str], data: bytes,
        settle: Settle,
    ) -> dict[str, DeliveryOutcome]:
        """One SMTP session to one address. Raises _HostFailure when nothing was decided."""
        try:
            return await self._session(host, address, mail_from, recipients, data, settle,
                                       use_tls=True)
        except SMTPTLSError:
            # Opportunistic TLS (RFC 3207 §4.1 leaves the policy to the client): the handshake
            # failed, so deliver in the clear on a fresh connection.
            QUEUE_LOG.info("%s STARTTLS with %s[%s] failed; retrying in clear", self.config.domain,
                       host.name, address)
        except (SMTPClientError, RemoteProtocolError, OSError) as exc:
            raise _HostFailure(f"{exc.__class__.__name__}: {exc}") from exc
        try:
            return await self._session(host, address, mail_from, recipients, data, settle,
                                       use_tls=False)
        except (SMTPClientError, RemoteProtocolError, OSError) as exc:
            raise _HostFailure(f"{exc.__class__.__name__}: {exc}") from exc

    async def _session(
        self,
        host: MXHost,
        address: str,
        mail_from: str,
        recipients: list[str],
        data: bytes,
        settle: Settle,
        *,
        use_tls: bool,
    ) -> dict[str, DeliveryOutcome]:
        config = self.config
        key = (address, config.outbound_port, use_tls, host.name)
        client = await self.sessions.take(key)
        fresh = client is None
        if client is None:
            client = await SMTPClient.connect(
                address,
                config.outbound_port,
                timeout=config.smtp_timeout,
                local_hostname=config.hostname,
                # From the provider's own address: the next hop's Received field and any SPF
                # check see the IP that mail.<domain> resolves to, not the kernel's choice.
                local_address=config.address,
            )
            self.sessions.opened(client)
        reusable = False
        try:
            outcomes, reusable = await self._dialogue(client, host, mail_from, recipients, data,
                                                      settle, use_tls, fresh=fresh)
            return outcomes
        finally:
            if reusable:
                self.sessions.put(key, client)
            else:
                self.sessions.forget(client)
                await client.close()

    async def _dialogue(
        self,
        client: SMTPClient,
        host: MXHost,
        mail_from: str,
        recipients: list[str],
        data: bytes,
        settle: Settle,
        use_tls: bool,
        *,
        fresh: bool,
    ) -> tuple[dict[str, DeliveryOutcome], bool]:
        """The transaction, on a *fresh* connection (greeting, EHLO, STARTTLS first) or on a
        cached one; the outcomes, and whether the session may carry another transaction."""
        if fresh:
            if not client.greeting.is_positive:
                raise _HostFailure(f"greeting {client.greeting}")
            await self._hello(client)
            if use_tls and not client.is_tls and client.supports("STARTTLS"):
                reply = await client.starttls(self.config.client_tls, server_hostname=host.name)
                if reply.is_positive:
                    await self._hello(client)

        params: list[str] = []
        if client.supports("SIZE"):
            params.append(f"SIZE={len(data)}")
        if client.supports("8BITMIME") and not data.isascii():
            params.append("BODY=8BITMIME")
        if _needs_smtputf8(mail_from, recipients):
            if client.supports("SMTPUTF8"):
                params.append("SMTPUTF8")
            elif not self.config.has_quirk("mta_utf8_without_smtputf8"):
                # RFC 6531 §3.2: "If the SMTPUTF8 SMTP extension is not offered by the SMTP
                # server, the SMTPUTF8-aware SMTP client MUST NOT transmit an internationalized
                # email address"; not an MSA, it "SHOULD reject the message" — a bounce.
                refused = DeliveryOutcome(
                    PERMANENT, f"{host.name} does not offer SMTPUTF8, which the addresses need",
                    "5.6.7")
                return {r: refused for r in recipients}, False
            # quirk mta_utf8_without_smtputf8: the UTF-8 addresses are sent all the same

        reply = await client.mail(mail_from, params)
        self._check_421(reply)
        if not reply.is_positive:
            return {r: _outcome_for_reply(reply) for r in recipients}, False

        outcomes: dict[str, DeliveryOutcome] = {}
        accepted: list[str] = []
        for recipient in recipients:
            reply = await client.rcpt(recipient)
            self._check_421(reply)
            if reply.is_positive:
                accepted.append(recipient)
            else:
                outcomes[recipient] = _outcome_for_reply(reply)
        if not accepted:
            return outcomes, False

        # The quirk mta_no_dot_stuffing breaks RFC 5321 §4.5.2: "Before sending a line of mail
        # text, the SMTP client checks the first character of the line.  If it is a period, one
        # additional period is inserted at the beginning of the line."
        stuff = not self.config.has_quirk("mta_no_dot_stuffing")
        try:
            reply = await client.data(data, stuff=stuff)
        except (SMTPClientError, RemoteProtocolError, OSError) as exc:
            # The data may or may not have arrived: retry later (a duplicate beats a loss).
            outcome = DeliveryOutcome(TEMPORARY, f"{exc.__class__.__name__} during DATA: {exc}", "4.4.2")
            outcomes.update((r, outcome) for r in accepted)
            return outcomes, False
        outcome = _outcome_for_reply(reply)
        outcomes.update((r, outcome) for r in accepted)
        if outcome.status == DELIVERED:
            # RFC 5321 §6.1: with the 250 the next hop has taken responsibility; record it
            # before QUIT, so a crash now does not send the message again.
            await settle(accepted)
        # With the final reply the transaction is over (RFC 5321 §4.1.1.4) and the session
        # ready for the next MAIL. It is kept only when every recipient was taken: a host that
        # refused or deferred anything gets a fresh connection for the retry, as before.
        return outcomes, outcome.status == DELIVERED and len(accepted) == len(recipients)

    async def _hello(self, client: SMTPClient) -> None:
        reply = await client.ehlo(self.config.hostname)
        self._check_421(reply)
        if not reply.is_positive:
            # RFC 5321 §3.2: a client MAY fall back to HELO when EHLO is not recognised.
            reply = await client.helo(self.config.hostname)
            self._check_421(reply)
            if not reply.is_positive:
                raise _HostFailure(f"HELO refused: {reply}")

    @staticmethod
    def _check_421(reply: Reply) -> None:
        if reply.code == C421_SERVICE_UNAVAILABLE:
            raise _HostFailure(f"service not available: {reply}")
