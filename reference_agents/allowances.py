"""Named, off-by-default *allowances* in the reference agents: behaviours the RFCs permit that a
check could mistake for a fault. They are the twin of quirks: a quirk proves a check *can* fail;
an allowance proves it does *not* fail on what the RFC permits (tests/quirks/test_allowances.py
runs every suite with each one on and wants nothing red).

The agents read allowances exactly as they read quirks (``config.has_quirk(name)``); only the
registry, the options (``--allowance``) and the listing keep them apart."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class Allowance:
    name: str
    agent: str
    #: The requirement ids a careless check could red for this behaviour.
    guards: tuple[str, ...]
    #: The RFC text that permits it.
    basis: str
    description: str


_ALLOWANCES: tuple[Allowance, ...] = (
    Allowance("mx_catch_all", "mta", ("PIPELINING-ORDER", "ROUTE-UNKNOWN-USER", "RELAY-ADDRESS-FORMS"),
              "RFC 5321 §3.3, RFC 2920 §3.2",
              "the MX accepts any local part of its domains and delivers it to the domain's first "
              "account (a catch-all mailbox)"),
    Allowance("smtp_mail_before_ehlo", "msa+mta", ("STARTTLS-RESET", "SMTP-COMMAND-ORDER"),
              "RFC 5321 §4.1.4",
              "MAIL is accepted before any EHLO or HELO (the session is treated as after HELO)"),
    Allowance("mx_no_starttls", "mta", ("STARTTLS-RESET", "STARTTLS-ONCE", "STARTTLS-NOT-REQUIRED-MX"),
              "RFC 3207 §4",
              "the MX neither offers nor implements STARTTLS (502 to STARTTLS, RFC 5321 §4.2.4)"),
    Allowance("smtp_help_211", "msa+mta", ("SMTP-REPLY-CODES",),
              "RFC 5321 §4.3.2 (HELP: 211, 214, 502, 504)",
              "HELP is answered 211 (system status) instead of 214"),
    Allowance("smtp_help_502", "msa+mta", ("SMTP-REPLY-CODES",),
              "RFC 5321 §4.3.2 (HELP: 211, 214, 502, 504)",
              "HELP is not implemented: 502"),
    Allowance("smtp_vrfy_252", "msa+mta", ("SMTP-VRFY-NO-FALSE-250", "SMTP-REPLY-CODES"),
              "RFC 5321 §3.5.3, §7.3",
              "VRFY, with or without an argument, is answered 252 (cannot verify, will accept)"),
    Allowance("imap_bye_after_five_bad", "imap", ("IMAP-BAD-COMMAND",),
              "RFC 9051 §3.4, §7.1.5 (as SMTP-ERROR-LIMIT, RFC 5321 §7.8)",
              "after the fifth BAD command in a session the server sends BYE and closes"),
    Allowance("imap_late_exists", "imap", ("IMAP-SEARCH-CORRECT", "IMAP-SESSIONS-AGREE"),
              "RFC 9051 §5.2, §7.4.1",
              "a message another session added is announced (* n EXISTS) only after the "
              "responses of the command in progress, which does not see it yet"),
)


def _build(entries: Iterable[Allowance]) -> dict[str, Allowance]:
    table: dict[str, Allowance] = {}
    for allowance in entries:
        if allowance.name in table:
            raise ValueError(f"duplicate allowance {allowance.name!r}")
        table[allowance.name] = allowance
    return table


#: Every allowance by name.
ALLOWANCES: Mapping[str, Allowance] = MappingProxyType(_build(_ALLOWANCES))


def check_allowances(names: Iterable[str]) -> frozenset[str]:
    """Validate allowance names; raise ValueError naming the first unknown one."""
    result = frozenset(names)
    for name in sorted(result):
        if name not in ALLOWANCES:
            known = ", ".join(sorted(ALLOWANCES)) or "none"
            raise ValueError(f"unknown allowance {name!r} (known: {known})")
    return result
