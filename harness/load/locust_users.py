"""`mailharness load`'s users as Locust users, so that the load can be spread over processes and
machines: a Locust master and its workers (docs/load.md, "Distributed, with Locust"). The
locustfile to point Locust at is harness/load/locustfile.py.

- `SubmissionUser`: `users.Sender` on the sender's submission endpoint (STARTTLS, AUTH PLAIN as
  its first account), one session of up to 100 messages per task;
- `InjectorUser`: the same without AUTH, into the receiver's MX (an MX injector);
- `ReaderUser`: a `users.Reader` on every recipient's INBOX, each in a greenlet of its own, for
  as long as the user runs: every message is read wherever a reader user runs;
- `ManagerUser`: one per worker (the master sets its ``fixed_count`` to the number of workers
  when the test starts), running ``--mailharness-managers`` `users.Manager` sessions per
  recipient's INBOX (default 2; 0: none), each in a greenlet of its own. The managers of one
  worker share its `MailboxFacts` of the mailbox, as the readers do; managers of different
  workers never share a keyword nor a message: worker *w*'s keywords are ``$LoadW<w>M<i>``
  (Locust's worker index), and its managers act only on the messages whose UID modulo
  (workers × managers) falls in the worker's share (`_Worker.start_managers`).

Each worker keeps its own `distributed.WorkerLedger` and sends it to the master every second as
a batch of events (Locust's custom messages); the master merges them (`MergedLedger`). When the
test stops, the master first tells the workers to stop sending (``mailharness_drain``), waits
for every worker's senders to stop and then for the last messages to arrive (the delivery
timeout), gives the verdict, writes the merged results and a summary, and only then lets Locust
stop the users. Submissions, IMAP commands and failed sessions also go to Locust's own
statistics (request types SMTP and IMAP, names ``reader`` and ``manager``), so its UI and CSV
show them.

Importing this module needs Locust, which patches the standard library for gevent: import it
only in a Locust process, never in one that runs the reference agents."""

from __future__ import annotations

try:
    import gevent
    from locust import User, constant, events, task
    from locust.env import Environment
    from locust.exception import StopUser
    from locust.rpc import Message
    from locust.runners import LocalRunner, MasterRunner, Runner, WorkerRunner
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "harness.load.locust_users needs Locust: pip install 'mailharness[load]' "
        f"(or 'locust>=2.20'); {exc}") from exc

import argparse
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from harness.clients.blocking import BlockingClientError
from harness.load.distributed import MergedLedger, WorkerLedger
from harness.load.imapview import MailboxFacts
from harness.load.runner import LoadError, check_addresses, mailboxes, timeline_interval
from harness.load.users import Budget, Manager, Reader, Sender, error_kind
from harness.targets import Target, TargetError, load_target

logger = logging.getLogger("mailharness.locust")

#: Worker to master: a batch of events (harness/load/distributed.py).
BATCH = "mailharness_batch"
#: Master to workers: stop sending, keep reading, say when the senders have stopped.
DRAIN = "mailharness_drain"
#: Seconds between batches; after DRAIN, between batches of the delivery phase.
FLUSH_INTERVAL = 1.0
DRAIN_FLUSH_INTERVAL = 0.25
#: How long the master waits for every worker's senders to stop.
DRAIN_TIMEOUT = 30.0
MAX_BACKOFF = 2.0
#: Master to workers, in the options it sends with the spawn: Locust worker id -> the
#: worker's position among the workers at the start of the test (the managers' shares).
PLAN = "mailharness_manager_plan"


def _listen(hook: object, handler: Callable[..., None]) -> None:
    """``hook.add_listener(handler)`` (Locust's EventHook is not annotated)."""
    cast(Any, hook).add_listener(handler)


# --- options ------------------------------------------------------------------------------


