"""`mailharness targets init`: a commented target file to start from — a template for a server
of your own, or (``--from-serve``) the target of `mailharness serve` with every key explained."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from harness.targets import (
    Account,
    Endpoint,
    ProviderTarget,
    Target,
    TargetError,
    dump_target,
    load_target,
)

#: What each key means, by "table.key" ("" for the top level); written above the key.
COMMENTS: dict[str, str] = {
    ".name": "Shown in the report's headline.",
    ".description": "A line under it.",
    ".embedded": "true only for the agents the suites start themselves; leave false.",
    ".quirks": "Informational: the named faults the target was started with.",
    ".ca_file": "PEM file of the CA(s) to trust for this target's certificates (relative to "
                "this file); without it, the system's CAs.",
    ".tls_verify": "false: accept any certificate (a server with a self-signed one).",
    ".allow_plaintext": "true: the server has no TLS; LOGIN and AUTH go in plain text and every "
                        "TLS check is not applicable.",
    ".delivery_timeout": "Seconds the suites wait for a message to arrive (steps 5-7).",
    ".sink_addresses": "Loopback addresses where the suites bind scriptable MX sinks for steps "
                       "4 and 5 (the sender's MTA must reach them on outbound_port).",
    "dns.server": "The zone server the target's MTA resolves through (ADDRESS:PORT).",
    "dns.update": "true: the suites may change its zones with RFC 2136 UPDATE (needed by "
                  "steps 4 and 5).",
    "sender.domain": "The sending provider's mail domain.",
    "sender.submission": "Submission with STARTTLS (RFC 6409): smtp://ADDRESS:PORT.",
    "sender.submissions": "Submission over implicit TLS (RFC 8314): smtps://ADDRESS:PORT.",
    "sender.mx": "Its inbound MTA (port 25): smtp://ADDRESS:PORT.",
    "sender.imap": "IMAP with STARTTLS: imap://ADDRESS:PORT.",
    "sender.imaps": "IMAP over implicit TLS: imaps://ADDRESS:PORT.",
    "sender.outbound_port": "The port its MTA connects to on the MX hosts it looks up (25, "
                            "unless it is configured otherwise).",
    "sender.mailbox_junk": "The folder its MDA files spam into.",
    "receiver.domain": "The receiving provider's mail domain (mail from sender to here is "
                       "the flow's relay hop).",
}
#: Accounts: the same for sender and receiver.
ACCOUNT_COMMENT = ("An account the suites may log in to and send as (several: the multi-user "
                   "checks need two).")
#: Written where the target has no such key: what to add when it applies.
ABSENT = {
    ".ca_file": '# ca_file = "ca.pem"',
    "dns": '# [dns]\n# server = "127.0.0.1:5300"\n# update = true',
}

def _provider(domain: str, address: str, users: tuple[str, str]) -> ProviderTarget:
    return ProviderTarget(
        domain=domain,
        submission=Endpoint("smtp", address, 587),
        submissions=Endpoint("smtps", address, 465),
        mx=Endpoint("smtp", address, 25),
        imap=Endpoint("imap", address, 143),
        imaps=Endpoint("imaps", address, 993),
        outbound_port=25,
        accounts=tuple(Account(f"{u}@{domain}", "change-me", f"{u}@{domain}") for u in users),
    )


TEMPLATE = Target(
    name="my mail server",
    description="example.org sends, example.net receives; edit the addresses, ports and accounts",
    sender=_provider("example.org", "127.0.0.2", ("alice", "carol")),
    receiver=_provider("example.net", "127.0.0.3", ("bob", "dave")),
    dns=None,
    ca_file=None,
    tls_verify=True,
)


def _wrap(text: str, width: int = 96) -> list[str]:
    lines, line = [], "#"
    for word in text.split():
        if len(line) + 1 + len(word) > width:
            lines.append(line)
            line = "#"
        line += " " + word
    return [*lines, line]


def commented(target: Target, header: str) -> str:
    """*target* as TOML (what load_target reads back), each key under its comment."""
    out = [*_wrap(header), "# Keys: docs/targets.md. Addresses are IP literals: the harness never "
                           "resolves a name.", ""]
    table = ""
    seen: set[str] = set()
    for line in dump_target(target).splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            if table == "" and ".ca_file" not in seen:
                out += [*_wrap(COMMENTS[".ca_file"]), ABSENT[".ca_file"], ""]
                seen.add(".ca_file")
            if stripped == "[sender]" and "dns" not in seen:
                out += [*_wrap("The DNS the target's MTA resolves through, if the suites may "
                               "script it (steps 4 and 5):"), ABSENT["dns"], ""]
                seen.add("dns")
            name = stripped.strip("[]")
            table = name
            seen.add(name.split(".")[0])
            if name.endswith(".accounts"):
                out += _wrap(ACCOUNT_COMMENT)
            out.append(line)
            continue
        key = stripped.partition("=")[0].strip()
        if key:
            note = COMMENTS.get(f"{table}.{key}") or COMMENTS.get(
                f"sender.{key}" if table == "receiver" else "")
            if note and not table.endswith(".accounts"):
                out += _wrap(note)
            seen.add(f"{table}.{key}")
        out.append(line)
    return "\n".join(out) + "\n"


def init(args: argparse.Namespace) -> int:
    output = Path(args.output)
    try:
        if args.from_serve:
            from mailharness.serve import ServeError, settings_for, target_file_for

            try:
                settings = settings_for(args)
            except ServeError as exc:
                raise TargetError(str(exc)) from None
            source = target_file_for(args, settings)
            if not source.exists():
                raise TargetError(f"no target file at {source}: start `mailharness serve` with "
                                  "this config and data directory first")
            target = load_target(source)
            header = (f"The target of `mailharness serve` (from {source}). Its ports hold "
                      "across restarts only with base_port in serve's config.")
        else:
            target = TEMPLATE
            header = ("A target file to start from: describe your mail system (a sending and "
                      "a receiving provider, which may be one server), then run `mailharness "
                      f"check --target {output}`.")
        text = commented(target, header)
        if output.exists() and not args.force:
            raise TargetError(f"{output} exists (give --force to overwrite it)")
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(output.name + ".new")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, output)
        load_target(output)  # what was written must load
    except (TargetError, OSError) as exc:
        problem = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        print(f"mailharness targets init: {problem}", file=sys.stderr)
        return 2
    print(f"mailharness targets init: wrote {output}")
    return 0
