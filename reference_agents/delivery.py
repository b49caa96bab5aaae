"""Local delivery for the outbound worker, and the delivery process: the MTA's queue runner
and the MDA in a process of their own, beside the SMTP servers.

With ``config.delivery_process``, the provider's own process keeps the SMTP listeners (MSA and
inbound MX): a message is answered 250 once it is in the queue directory. A second process
(reference_agents/processes.py) runs the `OutboundWorker` over the same directory, delivering
to the next hop over SMTP and into the mail store through the `MDA`, so that spam scoring,
fsyncs and next-hop sessions never share a core or an event loop with the sessions that
submit. Postfix splits its smtpd, qmgr, smtp and local the same way, around its queue.

The two processes share nothing but files, and a pipe: after every enqueue the provider
writes a byte into it ("look again"), and the delivery process then takes in the new queue
entries (`MailQueue.refresh`). A lost or coalesced byte costs nothing: one look takes in
every committed entry. The delivery process is a member of the store's change group
(reference_agents/mailstore/changes.py), so IMAP sessions in any process hear of its
deliveries at once."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from dataclasses import dataclass
from typing import Any

from reference_agents.config import ProviderConfig
from reference_agents.mailstore import MaildirStore
from reference_agents.mailstore.changes import ChangeBus
from reference_agents.mda import MDA
from reference_agents.outbound import DeliveryOutcome, OutboundWorker
from reference_agents.processes import (
    Children,
    child_main,
    config_fields,
    rebuild_config,
    signal_ready,
    spawn,
    stop_requested,
)
from reference_agents.queue import MailQueue

_log = logging.getLogger(__name__)
#: Seconds after which a file in the queue's tmp/ is a dead process's: no write takes that long.
QUEUE_TMP_AGE = 3600.0
#: The Maildir convention: a file in tmp/ untouched for 36 hours is removed.
MAILDIR_TMP_AGE = 36 * 3600.0


def make_mda(config: ProviderConfig, store: MaildirStore) -> MDA:
    return MDA(store, config.accounts, threshold=config.spam_threshold, quirks=config.quirks)


async def deliver_locally(config: ProviderConfig, mda: MDA, mail_from: str, recipient: str,
                          data: bytes, delivery: str) -> DeliveryOutcome:
    """The outbound worker's local delivery: the MDA, off the event loop (it fsyncs)."""
    result = await asyncio.to_thread(
        mda.deliver, recipient, data, envelope_from=mail_from, delivery=delivery
    )
    if result.status == "delivered":
        return DeliveryOutcome("delivered", f"{result.mailbox} uid {result.uid}")
    if result.status == "unknown_user":
        if config.has_quirk("mta_accept_unknown_user"):
            # The quirk: mail its MX accepted for a user that does not exist is dropped,
            # neither delivered nor bounced (breaks RFC 5321 §3.3 and §6.1).
            return DeliveryOutcome("delivered", f"discarded: no mailbox for {recipient}")
        return DeliveryOutcome("permanent", "550 5.1.1 no such user", "5.1.1")
    return DeliveryOutcome("temporary", f"451 4.3.0 {result.detail}", "4.3.0")


@dataclass(frozen=True)
class _DeliverySpec:
    fields: dict[str, Any]
    member: int
    group: str
    size: int


class DeliveryProcess:
    """The delivery process of one provider: member *member* of change group *group* (of
    *size*). *queue* is the provider's own handle on the queue directory (opened with
    ``keep_entries=False``); its enqueues wake the process. The provider has `share`d the
    store before `start`."""

    def __init__(self, *, config: ProviderConfig, queue: MailQueue, group: str, member: int,
                 size: int) -> None:
        self.config = config
        self._queue = queue
        self._group, self._member, self._size = group, member, size
        self._children = Children(f"delivery process of {config.domain}")
        self._wake: tuple[int, int] | None = None

    @property
    def pids(self) -> list[int]:
        return self._children.pids

    async def start(self) -> None:
        wake_r, wake_w = os.pipe()
        # Never block an enqueuing thread: a full pipe already holds a "look again".
        os.set_blocking(wake_w, False)
        self._wake = (wake_r, wake_w)
        self._queue.add_listener(self.poke)
        await self._children.start(0, functools.partial(self._spawn, wake_r))
        self._children.supervise()

    def _spawn(self, wake_r: int) -> tuple[Any, int]:
        spec = _DeliverySpec(config_fields(self.config), self._member, self._group, self._size)
        return spawn("reference_agents.delivery", spec, [str(wake_r)], pass_fds=[wake_r])

    def poke(self) -> None:
        """Tell the delivery process to look at the queue (from any thread)."""
        if self._wake is None:
            return
        try:
            os.write(self._wake[1], b".")
        except (BlockingIOError, BrokenPipeError):
            pass  # a full pipe wakes it anyway; a dead process looks at all when restarted
        except OSError as exc:
            _log.error("cannot wake the delivery process of %s: %s", self.config.domain, exc)

    async def stop(self) -> None:
        await self._children.stop()
        if self._wake is not None:
            wake, self._wake = self._wake, None
            for fd in wake:
                os.close(fd)


# --------------------------------------------------------------------------- in the child


def main() -> None:
    """The body of the delivery process (``argv``: the read end of the wake pipe)."""
    child_main(_run)


class _Waker:
    """Reads the wake pipe on the event loop and takes in new queue entries, one look at a
    time, however many bytes arrived meanwhile."""

    def __init__(self, fd: int, queue: MailQueue, worker: OutboundWorker) -> None:
        self._fd, self._queue, self._worker = fd, queue, worker
        self._again = False
        self._task: asyncio.Task[None] | None = None
        os.set_blocking(fd, False)
        asyncio.get_running_loop().add_reader(fd, self._readable)

    def _readable(self) -> None:
        try:
            while os.read(self._fd, 65536):
                pass
        except BlockingIOError:
            pass
        except OSError as exc:  # the provider is gone: PR_SET_PDEATHSIG ends this process
            _log.error("delivery wake pipe: %s", exc)
            asyncio.get_running_loop().remove_reader(self._fd)
            return
        self._again = True
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._look())

    async def _look(self) -> None:
        while self._again:
            self._again = False
            if await asyncio.to_thread(self._queue.refresh):
                self._worker.wake()

    async def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self._fd)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def _run(spec: _DeliverySpec, args: list[str], ready_fd: int) -> None:
    wake_fd = int(args[0])
    config = rebuild_config(spec.fields)
    if config.delivery_nice:
        try:
            os.nice(config.delivery_nice)
        except OSError as exc:
            _log.warning("delivery process: cannot lower its priority: %s", exc)
    stopping = stop_requested()
    store = MaildirStore.attach(config.data_dir / "mail")
    bus = ChangeBus(store, spec.group, spec.member, spec.size)
    try:
        queue = MailQueue(config.data_dir / "queue", recover=False)
        # What an earlier delivery process left when it died alone (the provider's recovery
        # at its own start cleans the rest).
        swept = await asyncio.to_thread(
            lambda: queue.sweep_tmp(QUEUE_TMP_AGE) + store.sweep_tmp(MAILDIR_TMP_AGE))
        if swept:
            _log.info("delivery process: removed %d files left in tmp/", swept)
        mda = make_mda(config, store)
        worker = OutboundWorker(config, queue, functools.partial(deliver_locally, config, mda))
        running = asyncio.get_running_loop().create_task(worker.run(), name="outbound")
        waker = _Waker(wake_fd, queue, worker)
        signal_ready(ready_fd)
        await stopping.wait()
        await waker.close()
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    finally:
        bus.close()
        store.close()
