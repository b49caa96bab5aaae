"""One mail provider: its MSA, MTA (inbound, queue, outbound), MDA and IMAP server wired together.

In one process by default; with ``config.imap_workers`` the IMAP server runs in worker
processes (reference_agents/imapd/workers.py), and with ``config.delivery_process`` the
queue runner and the MDA run in a process of their own (reference_agents/delivery.py). The
processes share the mail store and tell one another of its changes (a `ChangeBus`, of which
this process is member 0)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Sequence

from reference_agents.config import ProviderConfig
from reference_agents.delivery import DeliveryProcess, deliver_locally, make_mda
from reference_agents.imapd import IMAPServer
from reference_agents.imapd.workers import IMAPWorkers
from reference_agents.mailstore import MaildirStore
from reference_agents.mailstore.changes import ChangeBus, new_group
from reference_agents.outbound import OutboundWorker
from reference_agents.queue import MailQueue
from reference_agents.smtpd import SMTPServers


class Provider:
    """Starts and stops every agent of one domain; data lives under ``config.data_dir``."""

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self.store = MaildirStore(config.data_dir / "mail")
        split = config.delivery_process
        # With a delivery process this one only enqueues: it keeps no entries.
        self.queue = MailQueue(config.data_dir / "queue", keep_entries=not split)
        self.mda = None if split else make_mda(config, self.store)
        self.worker = (None if self.mda is None else OutboundWorker(
            config, self.queue, functools.partial(deliver_locally, config, self.mda)))
        self.smtp = SMTPServers(config, self._enqueue)
        self.imap_workers: IMAPWorkers | None = None
        self.delivery: DeliveryProcess | None = None
        self._bus: ChangeBus | None = None
        if config.imap_workers == 0:
            self.imap: IMAPServer | None = IMAPServer(
                config=config, store=self.store, host=config.address,
                port=config.ports.imap, implicit_tls=False,
            )
            self.imaps: IMAPServer | None = IMAPServer(
                config=config, store=self.store, host=config.address,
                port=config.ports.imaps, implicit_tls=True,
            ) if config.tls else None
        else:
            self.imap = self.imaps = None
        self._worker_task: asyncio.Task[None] | None = None

    async def _enqueue(self, mail_from: str, recipients: Sequence[str], data: bytes) -> str:
        # The queue fsyncs before returning: the caller answers 250 only after this.
        return await asyncio.to_thread(self.queue.enqueue, mail_from, recipients, data)

    async def _start_processes(self) -> None:
        """The child processes, if any: after the store's recovery (`share`), in one change
        group with this process."""
        config = self.config
        size = 1 + config.imap_workers + (1 if config.delivery_process else 0)
        if size == 1:
            return
        await asyncio.to_thread(self.store.share, [a.username for a in config.accounts])
        group = new_group()
        self._bus = ChangeBus(self.store, group, 0, size, throttle=config.auth_throttle)
        if config.delivery_process:
            self.delivery = DeliveryProcess(config=config, queue=self.queue, group=group,
                                            member=size - 1, size=size)
            await self.delivery.start()
        if config.imap_workers > 0:
            self.imap_workers = IMAPWorkers(config=config, count=config.imap_workers,
                                            group=group, first=1, size=size)
            await self.imap_workers.start()

    async def start(self) -> None:
        try:
            await self.smtp.start()
            await self._start_processes()
            for server in (self.imap, self.imaps):
                if server is not None:
                    await server.start()
        except BaseException:
            # A port already taken must not leave the mail store locked: the caller may retry
            # with other ports on the same data directory.
            await self.stop()
            raise
        if self.worker is not None:
            self._worker_task = asyncio.create_task(self.worker.run(),
                                                    name=f"outbound {self.config.domain}")

    async def stop(self) -> None:
        if self._worker_task is not None:
            self._worker_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker_task
            self._worker_task = None
        if self.imap_workers is not None:
            await self.imap_workers.stop()
            self.imap_workers = None
        if self.delivery is not None:
            await self.delivery.stop()
            self.delivery = None
        if self._bus is not None:
            self._bus.close()
            self._bus = None
        for server in (self.imaps, self.imap):
            if server is not None:
                await server.stop()
        await self.smtp.stop()
        self.store.close()

    @property
    def ports(self) -> dict[str, int]:
        ports = dict(self.smtp.ports)
        if self.imap_workers is not None:
            return ports | self.imap_workers.ports
        if self.imap is not None:
            ports["imap"] = self.imap.port
        if self.imaps is not None:
            ports["imaps"] = self.imaps.port
        return ports
