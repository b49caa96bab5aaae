"""The `mailharness` command: serve the reference agents (and print their CA), check a target with
the suites, merge reports, replay dialogues, load a target, write target files and the per-step
pages, list quirks, run a DNS zone server. Part of the composition root: it may import every
layer."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mailharness import check as check_cli
from mailharness import serve as serve_cli

if TYPE_CHECKING:
    from harness.dns import ZoneServer


def _report(args: argparse.Namespace) -> int:
    from reports.html import write_report
    from reports.results import ResultsError, load_results

    try:
        runs = [load_results(Path(p)) for p in args.results]
    except ResultsError as exc:
        print(f"mailharness report: {exc}", file=sys.stderr)
        return 2
    write_report(Path(args.output), runs)
    print(f"mailharness report: {args.output} ({len(runs)} target(s))")
    return 0


def _dns(args: argparse.Namespace) -> int:
    from harness.dns import ZoneServer

    server = ZoneServer(args.address, args.port)
    try:
        for spec in args.zone:
            origin, _, path = spec.partition("=")
            server.add_zone(origin, Path(path).read_text(encoding="utf-8") if path else None)
    except (OSError, ValueError) as exc:
        print(f"mailharness dns: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_dns_forever(args, server))


async def _dns_forever(args: argparse.Namespace, server: ZoneServer) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
    except OSError as exc:
        print(f"mailharness dns: cannot listen on {args.address}:{args.port}: {exc.strerror}",
              file=sys.stderr)
        return 1
    try:
        print(f"zone server on {args.address}:{server.port} for {', '.join(server.zones())}; "
              "accepts RFC 2136 UPDATE from loopback. Ctrl-C stops.", flush=True)
        await stop.wait()
    finally:
        await server.stop()
    return 0


def _quirks(args: argparse.Namespace) -> int:
    from reference_agents.allowances import ALLOWANCES
    from reference_agents.quirks import QUIRKS

    print(f"quirks: faults that prove a check can fail ({len(QUIRKS)}; --quirk NAME)")
    for quirk in QUIRKS.values():
        print(f"  {quirk.name:<36} {quirk.agent:<5} {', '.join(quirk.requirements):<36} {quirk.description}")
    print(f"allowances: RFC-permitted variants no check may red ({len(ALLOWANCES)}; --allowance NAME)")
    for allowance in ALLOWANCES.values():
        print(f"  {allowance.name:<36} {allowance.agent:<5} {allowance.basis:<36} {allowance.description}")
    return 0


def _replay(args: argparse.Namespace) -> int:
    """Replay dialogue files: 0 when each passes or does not apply, 1 when a line did not
    hold (a requirement failed, or a step it depends on), 2 on a bad file or target."""
    from harness.dialogue import DialogueError, load_dialogue
    from harness.replay import ReplayError, replay
    from harness.targets import Target, TargetError, load_target, target_from_urls
    from mailharness.embedded import check_names, embedded_target

    try:
        dialogues = [load_dialogue(path) for path in args.files]
        target: Target | None = None
        if args.target:
            target = load_target(args.target)
        elif args.submission or args.mx:
            target = target_from_urls(
                submission=args.submission, mx=args.mx, imap=None, accounts=args.account,
                domain=args.domain, ca_file=args.ca_file, tls_verify=not args.no_tls_verify,
            )
        if target is not None and (args.quirk or args.allowance):
            raise TargetError("--quirk and --allowance apply to the embedded reference agents, "
                              "not to a target")
        check_names(args.quirk, args.allowance)
    except (DialogueError, TargetError, ValueError) as exc:
        print(f"mailharness replay: {exc}", file=sys.stderr)
        return 2
    failed = False
    with contextlib.ExitStack() as stack:
        if target is None:
            target = stack.enter_context(embedded_target(
                quirks=args.quirk, allowances=args.allowance, prefix="mailharness-replay-"))
        for dialogue in dialogues:
            try:
                result = asyncio.run(replay(dialogue, target, reply_timeout=args.timeout))
            except ReplayError as exc:
                print(f"mailharness replay: {exc}", file=sys.stderr)
                return 2
            print(f"== {dialogue.source}")
            print(result.render(mask_auth=not args.show_auth), end="")
            if result.mismatch is not None:
                failed = True
                # FAIL FILE:LINE: REQUIREMENT: expected ..., got ... (a step that did not hold
                # fails no requirement: the others are not reached).
                print(f"{'FAIL' if result.failed else 'NOT REACHED'} {result.mismatch}")
            elif result.not_applicable is not None:
                print(f"NOT APPLICABLE {result.not_applicable}")
            else:
                print(f"PASS {dialogue.source}")
            for requirement, (verdict, _) in result.verdicts().items():
                print(f"  {requirement}: {verdict.replace('_', ' ')}")
    return 1 if failed else 0


def _load(args: argparse.Namespace) -> int:
    from harness.load.profile import ProfileError, load_profile
    from harness.load.runner import LoadError, LoadOptions, run_load, write_json
    from harness.targets import TargetError, load_target
    from mailharness.embedded import check_names, embedded_target

    try:
        # The built-in defaults, then the profile's values, then the options given here.
        fields = load_profile(Path(args.profile)) if args.profile else {}
        given = {"duration": args.duration, "max_messages": args.max_messages,
                 "senders": args.senders, "injectors": args.injectors,
                 "readers_per_mailbox": args.readers, "managers_per_mailbox": args.managers,
                 "size": args.size, "seed": args.seed, "delivery_timeout": args.delivery_timeout,
                 "rate": args.rate}
        fields.update({k: v for k, v in given.items() if v is not None})
        if args.size is not None:
            fields.pop("sizes", None)  # --size: every message that size
        options = LoadOptions(allow_remote=args.allow_remote, **fields)
        options.check()
        target = load_target(Path(args.target)) if args.target else None
        check_names(args.quirk, [])
    except (LoadError, TargetError, ProfileError, ValueError) as exc:
        print(f"mailharness load: {exc}", file=sys.stderr)
        return 2
    result = None
    try:
        with contextlib.ExitStack() as stack:
            if target is None:
                target = stack.enter_context(embedded_target(quirks=args.quirk,
                                                             prefix="mailharness-load-"))
            try:
                # Ctrl-C during the run ends its load phase; the verdict and the report follow.
                result = run_load(target, options)
            except LoadError as exc:
                print(f"mailharness load: {exc}", file=sys.stderr)
                return 2
    except KeyboardInterrupt:
        if result is None:  # while the embedded agents started: nothing to report
            print("mailharness load: interrupted before the load began", file=sys.stderr)
            return 130
    print(result.summary())
    if args.json:
        write_json(result, Path(args.json))
        print(f"mailharness load: results in {args.json}")
    from reports.load_html import write_load_report

    write_load_report(Path(args.report), result.to_json())
    print(f"mailharness load: report in {args.report}")
    return 0 if result.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mailharness",
        description="Email protocol conformance harness: reference agents, SMTP/IMAP suites, reports.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the reference agents in the foreground (Ctrl-C stops)",
                           description="The CA, the certificates and (with base_port) the ports "
                                       "are kept in the data directory: client configurations "
                                       "keep working after a restart. Exit status: 0 stopped, "
                                       "1 could not start, 2 a bad config or data directory.")
    serve_cli.add_arguments(serve)
    serve.add_argument("--print-target", action="store_true",
                       help="print the target file of the serve using this config and data "
                            "directory (running, or the last), and exit")
    ca = sub.add_parser("ca", help="print the path of the CA certificate that serve's "
                                   "certificates are signed by (made if there is none yet)")
    serve_cli.add_arguments(ca, agents=False)
    for name in ("check", "run"):
        check = sub.add_parser(
            name, help=("run the suites and show a verdict per flow step (default: against the "
                        "embedded reference agents)") if name == "check" else "the same as check",
            description="Progress per flow step while the suites run, then one screen: each "
                        "step's requirements passed, failed and not applicable, the failures "
                        "with their requirement ids and RFC sections, and the report. Exit "
                        "status: 0 nothing counts against the target under --fail-on, 1 a "
                        "requirement at that level failed or a harness error, 2 interrupted or "
                        "bad options, 5 no test ran. Extra arguments after -- go to pytest.")
        check_cli.add_arguments(check)
    report = sub.add_parser("report", help="merge JSON results of several targets into one HTML report")
    report.add_argument("results", nargs="+", help="JSON results files written by a run")
    report.add_argument("-o", "--output", default="mailharness-report.html")
    replay = sub.add_parser(
        "replay", help="replay SMTP dialogue files against a server (default: the embedded agents)",
        description="Exit status: 0 every dialogue passed (or did not apply), 1 a server reply "
                    "did not match, 2 a bad dialogue file or target.")
    replay.add_argument("files", nargs="+", metavar="FILE", help="dialogue files (docs/dialogues.md)")
    replay.add_argument("--target", help="target file (TOML) describing the servers")
    replay.add_argument("--submission", metavar="URL", help="submission endpoint, e.g. smtp://127.0.0.2:587")
    replay.add_argument("--mx", metavar="URL", help="inbound MX endpoint, e.g. smtp://127.0.0.3:25")
    replay.add_argument("--account", action="append", default=[], metavar="USER:PASSWORD[:ADDRESS]",
                        help="an account on the server (repeatable)")
    replay.add_argument("--domain", help="mail domain of the server (with URL options)")
    replay.add_argument("--ca-file", metavar="PEM", help="CA certificates to trust")
    replay.add_argument("--no-tls-verify", action="store_true", help="do not verify certificates")
    replay.add_argument("--quirk", action="append", default=[], help="embedded agents with this fault")
    replay.add_argument("--allowance", action="append", default=[],
                        help="embedded agents with this RFC-permitted variant")
    replay.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each reply")
    replay.add_argument("--show-auth", action="store_true", help="do not mask AUTH credentials")
    load = sub.add_parser(
        "load", help="load a target (default: the embedded agents) and check every message",
        description="Senders submit self-verifying messages while readers fetch them over IMAP; "
                    "every accepted message must arrive, intact. Exit status: 0 no invariant "
                    "violated, 1 a violation, 2 bad options or target.")
    load.add_argument("--target", help="target file (TOML); loopback addresses only unless "
                                       "--allow-remote")
    load.add_argument("--profile", help="the mix in a TOML file ([load]: duration, senders, "
                                        "sizes, ...; docs/load.md); options given here win")
    load.add_argument("--duration", type=float, help="seconds of load (default 30)")
    load.add_argument("--max-messages", type=int,
                      help="stop sending after this many messages (default 100000)")
    load.add_argument("--senders", type=int, help="submission sessions at once (default 4)")
    load.add_argument("--injectors", type=int,
                      help="MX injectors: unauthenticated mail to the receiver's MX (default 0)")
    load.add_argument("--readers", type=int, help="IMAP readers per mailbox (default 1)")
    load.add_argument("--managers", type=int, help="IMAP managers per mailbox: STORE, COPY, "
                                                   "MOVE, APPEND, EXPUNGE (default 2)")
    load.add_argument("--size", type=int, help="octets per message, about (default 1500)")
    load.add_argument("--seed", type=int, help="seed of the random choices (default 1)")
    load.add_argument("--rate", type=float, help="messages per second over all senders, an "
                                                 "open loop (default: as fast as taken)")
    load.add_argument("--delivery-timeout", type=float,
                      help="seconds for the last messages to arrive (default: the target's)")
    load.add_argument("--json", help="write the results here")
    load.add_argument("--report", default="mailharness-load.html",
                      help="HTML report with charts (default mailharness-load.html)")
    load.add_argument("--allow-remote", action="store_true",
                      help="allow a target with non-loopback addresses")
    load.add_argument("--quirk", action="append", default=[], help="embedded agents with this fault")
    targets = sub.add_parser("targets", help="target files: `targets init` writes one to start from")
    targets_sub = targets.add_subparsers(dest="targets_command", required=True)
    init = targets_sub.add_parser(
        "init", help="write a commented target file (a template, or serve's with --from-serve)",
        description="Writes a target file with every key explained; it loads as it is. Exit "
                    "status: 0 written, 2 a problem (one line).")
    init.add_argument("-o", "--output", default="target.toml", help="where (default target.toml)")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.add_argument("--from-serve", action="store_true",
                      help="the target of `mailharness serve` (running, or the last) with this "
                           "config and data directory")
    serve_cli.add_arguments(init, agents=False)
    init.add_argument("--target-file", help="with --from-serve: serve's --target-file, if it "
                                            "was given one")
    docs = sub.add_parser("docs", help="write the per-step pages of what is checked "
                                       "(docs/steps/) from the requirement registry")
    docs.add_argument("--out", default="docs/steps", help="directory (default docs/steps)")
    docs.add_argument("--check", action="store_true",
                      help="exit 1 when the pages there differ from what would be written")
    sub.add_parser("quirks", help="list the named faults and the allowances of the reference agents")
    dns = sub.add_parser("dns", help="run a standalone DNS zone server (for an external MTA to resolve through)")
    dns.add_argument("--address", default="127.0.0.1", help="loopback address to listen on")
    dns.add_argument("--port", type=int, default=5300, help="UDP and TCP port (0 = free)")
    dns.add_argument("--zone", action="append", default=[], metavar="ORIGIN[=FILE]",
                     help="serve this zone, from a zone file or empty (repeatable)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in args_list:
        cut = args_list.index("--")
        args_list, extra = args_list[:cut], args_list[cut + 1:]
    args = build_parser().parse_args(args_list)
    with contextlib.suppress(KeyboardInterrupt):
        if args.command == "serve":
            return serve_cli.serve(args)
        if args.command == "ca":
            return serve_cli.ca(args)
        if args.command in ("check", "run"):
            return check_cli.check(args, extra)
        if args.command == "report":
            return _report(args)
        if args.command == "targets":
            from mailharness.targets_init import init as targets_init

            return targets_init(args)
        if args.command == "docs":
            from mailharness.steps_doc import main as docs_main

            return docs_main(args)
        if args.command == "quirks":
            return _quirks(args)
        if args.command == "dns":
            return _dns(args)
        if args.command == "replay":
            return _replay(args)
        if args.command == "load":
            return _load(args)
    return 130


if __name__ == "__main__":
    raise SystemExit(main())
