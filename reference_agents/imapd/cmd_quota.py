"""IMAP QUOTA (RFC 9208): GETQUOTA, GETQUOTAROOT, SETQUOTA, the usage of a user's one quota root
and the OVERQUOTA refusal of APPEND, COPY and MOVE."""

from __future__ import annotations

from harness.protocol.imap.commands import Command, MailboxArg, QuotaRoot, SetQuota
from harness.protocol.imap.formatting import astring, format_mailbox
from reference_agents.imapd.context import HandlerContext
from reference_agents.imapd.handler_helpers import user_of
from reference_agents.imapd.state import Handler, Result

#: The one quota root of every user; it governs all the user's mailboxes. RFC 9208 §3.2: "Quota
#: root names need not be mailbox names".
ROOT = ""
#: RFC 9208 §3.1.1: "Supported resource names MUST be advertised as a capability by prepending
#: the resource name with "QUOTA=RES-"." No QUOTASET: SETQUOTA is for administrators.
CAPABILITIES = ("QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE")


def capabilities(s: HandlerContext) -> list[str]:
    if s.config.has_quirk("imap_quota_res_missing"):
        return ["QUOTA", "QUOTA=RES-STORAGE"]  # quirk: MESSAGE reported, not advertised
    return list(CAPABILITIES)


def usage(s: HandlerContext, user: str) -> tuple[int, int]:
    """(octets, messages) over all the user's mailboxes (the store sums them in its index)."""
    if s.config.has_quirk("imap_quota_counts_inbox_only"):
        return s.store.usage(user, "INBOX")  # quirk: only INBOX's messages count
    return s.store.usage(user)


def _kib(octets: int) -> int:
    """RFC 9208 §5.1: STORAGE is "in units of 1024 octets"."""
    return (octets + 1023) // 1024


def _quota_response(s: HandlerContext, user: str) -> bytes:
    """``* QUOTA root (STORAGE used limit MESSAGE used limit)`` (RFC 9208 §4.2.1): a triplet
    for each limited resource ("Resources not named in the list are not limited")."""
    quota = s.config.quota_of(user)
    octets, count = usage(s, user)
    triplets = []
    if quota.storage_kib is not None:
        triplets.append(f"STORAGE {_kib(octets)} {quota.storage_kib}")
    if quota.messages is not None:
        triplets.append(f"MESSAGE {count} {quota.messages}")
    return b"* QUOTA " + astring(ROOT) + b" (" + " ".join(triplets).encode("ascii") + b")\r\n"


def over_quota(s: HandlerContext, user: str, messages: int, octets: int) -> Result | None:
    """The refusal of adding *messages* messages of *octets* octets in all, when that would
    take the user over a limit; None when they fit. The limits are hard: RFC 9208 §3.1.2 "an
    implementation MAY choose, or be configured, to disallow any command if the limit on a
    resource is or would be exceeded"."""
    quota = s.config.quota_of(user)
    used_octets, used_messages = usage(s, user)
    over = ((quota.messages is not None and used_messages + messages > quota.messages)
            or (quota.storage_kib is not None
                and _kib(used_octets + octets) > quota.storage_kib))
    if not over:
        return None
    if s.config.has_quirk("imap_overquota_no_code"):  # quirk: NO without OVERQUOTA
        return Result("NO", "quota exceeded")
    # RFC 9208 §4.3.1: "The OVERQUOTA response code SHOULD be returned in the tagged NO
    # response to an APPEND/COPY/MOVE when the addition of the message(s) puts the target
    # mailbox over any one of its quota limits."
    return Result("NO", "quota exceeded", "OVERQUOTA")


async def getquotaroot(s: HandlerContext, cmd: Command) -> Result:
    assert isinstance(cmd.args, MailboxArg)
    user = user_of(s)
    # RFC 9208 §4.1.2: "REQUIRED untagged responses: QUOTAROOT, QUOTA"; "the mailbox name
    # parameter doesn't have to reference an existing mailbox".
    s.write(b"* QUOTAROOT " + format_mailbox(cmd.args.mailbox, utf8=s.rev2) + b" "
            + astring(ROOT) + b"\r\n")
    if not s.config.has_quirk("imap_quotaroot_no_quota"):  # quirk: no QUOTA responses
        s.write(_quota_response(s, user))
    return Result("OK", "GETQUOTAROOT completed")


async def getquota(s: HandlerContext, cmd: Command) -> Result:
    assert isinstance(cmd.args, QuotaRoot)
    # RFC 9208 §4.1.1: "NO - getquota error: no such quota root" (quirk imap_getquota_no_root:
    # the root GETQUOTAROOT names is not found either)
    if cmd.args.root != ROOT or s.config.has_quirk("imap_getquota_no_root"):
        return Result("NO", "no such quota root", "NONEXISTENT")
    s.write(_quota_response(s, user_of(s)))
    return Result("OK", "GETQUOTA completed")


async def setquota(s: HandlerContext, cmd: Command) -> Result:
    assert isinstance(cmd.args, SetQuota)
    # RFC 9208 §4.1.3: "NO - setquota error: can't set that data"; limits are the
    # administrator's configuration (and QUOTASET is not advertised).
    return Result("NO", "quota limits are set by the administrator", "NOPERM")


COMMANDS: dict[str, Handler] = {
    "GETQUOTAROOT": getquotaroot,
    "GETQUOTA": getquota,
    "SETQUOTA": setquota,
}
