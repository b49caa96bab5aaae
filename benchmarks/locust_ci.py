"""A distributed load run on loopback, as CI runs it: the embedded reference agents, their target
file, a Locust master and --workers Locust workers (harness/load/locustfile.py), each a process
of its own; the merged figures at the end.

    python benchmarks/locust_ci.py [--workers 2] [--users 8] [--run-time 8] [--quirk NAME]
                                   [--managers N] [--delivery-timeout S] [--json PATH]

Every worker runs one ManagerUser, with --managers IMAP managers per mailbox (default 2; 0:
none), counted in --users.

The master binds 127.0.0.1 on a free port; the workers connect to it by address. Every process
is bounded by a timeout and, if still running then, ended (by its own pid). Exit status: 0 when
the merged verdict names no violation and at least one message was delivered, every worker
having sent events; 1 otherwise; with --expect REQUIREMENT (repeatable), 0 when the violations
name exactly those requirements.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.targets import Target, dump_target  # noqa: E402

LOCUSTFILE = ROOT / "harness" / "load" / "locustfile.py"
#: Every user class of harness/load/locust_users.py.
#: Seconds the workers have to connect, and the processes to end after the master.
CONNECT_TIMEOUT = 30.0
END_TIMEOUT = 20.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def write_target_file(target: Target, path: Path) -> None:
    """The target, as separate processes read it (harness/targets.py: load_target reads back
    what dump_target writes)."""
    path.write_text(dump_target(dataclasses.replace(target, embedded=False)), encoding="utf-8")


@dataclass
class LocustRun:
    """What came of one run: the merged results (None if the master wrote none), each
    process's exit status (None: it had to be ended) and its output."""

    results: dict[str, Any] | None
    returncodes: dict[str, int | None] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(f"--- {name} (exit {self.returncodes.get(name)})\n"
                         + "\n".join(text.splitlines()[-lines:])
                         for name, text in self.logs.items())


def _end(process: subprocess.Popen[bytes], timeout: float) -> int | None:
    """Wait for *process*; past *timeout*, end it (SIGTERM, then SIGKILL) and return None."""
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return None


def run_locust(target_file: Path, work_dir: Path, *, workers: int = 2, users: int = 8,
               run_time: float = 8.0, delivery_timeout: float | None = None,
               managers: int | None = None) -> LocustRun:
    """A Locust master and *workers* workers against the target in *target_file*, with
    *managers* IMAP managers per mailbox on each worker (None: the default, 2) in one of the
    *users*; the merged results are written to ``work_dir / "locust.json"``."""
    results = work_dir / "locust.json"
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    base = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]
    master = [*base, "--master", "--headless", "--master-bind-host", "127.0.0.1",
              "--master-bind-port", str(port), "--expect-workers", str(workers),
              "--expect-workers-max-wait", str(int(CONNECT_TIMEOUT)), "-u", str(users),
              "-r", str(users), "--run-time", f"{run_time:g}s", "--only-summary",
              "--mailharness-target", str(target_file), "--mailharness-results", str(results)]
    if delivery_timeout is not None:
        master += ["--mailharness-delivery-timeout", str(delivery_timeout)]
    if managers is not None:
        master += ["--mailharness-managers", str(managers)]
    worker = [*base, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
    commands = {"master": master, **{f"worker {i + 1}": worker for i in range(workers)}}
    processes: dict[str, subprocess.Popen[bytes]] = {}
    logs: dict[str, Path] = {}
    run = LocustRun(None)
    try:
        for name, command in commands.items():
            logs[name] = work_dir / f"{name.replace(' ', '-')}.log"
            with logs[name].open("wb") as out:
                processes[name] = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out,
                                                   stderr=subprocess.STDOUT,
                                                   stdin=subprocess.DEVNULL)
        budget = CONNECT_TIMEOUT + run_time + (delivery_timeout or 30.0) + 60.0
        run.returncodes["master"] = _end(processes["master"], budget)
        for name, process in processes.items():
            if name != "master":
                run.returncodes[name] = _end(process, END_TIMEOUT)
    finally:
        for process in processes.values():
            if process.poll() is None:
                _end(process, 0)
    run.logs = {name: path.read_text("utf-8", "replace") for name, path in logs.items()}
    if results.is_file():
        run.results = json.loads(results.read_text(encoding="utf-8"))
    return run


