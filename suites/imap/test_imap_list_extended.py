"""IMAP in depth — extended LIST (RFC 9051 §6.3.9; RFC 5258 LIST-EXTENDED, RFC 5819 LIST-STATUS):
selection options, CHILDINFO and the STATUS return option.

They are part of IMAP4rev2 and extensions of IMAP4rev1: the tests run where the server
advertises LIST-EXTENDED (LIST-STATUS for the STATUS return option), or after ENABLE IMAP4rev2.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from harness.clients.imap import IMAPClient
from harness.protocol.imap.responses import List, Status
from harness.suite import Evidence, check, need, precondition, run, token
from harness.targets import Target
from suites.imap.imap_helpers import append, mbox, message, scratch, session

pytestmark = pytest.mark.step(9)


@contextlib.asynccontextmanager
async def _extended(target: Target, evidence: Evidence,
                    capability: str) -> AsyncIterator[tuple[IMAPClient, str]]:
    """A session that may use extended LIST (*capability*, or IMAP4rev2) and a scratch root."""
    async with session(target, evidence) as client:
        if capability not in client.capabilities:
            need("IMAP4REV2" in client.capabilities,
                 f"the server offers neither {capability} nor IMAP4rev2")
            enabled = await client.command("ENABLE IMAP4rev2")
            precondition(enabled.ok, f"ENABLE IMAP4rev2 answered {enabled.status}")
        async with scratch(client) as root:
            yield client, root


def _lists(untagged: tuple[object, ...]) -> dict[str, List]:
    return {r.mailbox: r for r in untagged if isinstance(r, List) and not r.lsub}


def _upper(attributes: tuple[str, ...]) -> set[str]:
    return {a.upper() for a in attributes}


async def _ok(client: IMAPClient, command: str, requirement: str | None = None) -> tuple[object, ...]:
    """Run *command*: its OK is a check of *requirement*, or else a step the test depends on."""
    result = await client.command(command)
    if requirement is None:
        precondition(result.ok, f"{command} answered {result.status}")
    else:
        check(requirement, result.ok, f"{command} answered {result.status}")
    return result.untagged


@pytest.mark.requirement("IMAP-LIST-SELECT-SUBSCRIBED")
def test_imap_list_subscribed_selection(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[str, list[str], dict[str, List]]:
        async with _extended(target, evidence, "LIST-EXTENDED") as (client, root):
            for leaf in ("kept", "plain", "gone"):
                await _ok(client, f"CREATE {mbox(f'{root}/{leaf}')}")
            for leaf in ("kept", "gone"):
                await _ok(client, f"SUBSCRIBE {mbox(f'{root}/{leaf}')}")
            await _ok(client, f"DELETE {mbox(f'{root}/gone')}")
            # The subscription list itself, as LSUB reports it: a server may or may not have
            # dropped the deleted name (RFC 9051 §6.3.7 says it SHOULD NOT).
            lsub = await _ok(client, f'LSUB "" {mbox(root + "/*")}')
            subscribed = sorted(r.mailbox for r in lsub if isinstance(r, List))
            # IMAP-SUBSCRIBE judges the subscription list; this test needs the name on it.
            precondition(f"{root}/kept" in subscribed,
                         f"LSUB does not list the subscribed {root}/kept: {subscribed}")
            listed = _lists(await _ok(client, f'LIST (SUBSCRIBED) "" {mbox(root + "/*")}',
                                      "IMAP-LIST-SELECT-SUBSCRIBED"))
            for leaf in ("kept", "gone"):  # leave no subscription behind
                await client.command(f"UNSUBSCRIBE {mbox(f'{root}/{leaf}')}")
            return root, subscribed, listed

    root, subscribed, listed = run(scenario())
    # RFC 9051 §6.3.9.1: SUBSCRIBED "Causes the LIST command to list subscribed names rather than
    # the existing mailboxes ... the list MUST include exactly those mailbox names that match
    # the canonical list pattern and are subscribed to"; "The "\Subscribed" attribute MUST be
    # supported and MUST be accurately computed"; §7.3.1 \NonExistent: "the mailbox name does
    # not refer to an existing mailbox".
    check("IMAP-LIST-SELECT-SUBSCRIBED", sorted(listed) == subscribed,
          f"LIST (SUBSCRIBED) listed {sorted(listed)}; the subscription list is {subscribed}")
    for name, response in listed.items():
        attributes = _upper(response.attributes)
        check("IMAP-LIST-SELECT-SUBSCRIBED", "\\SUBSCRIBED" in attributes,
              f"{name} listed without \\Subscribed: {sorted(attributes)}")
        if name.endswith("/gone"):
            check("IMAP-LIST-SELECT-SUBSCRIBED", attributes & {"\\NONEXISTENT", "\\NOSELECT"},
                  f"the deleted {name} is listed as if it existed: {sorted(attributes)}")


@pytest.mark.requirement("IMAP-LIST-RECURSIVEMATCH")
def test_imap_list_recursivematch_childinfo(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[str, dict[str, List]]:
        async with _extended(target, evidence, "LIST-EXTENDED") as (client, root):
            child = f"{root}/child"
            await _ok(client, f"CREATE {mbox(child)}")
            await _ok(client, f"SUBSCRIBE {mbox(child)}")
            try:
                # The pattern reaches the parent, not the subscribed child.
                listed = _lists(await _ok(
                    client, f'LIST (SUBSCRIBED RECURSIVEMATCH) "" {mbox(root)}',
                    "IMAP-LIST-RECURSIVEMATCH"))
            finally:
                await client.command(f"UNSUBSCRIBE {mbox(child)}")  # leave no subscription
            return root, listed

    root, listed = run(scenario())
    # RFC 9051 §6.3.9.1 RECURSIVEMATCH: "Forces the server to return information about parent
    # mailboxes that don't match other selection options but have some submailboxes that do.
    # Information about children is returned in the CHILDINFO extended data item"; §6.3.9.6.
    check("IMAP-LIST-RECURSIVEMATCH", root in listed,
          f"LIST (SUBSCRIBED RECURSIVEMATCH) did not return {root}, whose child is subscribed")
    extended = {tag: value for tag, value in listed[root].extended}
    childinfo = extended.get("CHILDINFO")
    check("IMAP-LIST-RECURSIVEMATCH", isinstance(childinfo, tuple) and any(
        str(v).upper() == "SUBSCRIBED" for v in childinfo),
        f"{root} came back with extended data {listed[root].extended}, not "
        "CHILDINFO (\"SUBSCRIBED\")")
    check("IMAP-LIST-RECURSIVEMATCH", "\\SUBSCRIBED" not in _upper(listed[root].attributes),
          f"{root} is not subscribed, yet listed \\Subscribed")


@pytest.mark.requirement("IMAP-LIST-STATUS")
def test_imap_list_return_status(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[list[object], dict[str, dict[str, object]],
                                  dict[str, dict[str, object]]]:
        async with _extended(target, evidence, "LIST-STATUS") as (client, root):
            names = [f"{root}/one", f"{root}/two"]
            for name in names:
                await _ok(client, f"CREATE {mbox(name)}")
            await append(client, names[0], message(token()))
            untagged = await _ok(
                client, f'LIST "" {mbox(root + "/*")} RETURN (STATUS (MESSAGES UIDNEXT))',
                "IMAP-LIST-STATUS")
            order = [(r.kind, r.mailbox) for r in untagged if isinstance(r, List | Status)]
            from_list = {r.mailbox: r.items for r in untagged if isinstance(r, Status)}
            direct: dict[str, dict[str, object]] = {}
            for name in names:
                for r in await _ok(client, f"STATUS {mbox(name)} (MESSAGES UIDNEXT)"):
                    if isinstance(r, Status):
                        direct[name] = r.items
            return list(order), from_list, direct

    order, from_list, direct = run(scenario())
    # RFC 9051 §6.3.9.2 STATUS: "For each selectable mailbox matching the list pattern and
    # selection options, the server MUST return an untagged LIST response followed by an
    # untagged STATUS response containing the information requested".
    check("IMAP-LIST-STATUS", from_list == direct,
          f"LIST RETURN (STATUS) gave {from_list}; STATUS gives {direct}")
    for name in direct:
        check("IMAP-LIST-STATUS", ("LIST", name) in order,
              f"LIST RETURN (STATUS) did not list {name}: {order}")
        at = order.index(("LIST", name))
        check("IMAP-LIST-STATUS", order[at + 1:at + 2] == [("STATUS", name)],
              f"the STATUS of {name} does not follow its LIST response: {order}")
