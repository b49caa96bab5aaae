"""IMAP in depth — commands of any state and announced extensions: CAPABILITY, LOGOUT, ENABLE, ID,
NAMESPACE."""

from __future__ import annotations

import pytest

from harness.protocol.imap.responses import Capability, Enabled, Id, List, Namespace, UntaggedStatus
from harness.suite import Evidence, need, run
from harness.targets import Target
from suites.imap.imap_helpers import session

pytestmark = pytest.mark.step(9)


@pytest.mark.requirement("IMAP-CAPABILITY")
def test_imap_capability_lists_version(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[str, list[tuple[str, ...]]]:
        async with session(target, evidence) as client:
            result = await client.capability()
            return result.status, [r.caps for r in result.untagged if isinstance(r, Capability)]

    status, responses = run(scenario())
    assert status == "OK", f"CAPABILITY answered {status}"
    # RFC 9051 §6.1.1: "The server MUST send a single untagged CAPABILITY response with
    # "IMAP4rev2" as one of the listed capabilities before the (tagged) OK response."
    assert len(responses) == 1, f"{len(responses)} untagged CAPABILITY responses, not one"
    caps = {c.upper() for c in responses[0]}
    assert caps & {"IMAP4REV2", "IMAP4REV1"}, f"neither IMAP4rev2 nor IMAP4rev1 in {sorted(caps)}"


@pytest.mark.requirement("IMAP-LOGOUT")
def test_imap_logout_sends_bye(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[str, list[str]]:
        async with session(target, evidence) as client:
            result = await client.logout()
            return result.status, [r.status for r in result.untagged
                                   if isinstance(r, UntaggedStatus)]

    status, statuses = run(scenario())
    # RFC 9051 §6.1.3: "The server MUST send a BYE untagged response before the (tagged) OK
    # response, and then close the network connection."
    assert "BYE" in statuses, "LOGOUT completed without an untagged BYE"
    assert status == "OK", f"LOGOUT answered {status}"


@pytest.mark.requirement("IMAP-ENABLE")
def test_imap_enable_answers_enabled(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[str, list[tuple[str, ...]]]:
        async with session(target, evidence) as client:
            need("ENABLE" in client.capabilities, "server does not advertise ENABLE")
            need("IMAP4REV2" in client.capabilities, "server does not advertise IMAP4rev2")
            result = await client.command("ENABLE IMAP4rev2")
            return result.status, [r.caps for r in result.untagged if isinstance(r, Enabled)]

    status, enabled = run(scenario())
    assert status == "OK", f"ENABLE IMAP4rev2 answered {status}"
    # RFC 5161 §3.1: "If the ENABLE command is successful, the server MUST send an untagged
    # ENABLED response".
    assert enabled, "ENABLE succeeded without an untagged ENABLED response"
    assert any("IMAP4REV2" in {c.upper() for c in caps} for caps in enabled), \
        f"ENABLED does not list IMAP4rev2: {enabled}"


@pytest.mark.requirement("IMAP-ID")
def test_imap_id_answers(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[str, int]:
        async with session(target, evidence) as client:
            need("ID" in client.capabilities, "server does not advertise ID")
            result = await client.command('ID ("name" "mailharness")')
            return result.status, sum(1 for r in result.untagged if isinstance(r, Id))

    status, ids = run(scenario())
    # RFC 2971 §3.1: "A server MUST send a tagged ID response to an ID command." — the ID
    # response (RFC 2971 §3.2) before the tagged OK.
    assert status == "OK", f"ID answered {status}"
    assert ids == 1, f"{ids} untagged ID responses, not one"


@pytest.mark.requirement("IMAP-NAMESPACE")
def test_imap_namespace_matches_list(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[str, list[Namespace], list[List]]:
        async with session(target, evidence) as client:
            need("NAMESPACE" in client.capabilities, "server does not advertise NAMESPACE")
            result = await client.command("NAMESPACE")
            listed = await client.list("", "")
            return (result.status, [r for r in result.untagged if isinstance(r, Namespace)],
                    [r for r in listed.untagged if isinstance(r, List)])

    status, namespaces, roots = run(scenario())
    assert status == "OK" and len(namespaces) == 1, f"NAMESPACE answered {status}, {namespaces}"
    personal = namespaces[0].personal
    # RFC 2342 §5: "If an INBOX exists for a user, it MUST appear within the user's personal
    # namespace."; each namespace names its hierarchy delimiter, the one LIST uses.
    assert personal, "NAMESPACE reports no personal namespace"
    assert roots, 'LIST "" "" returned nothing'
    delimiters = {d[1] for d in personal}
    assert roots[0].delimiter in delimiters, (
        f"NAMESPACE delimiters {sorted(map(str, delimiters))} differ from LIST's "
        f"{roots[0].delimiter!r}")