def _arguments(parser: argparse.ArgumentParser, **_: object) -> None:
    group = parser.add_argument_group("mailharness", "the target and the merged verdict (the "
                                      "master passes these to its workers)")
    group.add_argument("--mailharness-target", metavar="FILE",
                       help="target file (TOML, harness/targets.py); the same path on every "
                            "machine, with the CA file it names")
    group.add_argument("--mailharness-results", metavar="FILE",
                       help="write the merged results here (JSON, on the master)")
    group.add_argument("--mailharness-delivery-timeout", metavar="SECONDS", type=float,
                       help="seconds after the load for the last messages to arrive "
                            "(default: the target's delivery_timeout)")
    group.add_argument("--mailharness-allow-remote", action="store_true",
                       help="allow a target with non-loopback addresses")
    group.add_argument("--mailharness-size", metavar="OCTETS", type=int, default=1500,
                       help="octets per message, about (default 1500)")
    group.add_argument("--mailharness-max-messages", metavar="N", type=int, default=100_000,
                       help="messages each worker's senders may send at most (default 100000)")
    group.add_argument("--mailharness-managers", metavar="N", type=int, default=2,
                       help="IMAP managers per mailbox on each worker, in its one ManagerUser "
                            "(default 2; 0: none)")


@dataclass(frozen=True)
class Options:
    target: str | None = None
    results: str | None = None
    delivery_timeout: float | None = None
    allow_remote: bool = False
    size: int = 1500
    max_messages: int = 100_000
    managers: int = 2

    @classmethod
    def of(cls, environment: Environment) -> Options:
        parsed = environment.parsed_options

        def get(name: str, default: Any) -> Any:
            return default if parsed is None else getattr(parsed, f"mailharness_{name}", default)

        timeout = get("delivery_timeout", None)
        return cls(target=get("target", None), results=get("results", None),
                   delivery_timeout=None if timeout is None else float(timeout),
                   allow_remote=bool(get("allow_remote", False)), size=int(get("size", 1500)),
                   max_messages=int(get("max_messages", 100_000)),
                   managers=int(get("managers", 2)))

    def load(self) -> Target:
        """The target, checked as `mailharness load` checks it; TargetError or LoadError."""
        if not self.target:
            raise LoadError("give the target file: --mailharness-target FILE")
        if self.size < 100 or self.max_messages < 1:
            raise LoadError("--mailharness-size must be at least 100 octets and "
                            "--mailharness-max-messages positive")
        if self.delivery_timeout is not None and self.delivery_timeout < 0:
            raise LoadError("--mailharness-delivery-timeout must not be negative")
        if self.managers < 0:
            raise LoadError("--mailharness-managers must not be negative")
        target = load_target(Path(self.target))
        check_addresses(target, self.allow_remote)
        return target




# --- the worker ---------------------------------------------------------------------------

#: (request type, name, octets) for the requests the current greenlet reports to Locust.
_ROLE: ContextVar[tuple[str, str, int]] = ContextVar("mailharness_role",
                                                     default=("SMTP", "submission", 0))


