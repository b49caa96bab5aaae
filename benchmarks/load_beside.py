"""`mailharness load` against the reference agents and against Postfix + Dovecot in one run,
with the same options: the figures side by side, and their ratio.

The reference agents run as `mailharness serve` in a process of their own
(benchmarks/served.py); Postfix and Dovecot in the network namespace of servers/netns.sh, as
.ci/independent starts them (benchmarks/beside.py; root, and the packages installed). Each
round runs the load once against each, in turn (the reference agents first in odd rounds), so
that the noise of a shared machine falls on both; the figures are the medians over the rounds.

    sudo .venv/bin/python benchmarks/load_beside.py --rounds 2 -- --duration 20 --rate 20
    sudo .venv/bin/python benchmarks/load_beside.py --json load-beside.json -- --duration 20

Options after ``--`` go to `mailharness load` (default ``--duration 20 --max-messages 400
--delivery-timeout 60``). The exit status is 1 when a run violated an invariant."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.beside import NETNS, independent_missing, independent_servers  # noqa: E402
from benchmarks.served import serve_process  # noqa: E402
from harness.targets import dump_target  # noqa: E402

DEFAULT_LOAD = ["--duration", "20", "--max-messages", "400", "--delivery-timeout", "60"]
LOAD_TIMEOUT = 600


def figures(data: dict[str, Any]) -> dict[str, float]:
    """The figures of one run's JSON results that are compared."""
    counts, latency = data["counts"], data["latency"]
    seconds = max(float(data.get("load_seconds") or data["seconds"]), 1e-9)
    return {
        "accepted_per_s": counts["accepted"] / seconds,
        "accepted": counts["accepted"],
        "delivered": counts["delivered"],
        "imap_per_s": latency["imap"]["count"] / seconds,
        "submit_p50_ms": 1000 * latency["submit"]["p50"],
        "submit_p99_ms": 1000 * latency["submit"]["p99"],
        "delivery_p50_ms": 1000 * latency["delivery"]["p50"],
        "delivery_p99_ms": 1000 * latency["delivery"]["p99"],
        "imap_p50_ms": 1000 * latency["imap"]["p50"],
        "imap_p99_ms": 1000 * latency["imap"]["p99"],
        "errors": counts["errors"],
        "violations": counts["violations"],
    }


def run_load(target_file: Path, out: Path, load_args: list[str], *, netns: bool) -> dict[str, Any]:
    prefix = [str(NETNS), "exec"] if netns else []
    command = [*prefix, sys.executable, "-m", "mailharness.cli", "load", "--target",
               str(target_file), *load_args, "--json", str(out), "--report",
               str(out.with_suffix(".html"))]
    done = subprocess.run(command, capture_output=True, text=True, timeout=LOAD_TIMEOUT)
    if done.returncode not in (0, 1) or not out.exists():
        raise RuntimeError(f"mailharness load exited {done.returncode}: {done.stderr.strip()}")
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    data["summary_text"] = done.stdout.strip().splitlines()
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", help="write every run's figures and the medians here")
    parser.add_argument("load_args", nargs="*", help="`mailharness load` options, after --")
    args = parser.parse_args(argv)
    missing = independent_missing()
    if missing:
        print(f"load_beside: Postfix and Dovecot cannot run here: {missing}", file=sys.stderr)
        return 2
    load_args = args.load_args or DEFAULT_LOAD
    work = Path(tempfile.mkdtemp(prefix="mailharness-load-beside-"))
    runs: dict[str, list[dict[str, Any]]] = {"reference": [], "independent": []}
    with serve_process(prefix="mailharness-load-beside-serve-") as (_, target), \
            independent_servers() as independent_target:
        reference_target = work / "reference.toml"
        reference_target.write_text(dump_target(target), encoding="utf-8")
        for number in range(1, args.rounds + 1):
            order = ["reference", "independent"] if number % 2 else ["independent", "reference"]
            for side in order:
                out = work / f"{side}-{number}.json"
                data = run_load(reference_target if side == "reference" else independent_target,
                                out, load_args, netns=side == "independent")
                runs[side].append(data)
                print(f"round {number} {side}: " + " | ".join(data["summary_text"][:1]),
                      flush=True)
    medians = {side: {k: statistics.median(figures(d)[k] for d in data)
                      for k in figures(data[0])} for side, data in runs.items()}
    print(f"\n{'figure':18} {'reference':>12} {'Postfix+Dovecot':>16} {'ratio':>7}")
    for key in medians["reference"]:
        ours, theirs = medians["reference"][key], medians["independent"][key]
        ratio = f"{ours / theirs:7.2f}" if theirs else "      -"
        print(f"{key:18} {ours:12.1f} {theirs:16.1f} {ratio}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "load_args": load_args, "rounds": args.rounds, "medians": medians,
            "runs": {side: [{"figures": figures(d), "summary": d["summary_text"],
                             "violation_counts": d.get("violation_counts", {}),
                             "imap_commands": d.get("imap_commands", {})} for d in data]
                     for side, data in runs.items()},
        }, indent=2) + "\n", encoding="utf-8")
    return 1 if any(figures(d)["violations"] for data in runs.values() for d in data) else 0


if __name__ == "__main__":
    sys.exit(main())
