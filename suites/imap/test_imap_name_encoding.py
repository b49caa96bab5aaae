"""IMAP in depth — the "&" of mailbox names (RFC 3501 §5.1.3, RFC 9051 §5.1 and Appendix A.1):
names that are not modified UTF-7 get NO, "&-" round-trips, IMAP4rev2 names are UTF-8."""

from __future__ import annotations

import asyncio

import pytest

from harness.clients.imap import CommandResult, IMAPClient
from harness.protocol.imap.responses import List
from harness.suite import Evidence, check, precondition, run, token
from harness.targets import Target
from suites.imap.imap_helpers import (
    cleanup,
    continuation_or_tagged,
    enable_rev2,
    message,
    next_raw_tag,
    session,
    until_tagged,
)

pytestmark = pytest.mark.step(9)

#: Well-formed astrings that are not modified UTF-7 (RFC 3501 §5.1.3): a shift never closed
#: ("all names start in US-ASCII, and MUST end in US-ASCII"), "&" alone, a base64 run of bad
#: length left open, RFC 9051 Appendix A.1's own bad examples ("&Jjo!": no shift back before
#: "!"; "&U,BTFw-&ZeVnLIqe-": a superfluous shift), and "A" encoded although it can represent
#: itself ("Modified BASE64 MUST NOT be used to represent any printing US-ASCII character").
INVALID = ("a&Jjo", "&", "&ZeVnLIqe", "&Jjo!", "&U,BTFw-&ZeVnLIqe-", "&AEE-")


#: Seconds within which a name with "&" is answered: a server has been seen to spin at full CPU
#: on CREATE of such a name. (A silent server times the client out at 30 s: a failure too.)
PROMPT = 10.0


async def _timed(client: IMAPClient, command: str) -> tuple[CommandResult, float]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    result = await client.command(command)
    return result, loop.time() - start


async def _append_to(client: IMAPClient, quoted: str, data: bytes) -> str | None:
    """APPEND to a name written as is (the client would encode it); the tagged status."""
    tag = next_raw_tag()
    await client.send_raw(f"{tag} APPEND {quoted} {{{len(data)}}}\r\n".encode("ascii"))
    answer = await continuation_or_tagged(client, tag)
    if answer is None:
        await client.send_raw(data + b"\r\n")
        answer, _ = await until_tagged(client, tag)
    return answer.status if answer is not None else None


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


async def _listed(client: IMAPClient, pattern: str) -> set[str]:
    result = await client.command(f"LIST \"\" {_quoted(pattern)}")
    precondition(result.ok, f"LIST \"\" {pattern!r} answered {result.status}")
    return {r.mailbox for r in result.untagged if isinstance(r, List) and not r.lsub}


@pytest.mark.requirement("IMAP-MUTF7-INVALID-NO")
def test_imap_invalid_mutf7_names_get_no(target: Target, evidence: Evidence) -> None:
    prefix = token()

    async def scenario() -> None:
        async with session(target, evidence) as client:
            for bad in INVALID:
                name = _quoted(prefix + bad)
                # RFC 9051 §9: mailbox = "INBOX" / astring — the command is well formed, so a
                # refusal is an operational error, NO (§7.1.2), not BAD (§7.1.3, "a
                # protocol-level error"). RFC 3501 §5.1.3: "Server implementations SHOULD
                # verify that any mailbox name with an embedded "&" character, used as an
                # argument to CREATE, is: in the correctly modified UTF-7 syntax".
                for command in (f"SELECT {name}", f"EXAMINE {name}", f"STATUS {name} (MESSAGES)",
                                f"DELETE {name}", f"CREATE {name}"):
                    result, took = await _timed(client, command)
                    check("IMAP-MUTF7-INVALID-NO", took < PROMPT,
                          f"{command} took {took:.1f} s to be answered")
                    if result.ok and command.startswith("CREATE"):
                        await client.command(f"DELETE {name}")
                    check("IMAP-MUTF7-INVALID-NO", result.status == "NO",
                          f"{command} (not modified UTF-7) answered {result.status}")
                    alive = await client.noop()
                    if command.startswith("CREATE"):
                        # APPEND to the name: a well-formed command, refused with NO.
                        status = await _append_to(client, name, message(token()))
                        check("IMAP-MUTF7-INVALID-NO", status == "NO",
                              f"APPEND to {name} answered {status}")
                    check("IMAP-MUTF7-INVALID-NO", alive.ok,
                          f"NOOP after {command} answered {alive.status}")

    run(scenario())


