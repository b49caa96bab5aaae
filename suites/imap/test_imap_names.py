"""IMAP in depth — mailbox names: modified UTF-7, hostile names, one user's mailboxes are private."""

from __future__ import annotations

import contextlib

import pytest

from harness.clients.imap import IMAPClient, IMAPClientError
from harness.protocol.errors import ProtocolError
from harness.protocol.imap import mutf7
from harness.protocol.imap.responses import Continuation, List
from harness.suite import Evidence, account, check, need, precondition, run, token
from harness.targets import Target
from suites.imap.imap_helpers import cleanup, mbox, next_raw_tag, session, until_tagged

pytestmark = pytest.mark.step(9)


@pytest.mark.requirement("IMAP-MUTF7")
def test_imap_modified_utf7_names(target: Target, evidence: Evidence) -> None:
    name = f"Entwürfe-日本-{token()}"

    async def scenario() -> tuple[str, set[str], bytes]:
        async with session(target, evidence) as client:
            created = await client.command(f"CREATE {mbox(name)}")
            try:
                listed = await client.list("", name)
                precondition(listed.ok, f"LIST answered {listed.status}")
                received = client.transcript.received()
            finally:
                await cleanup(client, name)
            return created.status, {r.mailbox for r in listed.untagged
                                    if isinstance(r, List)}, received

    status, listed, received = run(scenario())
    # RFC 3501 §5.1.3: "international characters [in mailbox names] are represented using a
    # modified version of the UTF-7 encoding"; the server decodes them and sends them back so.
    check("IMAP-MUTF7", status == "OK", f"CREATE of a modified UTF-7 name answered {status}")
    check("IMAP-MUTF7", listed == {name}, f"LIST returned {sorted(listed)}, not {name!r}")
    check("IMAP-MUTF7", mutf7.encode(name).encode("ascii") in received,
          "LIST did not send the name in modified UTF-7")
    check("IMAP-MUTF7", name.encode("utf-8") not in received,
          "LIST sent raw UTF-8 to an IMAP4rev1 client")


HOSTILE: tuple[bytes, ...] = (
    b"..", b"../x", b"a/../../b", b"%", b"*", b"a%b*c", b"/", b"/etc", b"a//b", b".", b"~x",
    b"a\x00b", b"x" * 3000,
)


async def _create_literal(client: IMAPClient, name: bytes) -> str | None:
    """CREATE with the name as a synchronizing literal (so it may hold any octet)."""
    tag = next_raw_tag()
    await client.send_raw(f"{tag} CREATE {{{len(name)}}}\r\n".encode())
    first = await client.read_response(10.0)
    if not isinstance(first, Continuation):
        tagged, _ = await until_tagged(client, tag)
        return tagged.status if tagged else None
    await client.send_raw(name + b"\r\n")
    tagged, _ = await until_tagged(client, tag)
    return tagged.status if tagged else None


@pytest.mark.requirement("IMAP-NAME-ROBUST")
def test_imap_hostile_names_keep_session(target: Target, evidence: Evidence) -> None:
    async def scenario() -> list[tuple[bytes, str | None, str | None]]:
        async with session(target, evidence) as client:
            outcomes = []
            for name in HOSTILE:
                status = await _create_literal(client, name)
                alive = None
                if status is not None:
                    alive = (await client.noop()).status
                    if status == "OK":
                        with contextlib.suppress(IMAPClientError, ProtocolError):
                            await _delete_literal(client, name)
                outcomes.append((name[:40], status, alive))
                if status is None:
                    break
            return outcomes

    outcomes = run(scenario())
    # RFC 9051 §11.7 and §6.3.4: a server refuses names it cannot store ("NO") or stores them
    # safely; no name may end the session or reach outside the user's own mailboxes.
    for name, status, alive in outcomes:
        check("IMAP-NAME-ROBUST", status in ("OK", "NO", "BAD"),
              f"CREATE {name!r}: the connection was lost")
        check("IMAP-NAME-ROBUST", alive == "OK", f"NOOP after CREATE {name!r} answered {alive}")


async def _delete_literal(client: IMAPClient, name: bytes) -> None:
    tag = next_raw_tag()
    await client.send_raw(f"{tag} DELETE {{{len(name)}}}\r\n".encode())
    if isinstance(await client.read_response(10.0), Continuation):
        await client.send_raw(name + b"\r\n")
    await until_tagged(client, tag)


@pytest.mark.requirement("IMAP-USER-ISOLATION")
def test_imap_users_cannot_see_each_other(target: Target, evidence: Evidence) -> None:
    other = account(target.receiver, 1)
    need(other.user != account(target.receiver).user, "the two receiver accounts are the same user")

    async def scenario() -> tuple[set[str], str, list[str]]:
        private, reach = token(), token()
        async with session(target, evidence) as bob, \
                session(target, evidence, account_index=1) as dave:
            try:
                created = await bob.command(f"CREATE {mbox(private)}")
                precondition(created.ok, f"setup CREATE answered {created.status}")
                for prefix in ("../", "../../", "/", "~", "#users/"):
                    await bob.command(f"CREATE {mbox(prefix + other.user + '/' + reach)}")
                listed = await dave.list("", "*")
                precondition(listed.ok, f"user 2's LIST answered {listed.status}")
                seen = {r.mailbox for r in listed.untagged if isinstance(r, List)}
                selected = await dave.command(f"SELECT {mbox(private)}")
                leaked = sorted(n for n in seen if private in n or reach in n)
            finally:
                await cleanup(bob, private)
                await cleanup(dave, reach)
            return seen, selected.status, leaked

    _, selected, leaked = run(scenario())
    # RFC 9051 §11.5 / RFC 2342 §5: "Typically, only the authenticated user has access to
    # mailboxes in their Personal Namespace"; no name one user sends may make or reveal a
    # mailbox of another.
    check("IMAP-USER-ISOLATION", not leaked, f"user 2 sees mailboxes made by user 1: {leaked}")
    check("IMAP-USER-ISOLATION", selected == "NO",
          f"user 2's SELECT of user 1's mailbox answered {selected}")