def figures(results: dict[str, Any]) -> str:
    """The merged figures, a few lines."""
    c, seconds = results["counts"], max(float(results["seconds"]), 1e-9)
    d = results["distributed"]
    lines = [f"locust: {d['workers']} workers, {seconds:.1f} s of load: {c['accepted']} accepted "
             f"({c['accepted'] / seconds:.1f}/s), {c['delivered']} delivered, "
             f"{c['refused']} refused, {c['duplicates']} duplicated, {c['errors']} errors, "
             f"{d['crossed']} found on another worker than the sender's"]
    for kind in ("submit", "delivery", "imap"):
        s = results["latency"][kind]
        lines.append(f"  {kind:9} p50 {1000 * s['p50']:8.1f} ms  p99 {1000 * s['p99']:8.1f} ms  "
                     f"({int(s['count'])})")
    for role, r in d.get("roles", {}).items():
        found = ", ".join(f"{k} {n}" for k, n in sorted(r["violation_counts"].items()))
        lines.append(f"  {role}s: {r['sessions']} sessions, {r['imap_commands']} IMAP commands"
                     f", {'violations ' + found if found else 'no violation'}")
    for name, w in results["workers"].items():
        by_role = ", ".join(f"{n} {k}" for k, n in sorted(w.get("imap_by_role", {}).items()))
        lines.append(f"  worker {w['index']} {name}: {w['accepted']} accepted, {w['found']} "
                     f"found, {w['errors']} errors, {w['imap_commands']} IMAP commands"
                     f"{' (' + by_role + ')' if by_role else ''}")
    for requirement, n in sorted(results["violation_counts"].items()):
        lines.append(f"  VIOLATION {requirement}: {n}")
    return "\n".join(lines)


def verdict(results: dict[str, Any] | None, workers: int, expect: set[str]) -> list[str]:
    """What is wrong with a run; nothing when it passed."""
    if results is None:
        return ["the master wrote no results"]
    problems = []
    named = set(results["violation_counts"])
    if named != expect:
        problems.append(f"violations {sorted(named) or 'none'}, expected {sorted(expect) or 'none'}")
    if not expect and not results["counts"]["delivered"]:
        problems.append("no message was delivered")
    silent = [n for n, w in results["workers"].items() if not (w["accepted"] or w["found"])]
    if len(results["workers"]) < workers or silent:
        problems.append(f"{len(results['workers'])} of {workers} workers heard from, "
                        f"{len(silent)} with no event")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--users", type=int, default=8, help="Locust users in all (-u), "
                        "the workers' ManagerUsers included")
    parser.add_argument("--managers", type=int, help="IMAP managers per mailbox on each "
                        "worker (default 2; 0: none)")
    parser.add_argument("--run-time", type=float, default=8.0, help="seconds of load")
    parser.add_argument("--delivery-timeout", type=float)
    parser.add_argument("--quirk", action="append", default=[],
                        help="start the embedded agents with this fault")
    parser.add_argument("--expect", action="append", default=[], metavar="REQUIREMENT",
                        help="the run passes when its violations name exactly these")
    parser.add_argument("--json", type=Path, help="copy the merged results here")
    args = parser.parse_args(argv)

    from mailharness.embedded import embedded_target

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mailharness-locust-") as tmp, \
            embedded_target(quirks=args.quirk, prefix="mailharness-locust-") as target:
        work = Path(tmp)
        write_target_file(target, work / "target.toml")
        run = run_locust(work / "target.toml", work, workers=args.workers, users=args.users,
                         run_time=args.run_time, delivery_timeout=args.delivery_timeout,
                         managers=args.managers)
    if run.results is not None:
        print(figures(run.results))
        if args.json:
            args.json.write_text(json.dumps(run.results, indent=2) + "\n", encoding="utf-8")
    problems = verdict(run.results, args.workers, set(args.expect))
    print(f"locust: {time.monotonic() - started:.1f} s in all")
    if problems:
        print(run.tail(), file=sys.stderr)
        for problem in problems:
            print(f"locust: {problem}", file=sys.stderr)
        return 1
    print("locust: the merged verdict is as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
