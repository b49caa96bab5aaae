"""IMAP QUOTA (RFC 9208): GETQUOTAROOT and GETQUOTA, the resources advertised, the MESSAGE usage,
STATUS DELETED-STORAGE and the OVERQUOTA refusal of APPEND and COPY over a limit.

The tests run where the server advertises QUOTA; what RFC 9208 added to RFC 2087 (the exact
resources, DELETED-STORAGE, OVERQUOTA) only where it advertises a "QUOTA=RES-" capability
(RFC 9208 §1: clients "MUST NOT rely on their presence in the absence of any capability
beginning with "QUOTA=""). The OVERQUOTA test fills the second account up to its limit, and
is skipped where that would take more than 60 messages or 2 MiB.
"""

from __future__ import annotations

import pytest

from harness.clients.imap import CommandResult, IMAPClient
from harness.protocol.imap.formatting import astring
from harness.protocol.imap.responses import Status, Untagged
from harness.suite import Evidence, check, need, precondition, run, token
from harness.targets import Target
from suites.imap.imap_helpers import append, mbox, message, scratch, select, session, uids

pytestmark = pytest.mark.step(9)

#: Limits the OVERQUOTA test may fill: messages, and KiB (RFC 9208 §5.1: STORAGE is "in units
#: of 1024 octets").
_MAX_FILL_MESSAGES = 60
_MAX_FILL_KIB = 2048
#: Each filler of a STORAGE limit: 256 KiB of text.
_FILLER_KIB = 256

Quotas = dict[str, dict[str, tuple[int, int]]]


def _need_quota(client: IMAPClient) -> None:
    need("QUOTA" in client.capabilities, "the server does not advertise QUOTA")


def _need_rfc9208(client: IMAPClient) -> None:
    need(any(c.startswith("QUOTA=") for c in client.capabilities),
         "the server advertises QUOTA (RFC 2087) but no QUOTA= capability (RFC 9208)")


def _quotas(result: CommandResult) -> Quotas:
    """The QUOTA responses of a command: root -> resource -> (usage, limit). A malformed list
    makes the test not reached (the responses are parsed generically)."""
    found: Quotas = {}
    for r in result.untagged:
        if isinstance(r, Untagged) and r.kind == "QUOTA" and len(r.data) == 2:
            root, triplets = r.data
            precondition(isinstance(triplets, tuple) and len(triplets) % 3 == 0
                         and all(isinstance(n, int) for i, n in enumerate(triplets) if i % 3),
                         f"QUOTA {root!r} {triplets!r} is not a list of triplets")
            assert isinstance(triplets, tuple)
            found[str(root)] = {str(triplets[i]).upper(): (int(triplets[i + 1]), int(triplets[i + 2]))
                                for i in range(0, len(triplets), 3)}
    return found


def _roots(result: CommandResult) -> list[tuple[str, list[str]]]:
    """The QUOTAROOT responses: (mailbox, [roots])."""
    return [(str(r.data[0]), [str(x) for x in r.data[1:]]) for r in result.untagged
            if isinstance(r, Untagged) and r.kind == "QUOTAROOT" and r.data]


async def _quota_of(client: IMAPClient, mailbox: str) -> Quotas:
    """GETQUOTAROOT *mailbox* as a step: its roots' QUOTA responses."""
    result = await client.command(f"GETQUOTAROOT {mbox(mailbox)}")
    precondition(result.ok, f"GETQUOTAROOT {mailbox} answered {result.status}")
    return _quotas(result)