class _Worker:
    """One process's users' shared state: the target, the ledger, the senders' budget and
    their stop (DRAIN), and the greenlet that sends the batches."""

    def __init__(self, environment: Environment, target: Target, options: Options) -> None:
        runner = environment.runner
        self.environment, self.target, self.options = environment, target, options
        self.id = str(getattr(runner, "client_id", "local"))
        self.ledger = WorkerLedger(self.id, index=int(getattr(runner, "worker_index", 0)),
                                   on_request=self._request, role=lambda: _ROLE.get()[1])
        self.mailboxes = mailboxes(target)
        #: What this worker's sessions learn of each mailbox, shared by its readers and
        #: managers as in `mailharness load` (imapview: the IMAP invariants across sessions of
        #: one process).
        self.facts = {a.address: MailboxFacts(f"{a.address} INBOX") for a, _ in self.mailboxes}
        plan = getattr(environment.parsed_options, PLAN, None)
        #: Locust worker id -> position, from the master (none: this worker alone).
        self.plan: dict[str, int] = {str(k): int(v) for k, v in dict(plan or {}).items()}
        self.managing = False
        self.budget = Budget.of(options.max_messages)
        self.drain = threading.Event()
        #: Sender sessions under way (DRAIN waits for none).
        self.sessions = 0
        self.interval = FLUSH_INTERVAL
        self._flusher = gevent.spawn(self._flush)

    def share(self) -> tuple[int, int]:
        """This worker's position among the workers of the plan, and their number. A worker
        the plan does not name (one that joined after the start) shares a position with
        another: their managers then act on the same messages, each with its own keywords,
        which the checks still allow (each worker judges only its own keywords)."""
        if not self.plan:
            return 0, 1
        if self.id in self.plan:
            return self.plan[self.id], len(self.plan)
        logger.warning("mailharness: worker %s joined after the test started: its managers "
                       "share the messages of another worker's", self.id)
        return self.ledger.index % len(self.plan), len(self.plan)

    def start_managers(self, stop: threading.Event) -> list[Manager]:
        """The managers of this worker, for its first ManagerUser (none for another, or with
        ``--mailharness-managers 0``): *n* per mailbox, manager *i* toggling the keyword
        ``$LoadW<w>M<i>`` (w: Locust's worker index, unique to the worker) and acting on the
        messages whose UID modulo ``workers × n`` is ``position × n + i``, so that no two
        managers anywhere change one message; the checks across sessions (IMAP-SESSIONS-AGREE,
        IMAP-CONDSTORE-MODSEQ-UNIQUE) are among the sessions of this worker, which are the
        ones its MailboxFacts know."""
        n = self.options.managers
        if self.managing or n <= 0:
            return []
        self.managing = True
        position, workers = self.share()
        w = self.ledger.index
        managers = []
        for account, endpoint in self.mailboxes:
            for i in range(n):
                manager = Manager(self.target, self.ledger, stop, account=account,
                                  imaps=endpoint, facts=self.facts[account.address], index=i,
                                  of=n, rng=random.Random(), keyword_prefix=f"$LoadW{w}M",
                                  share=(position * n + i, workers * n))
                manager.name = f"manager {w}.{i}"
                managers.append(manager)
        self.count_sessions("manager", len(managers))
        logger.info("mailharness: worker %s: %d managers per mailbox, keywords $LoadW%dM<i>, "
                    "UIDs modulo %d in %d..%d", self.id, n, w, workers * n, position * n,
                    position * n + n - 1)
        return managers

    def stop_managers(self, managers: list[Manager]) -> None:
        if managers:
            self.managing = False
            self.count_sessions("manager", -len(managers))

    def count_sessions(self, role: str, n: int) -> None:
        sessions = self.ledger.sessions
        sessions[role] = max(sessions.get(role, 0) + n, 0)

    def _request(self, kind: str, seconds: float, problem: str | None) -> None:
        request_type, name, octets = _ROLE.get()
        cast(Any, self.environment.events.request).fire(
            request_type=request_type, name=name, response_time=1000.0 * seconds,
            response_length=octets if kind == "accepted" else 0, context={},
            exception=None if problem is None else BlockingClientError(problem))

    def send(self, *, drained: bool = False, final: bool = False) -> None:
        runner = self.environment.runner
        if runner is None:
            return
        self.ledger.index = int(getattr(runner, "worker_index", self.ledger.index))
        try:
            runner.send_message(BATCH, self.ledger.take_batch(drained=drained, final=final))
        except Exception:  # a lost connection to the master (Locust reconnects): batch lost
            logger.exception("mailharness: cannot send a batch to the master")

    def _flush(self) -> None:
        while True:
            gevent.sleep(self.interval)
            self.send()

    def on_drain(self) -> None:
        if self.drain.is_set():
            return
        self.drain.set()
        self.interval = DRAIN_FLUSH_INTERVAL
        gevent.spawn(self._drained)

    def _drained(self) -> None:
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while self.sessions and time.monotonic() < deadline:
            gevent.sleep(0.05)
        self.send(drained=True)

    def stop(self) -> None:
        self._flusher.kill(block=False)
        self.send(drained=True, final=True)
        c = self.ledger.counts()
        logger.info("mailharness: worker %s: %d accepted, %d found of its own, %d errors",
                    self.id, c["accepted"], c["delivered"], c["errors"])


