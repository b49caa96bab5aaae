"""One mail provider: its MSA, MTA (inbound, queue, outbound), MDA and IMAP server wired together."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from reference_agents.config import ProviderConfig
from reference_agents.imapd import IMAPServer
from reference_agents.imapd.workers import IMAPWorkers
from reference_agents.mailstore import MaildirStore
from reference_agents.mda import MDA
from reference_agents.outbound import DeliveryOutcome, OutboundWorker
from reference_agents.queue import MailQueue
from reference_agents.smtpd import SMTPServers


class Provider:
    """Starts and stops every agent of one domain; data lives under ``config.data_dir``."""

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self.store = MaildirStore(config.data_dir / "mail")
        self.mda = MDA(
            self.store, config.accounts, threshold=config.spam_threshold, quirks=config.quirks
        )
        self.queue = MailQueue(config.data_dir / "queue")
        self.worker = OutboundWorker(config, self.queue, self._deliver_locally)
        self.smtp = SMTPServers(config, self._enqueue)
        self.imap_workers = (IMAPWorkers(config=config, store=self.store,
                                         count=config.imap_workers)
                             if config.imap_workers > 0 else None)
        self.imap = IMAPServer(
            config=config, store=self.store, host=config.address,
            port=config.ports.imap, implicit_tls=False,
        )
        self.imaps = IMAPServer(
            config=config, store=self.store, host=config.address,
            port=config.ports.imaps, implicit_tls=True,
        )
        self._worker_task: asyncio.Task[None] | None = None

    async def _enqueue(self, mail_from: str, recipients: Sequence[str], data: bytes) -> str:
        # The queue fsyncs before returning: the caller answers 250 only after this.
        return await asyncio.to_thread(self.queue.enqueue, mail_from, recipients, data)

    async def _deliver_locally(self, mail_from: str, recipient: str, data: bytes,
                               delivery: str) -> DeliveryOutcome:
        result = await asyncio.to_thread(
            self.mda.deliver, recipient, data, envelope_from=mail_from, delivery=delivery
        )
        if result.status == "delivered":
            return DeliveryOutcome("delivered", f"{result.mailbox} uid {result.uid}")
        if result.status == "unknown_user":
            if self.config.has_quirk("mta_accept_unknown_user"):
                # The quirk: mail its MX accepted for a user that does not exist is dropped,
                # neither delivered nor bounced (breaks RFC 5321 §3.3 and §6.1).
                return DeliveryOutcome("delivered", f"discarded: no mailbox for {recipient}")
            return DeliveryOutcome("permanent", "550 5.1.1 no such user", "5.1.1")
        return DeliveryOutcome("temporary", f"451 4.3.0 {result.detail}", "4.3.0")

    async def start(self) -> None:
        try:
            await self.smtp.start()
            if self.imap_workers is not None:
                await self.imap_workers.start()
            else:
                await self.imap.start()
                if self.config.tls:
                    await self.imaps.start()
        except BaseException:
            # A port already taken must not leave the mail store locked: the caller may retry
            # with other ports on the same data directory.
            await self.stop()
            raise
        self._worker_task = asyncio.create_task(self.worker.run(), name=f"outbound {self.config.domain}")

    async def stop(self) -> None:
        if self._worker_task is not None:
            self._worker_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker_task
            self._worker_task = None
        if self.imap_workers is not None:
            await self.imap_workers.stop()
        await self.imaps.stop()
        await self.imap.stop()
        await self.smtp.stop()
        self.store.close()

    @property
    def ports(self) -> dict[str, int]:
        ports = dict(self.smtp.ports)
        if self.imap_workers is not None:
            return ports | self.imap_workers.ports
        ports["imap"] = self.imap.port
        if self.config.tls:
            ports["imaps"] = self.imaps.port
        return ports
