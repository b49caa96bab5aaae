"""IMAP in depth — FETCH BINARY (RFC 9051 §6.4.5, §7.5.2; RFC 3516): decoded parts, their sizes,
and the refusal of an encoding the server cannot decode.

BINARY is part of IMAP4rev2 and the BINARY extension of IMAP4rev1. The tests run where the
server advertises BINARY, or after ENABLE IMAP4rev2; they are skipped elsewhere.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from harness.clients.imap import IMAPClient
from harness.protocol.imap.responses import Fetch
from harness.suite import Evidence, check, make_message, need, precondition, run, token
from harness.targets import Target
from suites.imap.imap_helpers import append, fetch_uid, flags_of, only_uid, scratch, select, session

pytestmark = pytest.mark.step(9)

#: Part 1: text/plain, quoted-printable with a soft line break and an encoded "=".
TEXT_QP = b"caf=C3=A9 costs 3=3D4 and this line is long enough to be =\r\nbroken softly\r\n"
#: Decoded; the CRLF before the next boundary belongs to the boundary (RFC 2046 §5.1.1).
TEXT = "café costs 3=4 and this line is long enough to be broken softly".encode()
#: Part 2: every octet value, NUL, CR and LF included, base64 in lines of 76.
OCTETS = bytes(range(256)) * 2
#: Part 3: an encoding no server knows.
UNKNOWN = "x-mailharness-unknown"


def _message(mark: str) -> bytes:
    encoded = base64.encodebytes(OCTETS).replace(b"\n", b"\r\n").decode("ascii")
    body = (
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n" + TEXT_QP.decode("ascii")
        + "--b1\r\nContent-Type: application/octet-stream\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n" + encoded
        + f"--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: {UNKNOWN}"
        "\r\n\r\nopaque\r\n--b1--\r\n"
    )
    return make_message(sender="sender@example.com", recipient="rcpt@example.net",
                        subject="binary", body=body, mark=mark,
                        extra=[("MIME-Version", "1.0"),
                               ("Content-Type", 'multipart/mixed; boundary="b1"')])


T = TypeVar("T")


def _with_message(target: Target, evidence: Evidence,
                  probe: Callable[[IMAPClient, int], Awaitable[T]]) -> T:
    """Append the three-part message to a scratch mailbox, select it, run *probe* on its UID."""
    async def scenario() -> T:
        async with session(target, evidence) as client, scratch(client) as name:
            if "BINARY" not in client.capabilities:
                need("IMAP4REV2" in client.capabilities,
                     "the server offers neither BINARY nor IMAP4rev2")
                enabled = await client.command("ENABLE IMAP4rev2")
                precondition(enabled.ok, f"ENABLE IMAP4rev2 answered {enabled.status}")
            await append(client, name, _message(token()))
            await select(client, name)
            return await probe(client, await only_uid(client))

    return run(scenario())



@pytest.mark.requirement("IMAP-FETCH-BINARY")
def test_imap_fetch_binary_decodes_parts(target: Target, evidence: Evidence) -> None:
    async def probe(client: IMAPClient, uid: int) -> None:
        items = await fetch_uid(client, uid, "(BINARY.PEEK[1] BINARY.PEEK[2] BINARY.PEEK[2]<300.20>)",
                             "IMAP-FETCH-BINARY")
        # RFC 9051 §6.4.5: BINARY "Requests that the specified section be transmitted after
        # performing decoding of the section's Content-Transfer-Encoding"; for a partial "the
        # <partial> arguments refer to the DECODED section data"; BINARY.PEEK "does not
        # implicitly set the \Seen flag".
        check("IMAP-FETCH-BINARY", items.get("BINARY[1]") == TEXT,
              f"BINARY[1] of a quoted-printable part is {items.get('BINARY[1]')!r}, not {TEXT!r}")
        check("IMAP-FETCH-BINARY", items.get("BINARY[2]") == OCTETS,
              f"BINARY[2] of a base64 part is not its {len(OCTETS)} decoded octets: "
              f"{items.get('BINARY[2]')!r:.120}")
        check("IMAP-FETCH-BINARY", items.get("BINARY[2]<300>") == OCTETS[300:320],
              f"BINARY[2]<300.20> is {items.get('BINARY[2]<300>')!r}, not decoded octets 300..319")
        flags = flags_of(await fetch_uid(client, uid, "(FLAGS)"))
        check("IMAP-FETCH-BINARY", "\\Seen" not in flags, f"BINARY.PEEK set \\Seen: {sorted(flags)}")

    _with_message(target, evidence, probe)


@pytest.mark.requirement("IMAP-BINARY-SIZE")
def test_imap_binary_size_is_decoded_size(target: Target, evidence: Evidence) -> None:
    async def probe(client: IMAPClient, uid: int) -> None:
        items = await fetch_uid(client, uid, "(BINARY.SIZE[1] BINARY.SIZE[2] BINARY.PEEK[1] "
                             "BINARY.PEEK[2])", "IMAP-BINARY-SIZE")
        # RFC 9051 §7.5.2: BINARY.SIZE — "The value returned MUST match the size of the
        # <nstring> or <literal8> that will be returned by the corresponding FETCH BINARY
        # request."  (Whether BINARY decodes is IMAP-FETCH-BINARY's to judge.)
        for part in (1, 2):
            returned = items.get(f"BINARY[{part}]")
            precondition(isinstance(returned, bytes), f"no BINARY[{part}] in {sorted(items)}")
            assert isinstance(returned, bytes)
            size = items.get(f"BINARY.SIZE[{part}]")
            check("IMAP-BINARY-SIZE", size == len(returned),
                  f"BINARY.SIZE[{part}] is {size}, BINARY[{part}] has {len(returned)} octets")

    _with_message(target, evidence, probe)


@pytest.mark.requirement("IMAP-BINARY-UNKNOWN-CTE")
def test_imap_binary_unknown_encoding_is_refused(target: Target, evidence: Evidence) -> None:
    async def probe(client: IMAPClient, uid: int) -> None:
        result = await client.command(f"UID FETCH {uid} (BINARY.PEEK[3])")
        values = [r.items.get("BINARY[3]") for r in result.untagged if isinstance(r, Fetch)]
        code = result.code.name if result.code else None
        # RFC 9051 §7.5.2: "If the server does not know how to decode the section's Content-
        # Transfer-Encoding, it MUST fail the request and issue a "NO" response that contains
        # the "UNKNOWN-CTE" response code."
        check("IMAP-BINARY-UNKNOWN-CTE", (result.status, code) == ("NO", "UNKNOWN-CTE"),
              f"BINARY of a part in {UNKNOWN!r} was answered {result.status} [{code}] "
              f"with {values!r:.80}")

    _with_message(target, evidence, probe)