class _Process:
    """What this process is doing: a worker (users), a master (the merge), or both (Locust
    without --master or --worker)."""

    def __init__(self) -> None:
        self.worker: _Worker | None = None
        self.problem: str | None = None
        self.master: _Master | None = None
        self.master_target: Target | None = None


_PROCESS = _Process()


def _worker(environment: Environment) -> _Worker:
    """This process's worker state, for a user's on_start; StopUser when there is none."""
    if _PROCESS.worker is None:
        logger.error("mailharness: no target, the user stops: %s", _PROCESS.problem)
        raise StopUser()
    return _PROCESS.worker


class SubmissionUser(User):
    """A submission session after another (`users.Sender`), as the sender's first account."""

    weight = 3
    wait_time = constant(0)
    #: Locust's name for its requests.
    request_name = "submission"

    def on_start(self) -> None:
        self.worker = _worker(self.environment)
        target = self.worker.target
        self.sender = self._sender(target)
        _ROLE.set(("SMTP", self.request_name, self.worker.options.size))
        self._backoff = 0.1

    def _sender(self, target: Target) -> Sender:
        if not target.sender.accounts:
            logger.error("mailharness: the target's sender has no account to submit with")
            raise StopUser()
        return Sender(target, self.worker.ledger, self.worker.drain,
                      account=target.sender.accounts[0],
                      recipients=[a.address for a, _ in self.worker.mailboxes],
                      size=self.worker.options.size, budget=self.worker.budget,
                      rng=random.Random())

    @task
    def session(self) -> None:
        worker = self.worker
        if worker.drain.is_set() or self.sender.done:
            gevent.sleep(0.5)  # the senders' part is over; the readers' is not
            return
        worker.sessions += 1
        try:
            self.sender.session()
            self._backoff = 0.1
        except (BlockingClientError, OSError) as exc:
            worker.ledger.error(f"{self.sender.name}: {error_kind(exc)}")
            worker.drain.wait(self._backoff)
            self._backoff = min(self._backoff * 2, MAX_BACKOFF)
        finally:
            worker.sessions -= 1


class InjectorUser(SubmissionUser):
    """Inbound mail from outside: `users.Sender` without AUTH into the receiver's MX, for its
    first account."""

    weight = 1
    request_name = "MX injection"

    def _sender(self, target: Target) -> Sender:
        if target.receiver.mx is None:
            logger.error("mailharness: an injector needs the receiver's MX in the target")
            raise StopUser()
        return Sender(target, self.worker.ledger, self.worker.drain, account=None,
                      recipients=[a.address for a, _ in self.worker.mailboxes[:1]],
                      size=self.worker.options.size, budget=self.worker.budget,
                      rng=random.Random(), endpoint=target.receiver.mx)


class ReaderUser(User):
    """An IMAP session on every recipient's INBOX (`users.Reader`), each in a greenlet of its
    own, polling for new messages until the user stops."""

    weight = 2
    wait_time = constant(1)

    def on_start(self) -> None:
        self.stop_reading = threading.Event()
        self.greenlets: list[gevent.Greenlet] = []
        worker = _worker(self.environment)
        readers = [Reader(worker.target, worker.ledger, self.stop_reading, account=account,
                          imaps=endpoint, facts=worker.facts[account.address])
                   for account, endpoint in worker.mailboxes]
        self.worker, self.readers = worker, len(readers)
        worker.count_sessions("reader", len(readers))
        self.greenlets = [gevent.spawn(self._read, reader) for reader in readers]

    @staticmethod
    def _read(reader: Reader) -> None:
        _ROLE.set(("IMAP", "reader", 0))
        reader.run()

    @task
    def watch(self) -> None:
        """Nothing: the readers run in their greenlets."""

    def on_stop(self) -> None:
        self.stop_reading.set()
        gevent.joinall(self.greenlets, timeout=1.0)
        gevent.killall(self.greenlets, block=True, timeout=2.0)
        if self.greenlets:
            self.worker.count_sessions("reader", -self.readers)


