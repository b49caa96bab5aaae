"""`mailharness serve` and `mailharness ca`: the reference agents in the foreground, with a data
directory that keeps their identity (CA, certificates, ports with ``base_port``) across restarts."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import fcntl
import os
import signal
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from reference_agents.topology import Topology, TopologySettings

#: In the data directory: held (flock) by the `serve` using it, and naming its pid.
LOCK_FILE = "serve.lock"


class ServeError(Exception):
    """A problem `serve` or `ca` reports in one line and exits 2 for."""


def add_arguments(parser: argparse.ArgumentParser, *, agents: bool = True) -> None:
    parser.add_argument("--config", help="TOML configuration (see docs/serve.md)")
    parser.add_argument("--data-dir", help="where mail, queues and certificates live "
                                           "(default ./mailharness-data)")
    if not agents:
        return
    parser.add_argument("--target-file",
                        help="where to write the target file (default DATA_DIR/target.toml)")
    parser.add_argument("--quirk", action="append", default=[],
                        help="start with this named fault (repeatable)")
    parser.add_argument("--allowance", action="append", default=[],
                        help="start with this RFC-permitted variant (repeatable)")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"),
                        default="info", help="server log detail: info (default) is one line "
                        "per session event, debug adds every command")
    parser.add_argument("--log-file", metavar="PATH",
                        help="append the server log here (default: standard error)")


def settings_for(args: argparse.Namespace) -> TopologySettings:
    """The topology settings of *args* (config file, data directory, quirks); ServeError for a
    bad file or name."""
    from reference_agents.allowances import check_allowances
    from reference_agents.quirks import check_quirks
    from reference_agents.topology import ConfigError, load_settings, settings_from_dict

    data_dir = Path(args.data_dir) if args.data_dir else None
    try:
        if args.config:
            settings = load_settings(Path(args.config), data_dir=data_dir)
        else:
            settings = settings_from_dict({}, source="defaults", base=Path.cwd(),
                                          data_dir=data_dir or Path("mailharness-data"))
        if getattr(args, "quirk", None):
            settings = replace(settings, quirks=settings.quirks | check_quirks(args.quirk))
        if getattr(args, "allowance", None):
            settings = replace(settings,
                               allowances=settings.allowances | check_allowances(args.allowance))
    except (ConfigError, ValueError) as exc:
        raise ServeError(str(exc)) from None
    return settings


def target_file_for(args: argparse.Namespace, settings: TopologySettings) -> Path:
    return Path(args.target_file) if args.target_file else settings.data_dir / "target.toml"


def running_pid(data_dir: Path) -> int | None:
    """The pid of the `serve` that holds *data_dir*, or None when none does."""
    path = data_dir / LOCK_FILE
    try:
        with open(path, "r+", encoding="ascii") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                text = f.read().strip()
                return int(text) if text.isdigit() else -1
            return None
    except FileNotFoundError:
        return None


@contextlib.contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[None]:
    """Hold *data_dir* for this process: two servers on one queue and one store would corrupt
    both, so a second `serve` there is refused with the first one's pid."""
    data_dir.mkdir(parents=True, exist_ok=True)
    f: IO[str] = open(data_dir / LOCK_FILE, "a+", encoding="ascii")  # noqa: SIM115
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            held = f.read().strip() or "another process"
            raise ServeError(f"{data_dir}: in use by `mailharness serve` (pid {held}); stop it "
                             "or give another --data-dir") from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield
    finally:
        f.close()


def serve(args: argparse.Namespace) -> int:
    try:
        settings = settings_for(args)
        target_file = target_file_for(args, settings)
        if args.print_target:
            return _print_target(settings, target_file)
        with data_dir_lock(settings.data_dir):
            from reference_agents import serverlog
            from reference_agents.topology import Topology

            log_file = Path(args.log_file) if args.log_file else None
            try:
                serverlog.configure(args.log_level, log_file)
            except OSError as exc:
                raise ServeError(f"--log-file {log_file}: {exc.strerror or exc}") from None

            return asyncio.run(_serve_forever(Topology(settings), target_file))
    except ServeError as exc:
        print(f"mailharness serve: {exc}", file=sys.stderr)
        return 2


def _print_target(settings: TopologySettings, target_file: Path) -> int:
    """Print the target file of the `serve` with these settings (running, or the last)."""
    try:
        text = target_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ServeError(f"no target file at {target_file}: start `mailharness serve` with this "
                         "config and data directory first") from None
    pid = running_pid(settings.data_dir)
    sys.stdout.write(text)
    if pid is None:
        note = ("fixed ports (base_port): valid when it runs again" if settings.base_port
                else "its ports may differ at the next start; set base_port to fix them")
        print(f"mailharness serve: not running; this is the last one's target ({note})",
              file=sys.stderr)
    return 0


async def _serve_forever(topology: Topology, target_file: Path) -> int:
    from reference_agents.tls import TLSFilesError

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await topology.start()  # stops what it started before raising
    except TLSFilesError as exc:
        print(f"mailharness serve: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        hint = ("; free it, or choose another base_port"
                if exc.errno == errno.EADDRINUSE and topology.settings.base_port else "")
        print(f"mailharness serve: cannot start: {exc}{hint}", file=sys.stderr)
        return 1
    try:
        topology.write_target_file(target_file)
        _banner(topology, target_file)
        await stop.wait()
        print("stopping ...", flush=True)
    finally:
        await topology.stop()
    return 0


def _banner(topology: Topology, target_file: Path) -> None:
    target = topology.target()
    settings = topology.settings
    print(f"mailharness reference agents are up (data in {settings.data_dir})")
    assert topology.dns is not None
    print(f"  DNS zone server        {settings.dns_address}:{topology.dns.port}")
    for provider in (target.sender, target.receiver):
        for kind in ("submission", "submissions", "mx", "imap", "imaps"):
            endpoint = getattr(provider, kind)
            if endpoint is not None:
                print(f"  {provider.domain:<12} {kind:<11} {endpoint.url}")
        for acct in provider.accounts:
            print(f"  {provider.domain:<12} account     {acct.user} / {acct.password}")
    print(f"  example.com  sink MX     {settings.sink_address}:{topology.outbound_port}")
    print(f"  CA certificate         {target.ca_file}   (certificates for mail.example.org "
          f"= {settings.sender_address}, mail.example.net = {settings.receiver_address})")
    if not settings.base_port:
        print("  ports: chosen at start; set base_port in the config to keep them fixed")
    print(f"target file: {target_file}   (pytest --pyargs suites --target {target_file})")
    print("Ctrl-C stops.", flush=True)


def ca(args: argparse.Namespace) -> int:
    """Print the path of the CA that `serve` with this config and data directory uses, making it
    when there is none yet, so that clients can be set up before the first start."""
    from reference_agents.tls import TLSFilesError, TLSMaterial

    try:
        settings = settings_for(args)
        material = TLSMaterial.load_or_create(settings.data_dir / "tls")
    except (ServeError, TLSFilesError) as exc:
        print(f"mailharness ca: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"mailharness ca: {settings.data_dir}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(material.ca_file.resolve())
    return 0
