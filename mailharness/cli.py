"""The `mailharness` command: serve the reference agents, run the suites, merge reports, list
quirks, replay dialogues, run a DNS zone server. Part of the composition root: it may import every
layer."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.dns import ZoneServer
    from reference_agents.topology import Topology


def _serve(args: argparse.Namespace) -> int:
    from reference_agents.allowances import check_allowances
    from reference_agents.quirks import check_quirks
    from reference_agents.topology import (
        ConfigError,
        Topology,
        load_settings,
        settings_from_dict,
    )

    try:
        if args.config:
            settings = load_settings(Path(args.config), data_dir=Path(args.data_dir) if args.data_dir else None)
        else:
            settings = settings_from_dict({}, source="defaults", base=Path.cwd(),
                                          data_dir=Path(args.data_dir or "mailharness-data"))
        if args.quirk:
            settings = replace(settings, quirks=settings.quirks | check_quirks(args.quirk))
        if args.allowance:
            settings = replace(settings, allowances=settings.allowances | check_allowances(args.allowance))
    except (ConfigError, ValueError) as exc:
        print(f"mailharness serve: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_serve_forever(Topology(settings), Path(args.target_file or settings.data_dir / "target.toml")))


async def _serve_forever(topology: Topology, target_file: Path) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await topology.start()  # stops what it started before raising
    except OSError as exc:
        print(f"mailharness serve: cannot start: {exc}", file=sys.stderr)
        return 1
    try:
        topology.write_target_file(target_file)
        target = topology.target()
        print(f"mailharness reference agents are up (data in {topology.settings.data_dir})")
        assert topology.dns is not None
        print(f"  DNS zone server        {topology.settings.dns_address}:{topology.dns.port}")
        for provider in (target.sender, target.receiver):
            for kind in ("submission", "submissions", "mx", "imap", "imaps"):
                endpoint = getattr(provider, kind)
                print(f"  {provider.domain:<12} {kind:<11} {endpoint.url}")
            for acct in provider.accounts:
                print(f"  {provider.domain:<12} account     {acct.user} / {acct.password}")
        print(f"  example.com  sink MX     {topology.settings.sink_address}:{topology.outbound_port}")
        print(f"  CA certificate         {target.ca_file}")
        print(f"target file: {target_file}   (pytest --pyargs suites --target {target_file})")
        print("Ctrl-C stops.", flush=True)
        await stop.wait()
        print("stopping ...", flush=True)
    finally:
        await topology.stop()
    return 0


def _run(args: argparse.Namespace, extra: list[str]) -> int:
    import pytest

    # This process imported `harness` before pytest could mark it for assertion rewriting;
    # only the suites' own asserts need rewriting, and they are not imported yet.
    argv = ["--pyargs", "suites", "-p", "no:cacheprovider", "--report", args.report,
            "-W", "ignore::pytest.PytestAssertRewriteWarning"]
    if args.target:
        argv += ["--target", args.target]
    for quirk in args.quirk:
        argv += ["--quirk", quirk]
    for allowance in args.allowance:
        argv += ["--allowance", allowance]
    argv += ["--fail-on", args.fail_on]
    return int(pytest.main(argv + extra))


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
    serve = sub.add_parser("serve", help="run the reference agents in the foreground (Ctrl-C stops)")
    serve.add_argument("--config", help="TOML configuration (see docs/serve.md)")
    serve.add_argument("--data-dir", help="where mail, queues and certificates live (default ./mailharness-data)")
    serve.add_argument("--target-file", help="where to write the target file (default DATA_DIR/target.toml)")
    serve.add_argument("--quirk", action="append", default=[], help="start with this named fault (repeatable)")
    serve.add_argument("--allowance", action="append", default=[],
                       help="start with this RFC-permitted variant (repeatable)")
    run = sub.add_parser("run", help="run the suites (default: against the embedded reference agents)",
                         description="Extra arguments after -- go to pytest.")
    run.add_argument("--report", default="mailharness-report.html", help="HTML report path")
    run.add_argument("--target", help="target file describing the servers to test")
    run.add_argument("--quirk", action="append", default=[], help="embedded agents with this fault")
    run.add_argument("--allowance", action="append", default=[],
                     help="embedded agents with this RFC-permitted variant")
    run.add_argument("--fail-on", choices=("must", "should"), default="must",
                     help="exit non-zero for failed MUSTs only (default), or for failed SHOULDs too")
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
            return _serve(args)
        if args.command == "run":
            return _run(args, extra)
        if args.command == "report":
            return _report(args)
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