class ManagerUser(User):
    """The worker's IMAP managers (`users.Manager`, `_Worker.start_managers`), each in a
    greenlet of its own, for as long as the user runs: STORE of their own keywords on their
    own share of the messages, NOOP checks of each other's, FETCH 1:*, SEARCH, COPY, MOVE,
    APPEND and EXPUNGE, every response checked (imapview). One per worker: the master sets
    ``fixed_count`` to the number of workers when the test starts (Locust hands the fixed
    users out round-robin, before the weighted ones), and a second one on a worker would add
    no manager."""

    fixed_count = 1
    wait_time = constant(1)

    def on_start(self) -> None:
        self.stop_managing = threading.Event()
        self.managers: list[Manager] = []
        self.greenlets: list[gevent.Greenlet] = []
        self.worker: _Worker | None = None
        self.worker = _worker(self.environment)
        self.managers = self.worker.start_managers(self.stop_managing)
        self.greenlets = [gevent.spawn(self._manage, manager) for manager in self.managers]

    @staticmethod
    def _manage(manager: Manager) -> None:
        _ROLE.set(("IMAP", "manager", 0))
        manager.run()

    @task
    def watch(self) -> None:
        """Nothing: the managers run in their greenlets."""

    def on_stop(self) -> None:
        self.stop_managing.set()
        gevent.joinall(self.greenlets, timeout=1.0)
        gevent.killall(self.greenlets, block=True, timeout=2.0)
        if self.worker is not None:
            self.worker.stop_managers(self.managers)


# --- the master ---------------------------------------------------------------------------


class _Master:
    """The merged ledger of one test, and its verdict."""

    def __init__(self, environment: Environment, target: Target, options: Options) -> None:
        self.environment, self.target, self.options = environment, target, options
        run_time = getattr(environment.parsed_options, "run_time", None)
        self.merged = MergedLedger(time.time(),
                                   interval=timeline_interval(float(run_time or 300)))
        self.done = False

    def on_batch(self, data: dict[str, Any]) -> None:
        self.merged.add(data)

    def finish(self, *, interrupted: bool = False) -> None:
        """Drain the senders, wait for the last messages, judge and write; once per test.
        Interrupted (Locust quits before the test stopped), there is no delivery phase and no
        message counts as lost."""
        if self.done:
            return
        self.done = True
        merged, runner = self.merged, self.environment.runner
        load_seconds = time.time() - merged.started
        waited_out = False
        if not interrupted and runner is not None:
            runner.send_message(DRAIN, {"at": time.time()})
            deadline = time.monotonic() + DRAIN_TIMEOUT
            while not merged.drained() and time.monotonic() < deadline:
                gevent.sleep(0.1)
            if not merged.drained():
                logger.warning("mailharness: not every worker said its senders stopped")
            timeout = (self.options.delivery_timeout if self.options.delivery_timeout is not None
                       else self.target.delivery_timeout)
            deadline = time.monotonic() + timeout
            said = 0.0
            while merged.outstanding() and time.monotonic() < deadline:
                if time.monotonic() - said >= 2.0:
                    said = time.monotonic()
                    logger.info("mailharness: delivery: %d outstanding, %.1f s left",
                                merged.outstanding(), deadline - said)
                gevent.sleep(0.1)
            waited_out = True
        result = merged.judge(now=time.time(), load_seconds=load_seconds, waited_out=waited_out,
                              interrupted=interrupted)
        if not result.ok:
            self.environment.process_exit_code = 1
        print(merged.summary(result), flush=True)
        if self.options.results:
            data = {**merged.to_json(result), "target": self.target.name}
            try:
                Path(self.options.results).write_text(json.dumps(data, indent=2) + "\n",
                                                      encoding="utf-8")
            except OSError as exc:
                logger.error("mailharness: cannot write %s: %s", self.options.results, exc)
                self.environment.process_exit_code = 2
            else:
                print(f"mailharness: merged results in {self.options.results}", flush=True)


