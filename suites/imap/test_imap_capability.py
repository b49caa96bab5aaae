"""IMAP in depth — commands of any state and announced extensions: CAPABILITY, LOGOUT, ENABLE, ID,
NAMESPACE."""

from __future__ import annotations

import pytest

from harness.protocol.imap.responses import Capability, Enabled, Id, List, Namespace, UntaggedStatus
from harness.suite import Evidence, check, need, precondition, run
from harness.targets import Target
from suites.imap.imap_helpers import session

pytestmark = pytest.mark.step(9)


@pytest.mark.requirement("IMAP-CAPABILITY")
def test_imap_capability_lists_version(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with session(target, evidence) as client:
            result = await client.capability()
            responses = [r.caps for r in result.untagged if isinstance(r, Capability)]
            # RFC 9051 §6.1.1: "The server MUST send a single untagged CAPABILITY response with
            # "IMAP4rev2" as one of the listed capabilities before the (tagged) OK response."
            # A CAPABILITY response without IMAP4rev2 (RFC 3501: IMAP4rev1) breaks the grammar
            # (capability-data, §9), which the response parser enforces (IMAP-RESPONSE-SYNTAX).
            check("IMAP-CAPABILITY", result.ok, f"CAPABILITY answered {result.status}")
            check("IMAP-CAPABILITY", len(responses) == 1,
                  f"{len(responses)} untagged CAPABILITY responses, not one")

    run(scenario())


@pytest.mark.requirement("IMAP-LOGOUT")
def test_imap_logout_sends_bye(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with session(target, evidence) as client:
            result = await client.logout()
            statuses = [r.status for r in result.untagged if isinstance(r, UntaggedStatus)]
            # RFC 9051 §6.1.3: "The server MUST send a BYE untagged response before the (tagged)
            # OK response, and then close the network connection."
            check("IMAP-LOGOUT", "BYE" in statuses,
                  f"LOGOUT answered {result.status} without an untagged BYE (untagged {statuses})")
            check("IMAP-LOGOUT", result.ok, f"LOGOUT answered {result.status}")

    run(scenario())


@pytest.mark.requirement("IMAP-ENABLE")
def test_imap_enable_answers_enabled(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with session(target, evidence) as client:
            need("ENABLE" in client.capabilities, "server does not advertise ENABLE")
            need("IMAP4REV2" in client.capabilities, "server does not advertise IMAP4rev2")
            result = await client.command("ENABLE IMAP4rev2")
            enabled = [r.caps for r in result.untagged if isinstance(r, Enabled)]
            check("IMAP-ENABLE", result.ok, f"ENABLE IMAP4rev2 answered {result.status}")
            # RFC 5161 §3.1: "If the ENABLE command is successful, the server MUST send an
            # untagged ENABLED response".
            check("IMAP-ENABLE", enabled, "ENABLE succeeded without an untagged ENABLED response")
            check("IMAP-ENABLE", any("IMAP4REV2" in {c.upper() for c in caps} for caps in enabled),
                  f"ENABLED does not list IMAP4rev2: {enabled}")

    run(scenario())


@pytest.mark.requirement("IMAP-ID")
def test_imap_id_answers(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with session(target, evidence) as client:
            need("ID" in client.capabilities, "server does not advertise ID")
            result = await client.command('ID ("name" "mailharness")')
            ids = sum(1 for r in result.untagged if isinstance(r, Id))
            # RFC 2971 §3.1: "A server MUST send a tagged ID response to an ID command." — the
            # ID response (RFC 2971 §3.2) before the tagged OK.
            check("IMAP-ID", result.ok, f"ID answered {result.status}")
            check("IMAP-ID", ids == 1, f"{ids} untagged ID responses, not one")

    run(scenario())


@pytest.mark.requirement("IMAP-NAMESPACE")
def test_imap_namespace_matches_list(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with session(target, evidence) as client:
            need("NAMESPACE" in client.capabilities, "server does not advertise NAMESPACE")
            result = await client.command("NAMESPACE")
            namespaces = [r for r in result.untagged if isinstance(r, Namespace)]
            check("IMAP-NAMESPACE", result.ok and len(namespaces) == 1,
                  f"NAMESPACE answered {result.status} with {len(namespaces)} NAMESPACE responses")
            personal = namespaces[0].personal
            # RFC 2342 §5: "If an INBOX exists for a user, it MUST appear within the user's
            # personal namespace."; each namespace names its hierarchy delimiter, the one LIST
            # uses.
            check("IMAP-NAMESPACE", personal, "NAMESPACE reports no personal namespace")
            assert personal is not None
            listed = await client.list("", "")
            roots = [r for r in listed.untagged if isinstance(r, List)]
            precondition(listed.ok and roots, f'LIST "" "" answered {listed.status} with {len(roots)} LIST')
            delimiters = {d[1] for d in personal}
            check("IMAP-NAMESPACE", roots[0].delimiter in delimiters,
                  f"NAMESPACE delimiters {sorted(map(str, delimiters))} differ from LIST's "
                  f"{roots[0].delimiter!r}")

    run(scenario())
