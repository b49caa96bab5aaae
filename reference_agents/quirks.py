"""Named, off-by-default faults in the reference agents, each violating one requirement.

A suite's check is only trusted once a quirk makes it fail (tests/quirks)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class Quirk:
    name: str
    agent: str
    requirements: tuple[str, ...]
    description: str


_FLOW_QUIRKS: tuple[Quirk, ...] = (
    # MSA
    Quirk("msa_greeting_554", "msa", ("SMTP-GREETING-220",),
          "greets with 554 instead of 220"),
    Quirk("msa_ehlo_bad_continuation", "msa", ("SMTP-REPLY-SYNTAX",),
          "multiline EHLO reply uses a space instead of '-' after the code on a middle line"),
    Quirk("msa_ehlo_refused", "msa", ("SMTP-EHLO-250",),
          "answers EHLO 502 on the submission ports (HELO still works)"),
    Quirk("msa_no_starttls", "msa", ("SUBMIT-STARTTLS",),
          "port 587 neither advertises nor accepts STARTTLS"),
    Quirk("msa_implicit_tls_plaintext", "msa", ("SUBMIT-IMPLICIT-TLS",),
          "port 465 speaks plain text instead of TLS"),
    Quirk("msa_no_auth_required", "msa", ("AUTH-REQUIRED",),
          "accepts MAIL without authentication"),
    Quirk("msa_accept_any_password", "msa", ("AUTH-BAD-CREDENTIALS",),
          "AUTH succeeds with any password for a known user"),
    Quirk("msa_auth_before_tls", "msa", ("AUTH-NO-PLAINTEXT",),
          "offers and accepts AUTH PLAIN/LOGIN before STARTTLS"),
    Quirk("msa_any_sender", "msa", ("SUBMIT-SENDER-RIGHTS",),
          "lets an authenticated user send as any address"),
    Quirk("msa_no_date", "msa", ("SUBMIT-ADD-DATE",),
          "does not add a missing Date header"),
    Quirk("msa_no_message_id", "msa", ("SUBMIT-ADD-MESSAGE-ID",),
          "does not add a missing Message-ID header"),
    # MTA
    Quirk("mta_lose_after_accept", "mta", ("HANDOFF-RESPONSIBILITY",),
          "answers 250 to DATA but never queues the message"),
    Quirk("mta_mx_reverse_preference", "mta", ("MX-PREFERENCE",),
          "tries MX hosts highest preference value first"),
    Quirk("mta_no_implicit_mx", "mta", ("MX-IMPLICIT",),
          "treats a domain without MX records as undeliverable"),
    Quirk("mta_no_retry", "mta", ("TRANSFER-RETRY",),
          "treats a 4yz reply as final and drops the message"),
    Quirk("mta_no_bounce", "mta", ("TRANSFER-BOUNCE",),
          "drops a message refused with 5yz without telling the sender"),
    Quirk("mta_bounce_with_sender", "mta", ("BOUNCE-NULL-SENDER",),
          "sends bounces with a non-null MAIL FROM"),
    Quirk("mta_reject_local", "mta", ("ROUTE-LOCAL-DELIVERY",),
          "refuses RCPT for its own local users on port 25 (451 4.3.0)"),
    Quirk("mta_open_relay", "mta", ("ROUTE-NO-OPEN-RELAY",),
          "relays mail for any domain from unauthenticated clients"),
    Quirk("mta_accept_unknown_user", "mta", ("ROUTE-UNKNOWN-USER",),
          "accepts RCPT for local users that do not exist (and drops the mail)"),
    Quirk("mta_no_received", "mta", ("TRACE-RECEIVED",),
          "does not add a Received header"),
    Quirk("mta_no_dot_stuffing", "mta", ("DELIVER-INTACT",),
          "outbound SMTP sends body lines starting with '.' without doubling the dot"),
    # MDA
    Quirk("mda_no_spam_filter", "mda", ("FILTER-SPAM-VERDICT",),
          "files every message into INBOX and marks none as spam"),
    # IMAP
    Quirk("imap_no_starttls", "imap", ("IMAP-STARTTLS",),
          "answers STARTTLS with BAD"),
    Quirk("imap_login_in_clear", "imap", ("IMAP-LOGINDISABLED",),
          "accepts LOGIN before TLS and does not advertise LOGINDISABLED"),
    Quirk("imap_login_broken", "imap", ("IMAP-LOGIN",),
          "answers LOGIN NO even with the right password"),
    Quirk("imap_accept_any_password", "imap", ("IMAP-LOGIN-BAD",),
          "LOGIN succeeds with any password for a known user"),
    Quirk("imap_uidnext_off_by_one", "imap", ("IMAP-SELECT",),
          "reports UIDNEXT equal to the highest UID instead of greater"),
    Quirk("imap_wrong_size", "imap", ("IMAP-FETCH-BODY",),
          "reports RFC822.SIZE one octet short"),
    Quirk("imap_peek_sets_seen", "imap", ("IMAP-PEEK",),
          "BODY.PEEK[] sets \\Seen"),
    Quirk("imap_store_silent", "imap", ("IMAP-STORE",),
          "STORE +FLAGS (without .SILENT) sends no untagged FETCH"),
    Quirk("imap_expunge_ignored", "imap", ("IMAP-EXPUNGE",),
          "EXPUNGE answers OK but removes nothing"),
    Quirk("imap_idle_no_notify", "imap", ("IMAP-IDLE",),
          "IDLE never reports new messages"),
)


def _build() -> dict[str, Quirk]:
    from reference_agents.quirks_imap import IMAP_QUIRKS
    from reference_agents.quirks_smtp import SMTP_QUIRKS

    table: dict[str, Quirk] = {}
    for quirk in (*_FLOW_QUIRKS, *SMTP_QUIRKS, *IMAP_QUIRKS):
        if quirk.name in table:
            raise ValueError(f"duplicate quirk {quirk.name!r}")
        table[quirk.name] = quirk
    return table


#: Every quirk by name: the flow's, SMTP's in depth (quirks_smtp.py) and IMAP's (quirks_imap.py).
QUIRKS: Mapping[str, Quirk] = MappingProxyType(_build())


def check_quirks(names: Iterable[str]) -> frozenset[str]:
    """Validate quirk names; raise ValueError naming the first unknown one."""
    result = frozenset(names)
    for name in sorted(result):
        if name not in QUIRKS:
            raise ValueError(f"unknown quirk {name!r} (known: {', '.join(sorted(QUIRKS))})")
    return result