# --- Locust's events ----------------------------------------------------------------------


def _is_master(runner: Runner | None) -> bool:
    return isinstance(runner, MasterRunner | LocalRunner)


def _is_worker(runner: Runner | None) -> bool:
    return isinstance(runner, WorkerRunner | LocalRunner)


def _on_init(environment: Environment, **_: object) -> None:
    runner = environment.runner
    if _is_master(runner):
        assert runner is not None
        try:
            _PROCESS.master_target = Options.of(environment).load()
        except (TargetError, LoadError) as exc:
            logger.error("mailharness: %s", exc)
            raise SystemExit(2) from None
        runner.register_message(BATCH, _on_batch)
    if _is_worker(runner):
        assert runner is not None
        runner.register_message(DRAIN, _on_drain)


def _on_batch(environment: Environment, msg: Message, **_: object) -> None:
    if _PROCESS.master is not None:
        _PROCESS.master.on_batch(msg.data)


def _on_drain(environment: Environment, msg: Message, **_: object) -> None:
    if _PROCESS.worker is not None:
        _PROCESS.worker.on_drain()


def _plan_managers(environment: Environment, options: Options) -> None:
    """Before the users are handed out (Locust fires test_start first): one ManagerUser per
    worker, or none with ``--mailharness-managers 0``, and each worker's position among the
    workers, sent to them with the options (PLAN)."""
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        nodes = [*runner.clients.ready, *runner.clients.running, *runner.clients.spawning]
        ids = sorted((str(n.id) for n in nodes), key=runner.get_worker_index)
    else:
        ids = [str(getattr(runner, "client_id", "local"))]
    ManagerUser.fixed_count = len(ids) if options.managers > 0 else 0
    ManagerUser.weight = 1 if options.managers > 0 else 0  # weight 0, fixed 0: never spawned
    if environment.parsed_options is not None:
        setattr(environment.parsed_options, PLAN, {id_: n for n, id_ in enumerate(ids)})


def _on_test_start(environment: Environment, **_: object) -> None:
    runner, options = environment.runner, Options.of(environment)
    if _is_master(runner) and _PROCESS.master_target is not None:
        _PROCESS.master = _Master(environment, _PROCESS.master_target, options)
        _plan_managers(environment, options)
    if _is_worker(runner):
        # The master's options are here now (Locust sends them with the first spawn).
        try:
            target = options.load()
        except (TargetError, LoadError) as exc:
            _PROCESS.worker, _PROCESS.problem = None, str(exc)
            logger.error("mailharness: %s", exc)
            return
        _PROCESS.worker = _Worker(environment, target, options)


def _on_test_stopping(environment: Environment, **_: object) -> None:
    # Before Locust stops the users: the readers must go on reading through the delivery phase.
    if _is_master(environment.runner) and _PROCESS.master is not None:
        _PROCESS.master.finish()


def _on_test_stop(environment: Environment, **_: object) -> None:
    if _is_worker(environment.runner) and _PROCESS.worker is not None:
        worker, _PROCESS.worker = _PROCESS.worker, None
        worker.stop()


def _on_quitting(environment: Environment, **_: object) -> None:
    if _is_master(environment.runner) and _PROCESS.master is not None:
        _PROCESS.master.finish(interrupted=True)


_listen(events.init_command_line_parser, _arguments)
_listen(events.init, _on_init)
_listen(events.test_start, _on_test_start)
_listen(events.test_stopping, _on_test_stopping)
_listen(events.test_stop, _on_test_stop)
_listen(events.quitting, _on_quitting)
