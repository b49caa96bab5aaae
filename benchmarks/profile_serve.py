"""Where `mailharness serve` spends its time during workload (a) of benchmarks/compare.py:
py-spy samples serve and its child processes while the stdlib driver submits, and the top
frames by self time are printed per kind of process (main: the MSA and the MX; delivery;
imap).

    .venv/bin/python benchmarks/profile_serve.py [--messages 1000] [--sessions 8]
        [--config-line 'imap_workers = 0' ...] [--raw profile.txt] [--top 8]

With ``--cpu``, nothing is sampled: the CPU seconds each process (and the driver, in this
process) used during the workload are printed instead, per kind of process, from /proc.

``--config-line`` adds a line to serve's TOML (for example ``delivery_process = false`` and
``imap_workers = 0`` for everything in one process). py-spy (``pip install py-spy``) must be
allowed to read the processes' memory: root, or ``kernel.yama.ptrace_scope = 0``. Sampling
slows serve down, so the rate printed here is not a benchmark figure; compare.py's is.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.compare import submission  # noqa: E402
from benchmarks.served import ServeProcess, serve_process  # noqa: E402
from harness.targets import Target  # noqa: E402

WARM_UP_MESSAGES = 200


def _kind(frames: list[str]) -> str:
    """The kind of process a py-spy stack was sampled in: a child's stack starts with its
    command line (`python -c from reference_agents.<module> import main ...`)."""
    if len(frames) > 1 and frames[1].startswith("process "):
        return "delivery" if "reference_agents.delivery" in frames[1] else "imap"
    return "main"


def _descendants(root: int) -> list[int]:
    """*root* and every process below it (from /proc)."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children[ppid].append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def cpu_by_kind(root: int) -> dict[str, tuple[float, float]]:
    """CPU seconds (user, system) so far of *root* and its descendants, per kind of process."""
    tick = os.sysconf("SC_CLK_TCK")
    totals: dict[str, tuple[float, float]] = collections.defaultdict(lambda: (0.0, 0.0))
    for pid in _descendants(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # ended meanwhile
        kind = ("delivery" if "reference_agents.delivery" in command
                else "imap" if "reference_agents.imapd" in command else "main")
        user, system = totals[kind]
        totals[kind] = (user + int(fields[11]) / tick, system + int(fields[12]) / tick)
    return dict(totals)


def _driver_cpu() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def cpu_report(before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]],
               driver: tuple[float, float], messages: int, figures: dict[str, float]) -> str:
    """CPU milliseconds per message of each kind of process (user and system time), from the
    first submission until every message was visible, and the share of that wall time."""
    seconds = figures["visible_seconds"]
    lines = [f"{messages / figures['accepted_seconds']:.1f} msg/s accepted, "
             f"{messages / seconds:.1f} msg/s end to end; CPU over those {seconds:.2f} s:",
             f"  {'process':9} {'CPU s':>7}  {'ms/msg':>6} ({'user':>5} {'sys':>5})  % of a core"]
    used = {kind: (after[kind][0] - before.get(kind, (0.0, 0.0))[0],
                   after[kind][1] - before.get(kind, (0.0, 0.0))[1]) for kind in after}
    used["driver"] = driver
    used["all"] = (sum(u for u, _ in used.values()), sum(s for _, s in used.values()))
    for kind, (user, system) in sorted(used.items(), key=lambda kv: -sum(kv[1])):
        cpu = user + system
        lines.append(f"  {kind:9} {cpu:7.2f}  {1000 * cpu / messages:6.2f} "
                     f"({1000 * user / messages:5.2f} {1000 * system / messages:5.2f})  "
                     f"{100 * cpu / seconds:5.0f}")
    return "\n".join(lines)


def top_frames(raw: Path, count: int) -> str:
    """The *count* frames with the most self time per kind of process, from py-spy's raw
    (collapsed stack) output."""
    by_kind: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for line in raw.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack or not samples.isdigit():
            continue
        frames = stack.split(";")
        by_kind[_kind(frames)][frames[-1]] += int(samples)
    total = sum(sum(c.values()) for c in by_kind.values())
    lines = [f"{total} samples"]
    for kind, counter in sorted(by_kind.items(), key=lambda kv: -sum(kv[1].values())):
        samples = sum(counter.values())
        lines.append(f"{kind}: {samples} samples ({100 * samples / total:.0f} %)")
        lines += [f"  {n:6d} {100 * n / samples:5.1f} %  {frame}" for frame, n in counter.most_common(count)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--config-line", action="append", default=[])
    parser.add_argument("--raw", type=Path, help="keep py-spy's raw output here")
    parser.add_argument("--top", type=int, default=8)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--cpu", action="store_true",
                        help="no sampling: CPU seconds per kind of process during the workload")
    args = parser.parse_args()
    if min(args.messages, args.sessions, args.top, args.rate) < 1:
        parser.error("counts must be at least 1")
    if args.cpu:
        cpu_only(args)
        return
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        parser.error("py-spy is not installed (pip install py-spy)")
    with _warmed_serve(args) as (served, target):
        assert served.process is not None
        raw = args.raw or served.work / "profile.txt"
        spy = subprocess.Popen(
            [py_spy, "record", "--pid", str(served.process.pid), "--subprocesses", "--nonblocking",
             "--format", "raw", "--rate", str(args.rate), "-o", str(raw)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.5)  # py-spy attaches to every process
        figures = submission(target, args.messages, args.sessions)
        spy.send_signal(signal.SIGINT)
        _, error = spy.communicate(timeout=60)
        if not raw.exists():
            raise SystemExit(f"py-spy wrote no profile: {error.decode(errors='replace').strip()}")
        print(f"{args.messages / figures['accepted_seconds']:.1f} msg/s accepted while sampled")
        print(top_frames(raw, args.top))


@contextlib.contextmanager
def _warmed_serve(args: argparse.Namespace) -> Iterator[tuple[ServeProcess, Target]]:
    """`mailharness serve` with the --config-line lines, after WARM_UP_MESSAGES of workload (a)."""
    config = "".join(line + "\n" for line in args.config_line)
    with serve_process(config, prefix="mailharness-profile-") as (served, target):
        submission(target, WARM_UP_MESSAGES, args.sessions)
        yield served, target


def cpu_only(args: argparse.Namespace) -> None:
    with _warmed_serve(args) as (served, target):
        assert served.process is not None
        time.sleep(2.0)  # the warm-up's deliveries end
        before, (user, system) = cpu_by_kind(served.process.pid), _driver_cpu()
        figures = submission(target, args.messages, args.sessions)
        after, (user2, system2) = cpu_by_kind(served.process.pid), _driver_cpu()
        driver = (user2 - user, system2 - system)
        print(cpu_report(before, after, driver, args.messages, figures))


if __name__ == "__main__":
    main()
