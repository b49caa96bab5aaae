"""IMAP CREATE-SPECIAL-USE (RFC 6154 §3): CREATE name (USE (attr)) gives the new mailbox that
special use, which LIST shows; a special use the server cannot assign gets NO and no mailbox.

The tests run where the server advertises CREATE-SPECIAL-USE ("Clients MUST NOT use the "USE"
parameter unless the server advertises the capability") and are skipped elsewhere.
"""

from __future__ import annotations

import pytest

from harness.clients.imap import IMAPClient
from harness.protocol.imap.responses import List
from harness.suite import Evidence, check, need, run, token
from harness.targets import Target
from suites.imap.imap_helpers import cleanup, mbox, session

pytestmark = pytest.mark.step(9)

#: A use-attr-ext ("\" atom, RFC 6154 §6) no specification defines: no server can assign it.
_UNKNOWN_USE = "\\XMailharnessUnknownUse"


def _need_create_special_use(client: IMAPClient) -> None:
    need("CREATE-SPECIAL-USE" in client.capabilities,
         "the server does not advertise CREATE-SPECIAL-USE")


async def _listed(client: IMAPClient, name: str) -> list[List]:
    result = await client.command(f'LIST "" {mbox(name)} RETURN (SPECIAL-USE)'
                                  if "SPECIAL-USE" in client.capabilities
                                  else f'LIST "" {mbox(name)}')
    return [r for r in result.untagged if isinstance(r, List) and r.mailbox == name]


@pytest.mark.requirement("IMAP-CREATE-SPECIAL-USE")
def test_imap_create_with_special_use(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with session(target, evidence) as client:
            _need_create_special_use(client)
            name = token()
            try:
                created = await client.command(f"CREATE {mbox(name)} (USE (\\Archive))")
                # RFC 6154 §3: a server "MAY allow clients to designate a mailbox, at
                # creation, as having one or more special uses"; one that cannot "MUST NOT
                # create the mailbox, and MUST respond to the CREATE command with a tagged NO".
                need(created.ok, f"CREATE (USE (\\Archive)) answered {created.status}: the "
                                 "server does not assign \\Archive")
                listed = await _listed(client, name)
                attrs = [a.lower() for r in listed for a in r.attributes]
                check("IMAP-CREATE-SPECIAL-USE", "\\archive" in attrs,
                      f"after CREATE (USE (\\Archive)) OK, LIST shows {listed}")
            finally:
                await cleanup(client, name)

    run(scenario())


@pytest.mark.requirement("IMAP-USEATTR")
def test_imap_create_with_unassignable_use_refused(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with session(target, evidence) as client:
            _need_create_special_use(client)
            name = token()
            try:
                created = await client.command(f"CREATE {mbox(name)} (USE ({_UNKNOWN_USE}))")
                listed = await _listed(client, name)
                # RFC 6154 §3: "If the server cannot create a mailbox with the designated
                # special use defined, for whatever reason, it MUST NOT create the mailbox, and
                # MUST respond to the CREATE command with a tagged NO response."
                check("IMAP-USEATTR", created.status == "NO" and not listed,
                      f"CREATE (USE ({_UNKNOWN_USE})) answered {created.status}; LIST shows "
                      f"{listed}")
            finally:
                await cleanup(client, name)

    run(scenario())