@pytest.mark.requirement("IMAP-QUOTA-ROOT", "IMAP-QUOTA-GETQUOTA", "IMAP-QUOTA-RES")
def test_imap_quota_roots(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with session(target, evidence) as client:
            _need_quota(client)
            result = await client.command("GETQUOTAROOT INBOX")
            roots = _roots(result)
            quotas = _quotas(result)
            listed = roots[0][1] if roots else []
            # RFC 9208 §4.1.2: "Responses: REQUIRED untagged responses: QUOTAROOT, QUOTA";
            # "For each listed quota root, it also returns the quota root's resource usage and
            # limits in an untagged QUOTA response."
            check("IMAP-QUOTA-ROOT",
                  result.ok and len(roots) == 1 and roots[0][0].upper() == "INBOX"
                  and all(root in quotas for root in listed),
                  f"GETQUOTAROOT INBOX answered {result.status}, QUOTAROOT {roots}, QUOTA "
                  f"for {sorted(quotas)}")
            need(bool(listed), "INBOX has no quota root")
            for root in listed:
                got = await client.command(f"GETQUOTA {astring(root).decode()}")
                # §4.1.1: "The GETQUOTA command takes the name of a quota root and returns the
                # quota root's resource usage and limits in an untagged QUOTA response."
                answered = _quotas(got)
                check("IMAP-QUOTA-GETQUOTA",
                      got.ok and set(answered.get(root, {})) == set(quotas[root]),
                      f"GETQUOTA {root!r} answered {got.status} with {answered}, GETQUOTAROOT "
                      f"reported {quotas[root]}")
            _need_rfc9208(client)
            # §3.1.1: "Supported resource names MUST be advertised as a capability by
            # prepending the resource name with "QUOTA=RES-"."
            resources = {name for limits in quotas.values() for name in limits}
            missing = sorted(r for r in resources if f"QUOTA=RES-{r}" not in client.capabilities)
            check("IMAP-QUOTA-RES", not missing,
                  f"QUOTA reports {sorted(resources)}; not advertised: {missing}")

    run(scenario())


@pytest.mark.requirement("IMAP-QUOTA-USAGE")
def test_imap_quota_message_usage_is_exact(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with session(target, evidence) as client, scratch(client) as name:
            _need_quota(client)
            need("QUOTA=RES-MESSAGE" in client.capabilities,
                 "the server does not advertise QUOTA=RES-MESSAGE")
            before = await _quota_of(client, name)
            counted = [root for root, limits in before.items() if "MESSAGE" in limits]
            need(bool(counted), "no quota root of the mailbox has a MESSAGE limit")
            # RFC 9208 §5.2: "MESSAGE" is the number of messages stored within the mailboxes
            # governed by the quota root. "This MUST be an exact number". Other sessions may
            # add or remove messages meanwhile, so an APPEND counted exactly once in three
            # tries is enough.
            steps = []
            for _ in range(3):
                used = before[counted[0]]["MESSAGE"][0]
                await append(client, name, message(token()))
                before = await _quota_of(client, name)
                now = before.get(counted[0], {}).get("MESSAGE", (-1, 0))[0]
                steps.append(now - used)
                if now - used == 1:
                    break
            check("IMAP-QUOTA-USAGE", 1 in steps,
                  f"each APPEND of one message moved the MESSAGE usage by {steps}")

    run(scenario())


@pytest.mark.requirement("IMAP-QUOTA-DELETED-STORAGE")
def test_imap_quota_status_deleted_storage(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with session(target, evidence) as client, scratch(client) as name:
            _need_quota(client)
            need("QUOTA=RES-STORAGE" in client.capabilities,
                 "the server does not advertise QUOTA=RES-STORAGE")
            await append(client, name, message(token()))
            await append(client, name, message(token()))

            async def deleted_storage() -> object:
                result = await client.command(f"STATUS {mbox(name)} (DELETED-STORAGE)")
                items = [r.items for r in result.untagged if isinstance(r, Status)]
                # RFC 9208 §5.1: "When the server supports this resource type, it MUST also
                # support the DELETED-STORAGE status data item."
                check("IMAP-QUOTA-DELETED-STORAGE", result.ok and len(items) == 1
                      and isinstance(items[0].get("DELETED-STORAGE"), int),
                      f"STATUS (DELETED-STORAGE) answered {result.status} with {items}")
                return items[0]["DELETED-STORAGE"]

            none = await deleted_storage()
            await select(client, name)
            first = (await uids(client))[0]
            stored = await client.command(f"UID STORE {first} +FLAGS.SILENT (\\Deleted)")
            precondition(stored.ok, f"UID STORE \\Deleted answered {stored.status}")
            one = await deleted_storage()
            # §4.1.4: "the amount of storage space that can be reclaimed by performing EXPUNGE
            # on the mailbox": nothing while no message is \Deleted, something once one is.
            check("IMAP-QUOTA-DELETED-STORAGE", none == 0 and isinstance(one, int) and one > 0,
                  f"DELETED-STORAGE {none} with no \\Deleted message, {one} with one")

    run(scenario())


async def _fill(client: IMAPClient, name: str, resource: str, room: int) -> CommandResult | None:
    """Append to *name* until the quota refuses; the refusal, or None when the server took
    more than *room* (the limit is soft)."""
    filler = message(token(), body=("x" * 1023 + "\n") * _FILLER_KIB) if resource == "STORAGE" \
        else message(token())
    for _ in range(room + 2):
        result = await client.append(name, filler)
        if not result.ok:
            return result
    return None


@pytest.mark.requirement("IMAP-QUOTA-OVERQUOTA")
def test_imap_quota_overquota_refuses_append_and_copy(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with session(target, evidence, account_index=1) as client, \
                scratch(client) as name:
            _need_quota(client)
            _need_rfc9208(client)
            quotas = await _quota_of(client, name)
            room = {(resource, used_limit[1] - used_limit[0])
                    for limits in quotas.values() for resource, used_limit in limits.items()}
            small = sorted(((r, n) for r, n in room if r == "MESSAGE" and n <= _MAX_FILL_MESSAGES)
                           or ((r, n) for r, n in room if r == "STORAGE" and n <= _MAX_FILL_KIB),
                           key=lambda rn: rn[1])
            need(bool(small), f"reaching a quota limit takes more than {_MAX_FILL_MESSAGES} "
                              f"messages or {_MAX_FILL_KIB} KiB (room left: {sorted(room)})")
            resource, left = small[0]
            room_in_fillers = left if resource == "MESSAGE" else left // _FILLER_KIB + 1
            await append(client, name, message(token()))  # the message to COPY later
            refused = await _fill(client, name, resource, room_in_fillers)
            need(refused is not None, f"the server took more than the {resource} limit (a soft "
                                      "limit, RFC 9208 §3.1.2)")
            assert refused is not None
            await select(client, name)
            held = await uids(client)
            # RFC 9208 §4.3.1: "The OVERQUOTA response code SHOULD be returned in the tagged
            # NO response to an APPEND/COPY/MOVE when the addition of the message(s) puts the
            # target mailbox over any one of its quota limits."
            code = refused.code.name if refused.code else None
            check("IMAP-QUOTA-OVERQUOTA", refused.status == "NO" and code == "OVERQUOTA",
                  f"the APPEND over the {resource} limit answered {refused.status} [{code}]")
            copied = await client.command(f"UID COPY {held[0]} {mbox(name)}")
            code = copied.code.name if copied.code else None
            check("IMAP-QUOTA-OVERQUOTA", copied.status == "NO" and code == "OVERQUOTA",
                  f"a COPY over the {resource} limit answered {copied.status} [{code}]")
            after = await uids(client)
            check("IMAP-QUOTA-OVERQUOTA", after == held,
                  f"the refused COPY left UIDs {after}, not the {len(held)} held before")

    run(scenario())