@pytest.mark.requirement("IMAP-MUTF7-AMPERSAND")
def test_imap_ampersand_names_round_trip(target: Target, evidence: Evidence) -> None:
    prefix = token()
    # wire form -> the name it means (RFC 3501 §5.1.3: "The character "&" (0x26) is
    # represented by the two-octet sequence "&-"."); "&-&Jjo-" is "&" then U+263A.
    cases = {f"{prefix}a&-b": f"{prefix}a&b", f"{prefix}&-": f"{prefix}&",
             f"{prefix}R&-D&Jjo-": f"{prefix}R&D\u263a"}

    async def scenario() -> None:
        async with session(target, evidence) as client:
            try:
                for wire, meant in cases.items():
                    created, took = await _timed(client, f"CREATE {_quoted(wire)}")
                    check("IMAP-MUTF7-AMPERSAND", created.ok and took < PROMPT,
                          f"CREATE {wire!r} answered {created.status} after {took:.1f} s")
                    before = len(client.transcript.received())
                    listed = await _listed(client, wire)
                    sent = client.transcript.received()[before:]
                    check("IMAP-MUTF7-AMPERSAND", listed == {meant},
                          f"LIST {wire!r} found {sorted(listed)}, not {meant!r}")
                    check("IMAP-MUTF7-AMPERSAND", wire.encode("ascii") in sent,
                          f"LIST did not send the name as {wire!r}: {sent[-200:]!r}")
                    selected = await client.command(f"SELECT {_quoted(wire)}")
                    check("IMAP-MUTF7-AMPERSAND", selected.ok,
                          f"SELECT {wire!r} answered {selected.status}")
                    await client.command("CLOSE")
            finally:
                for wire in cases:
                    await client.command(f"DELETE {_quoted(wire)}")

    run(scenario())


@pytest.mark.requirement("IMAP-MUTF7-REV2")
def test_imap_rev2_names_are_utf8(target: Target, evidence: Evidence) -> None:
    prefix = token()
    # An IMAP4rev2 client's name "<p>R&-D" is those characters: RFC 9051 §5.1 "In IMAP4rev2,
    # mailbox names are encoded in Net-Unicode", where "&" is an ordinary character ("Support
    # for the Mailbox International Naming Convention ... is not required for IMAP4rev2-only
    # clients", Appendix A.1). Appendix A: "Servers advertising both IMAP4rev1 and IMAP4rev2
    # ... MUST be compatible with the Mailbox International Naming Convention": an IMAP4rev1
    # client sees that "&" as "&-".
    name = f"{prefix}R&-D"

    async def scenario() -> None:
        async with session(target, evidence) as rev2:
            await enable_rev2(rev2)
            created = await rev2.command(f"CREATE {_quoted(name)}")
            precondition(created.ok, f"IMAP4rev2 CREATE {name!r} answered {created.status}")
            try:
                async with session(target, evidence) as rev1:
                    before = len(rev1.transcript.received())
                    listed = await _listed(rev1, prefix + "*")
                    sent = rev1.transcript.received()[before:]
                check("IMAP-MUTF7-REV2", listed == {name},
                      f"an IMAP4rev1 LIST found {sorted(listed)}, not {name!r}")
                check("IMAP-MUTF7-REV2", f"{prefix}R&--D".encode("ascii") in sent,
                      f"the IMAP4rev1 LIST did not send {prefix + 'R&--D'!r}: {sent[-200:]!r}")
                before = len(rev2.transcript.received())
                await _listed(rev2, prefix + "*")
                sent = rev2.transcript.received()[before:]
                check("IMAP-MUTF7-REV2", name.encode("ascii") in sent and b"R&--D" not in sent,
                      f"the IMAP4rev2 LIST did not send {name!r} as is: {sent[-200:]!r}")
                selected = await rev2.command(f"SELECT {_quoted(name)}")
                check("IMAP-MUTF7-REV2", selected.ok,
                      f"IMAP4rev2 SELECT {name!r} answered {selected.status}")
            finally:
                await cleanup(rev2)
                await rev2.command(f"DELETE {_quoted(name)}")

    run(scenario())
