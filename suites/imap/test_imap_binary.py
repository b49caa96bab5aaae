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
from harness.suite import Evidence, make_message, run, token
from harness.targets import Target
from suites.imap.imap_helpers import append, fetch_uid, flags_of, scratch, session

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
                if "IMAP4REV2" not in client.capabilities:
                    pytest.skip("the server offers neither BINARY nor IMAP4rev2")
                assert (await client.command("ENABLE IMAP4rev2")).ok, "ENABLE IMAP4rev2 failed"
            await append(client, name, _message(token()))
            await client.select(name)
            result, found = await client.search("ALL", uid=True)
            assert result.ok and len(found) == 1, f"UID SEARCH ALL answered {found}"
            return await probe(client, found[0])

    return run(scenario())


@pytest.mark.requirement("IMAP-FETCH-BINARY")
def test_imap_fetch_binary_decodes_parts(target: Target, evidence: Evidence) -> None:
    async def probe(client: IMAPClient, uid: int) -> tuple[dict[str, object], set[str]]:
        items = await fetch_uid(client, uid,
                                "(BINARY.PEEK[1] BINARY.PEEK[2] BINARY.PEEK[2]<300.20>)")
        return items, flags_of(await fetch_uid(client, uid, "(FLAGS)"))

    items, flags = _with_message(target, evidence, probe)
    # RFC 9051 §6.4.5: BINARY "Requests that the specified section be transmitted after
    # performing decoding of the section's Content-Transfer-Encoding"; for a partial "the
    # <partial> arguments refer to the DECODED section data"; BINARY.PEEK "does not implicitly
    # set the \Seen flag".
    assert items.get("BINARY[1]") == TEXT, (
        f"BINARY[1] of a quoted-printable part is {items.get('BINARY[1]')!r}, not {TEXT!r}")
    assert items.get("BINARY[2]") == OCTETS, (
        f"BINARY[2] of a base64 part is not its {len(OCTETS)} decoded octets: "
        f"{items.get('BINARY[2]')!r:.120}")
    assert items.get("BINARY[2]<300>") == OCTETS[300:320], (
        f"BINARY[2]<300.20> is {items.get('BINARY[2]<300>')!r}, not decoded octets 300..319")
    assert "\\Seen" not in flags, f"BINARY.PEEK set \\Seen: {flags}"


@pytest.mark.requirement("IMAP-BINARY-SIZE")
def test_imap_binary_size_is_decoded_size(target: Target, evidence: Evidence) -> None:
    async def probe(client: IMAPClient, uid: int) -> dict[str, object]:
        return await fetch_uid(client, uid, "(BINARY.SIZE[1] BINARY.SIZE[2] BINARY.PEEK[2])")

    items = _with_message(target, evidence, probe)
    # RFC 9051 §7.5.2: BINARY.SIZE — "The value returned MUST match the size of the <nstring>
    # or <literal8> that will be returned by the corresponding FETCH BINARY request."
    returned = items.get("BINARY[2]")
    assert isinstance(returned, bytes), f"no BINARY[2] in {sorted(items)}"
    assert items.get("BINARY.SIZE[2]") == len(returned) == len(OCTETS), (
        f"BINARY.SIZE[2] is {items.get('BINARY.SIZE[2]')}, BINARY[2] has {len(returned)} octets")
    assert items.get("BINARY.SIZE[1]") == len(TEXT), (
        f"BINARY.SIZE[1] is {items.get('BINARY.SIZE[1]')}, the decoded text has {len(TEXT)}")


@pytest.mark.requirement("IMAP-BINARY-UNKNOWN-CTE")
def test_imap_binary_unknown_encoding_is_refused(target: Target, evidence: Evidence) -> None:
    async def probe(client: IMAPClient, uid: int) -> tuple[str, str | None, list[object]]:
        result = await client.command(f"UID FETCH {uid} (BINARY.PEEK[3])")
        values = [r.items.get("BINARY[3]") for r in result.untagged if isinstance(r, Fetch)]
        return result.status, result.code.name if result.code else None, values

    status, code, values = _with_message(target, evidence, probe)
    # RFC 9051 §7.5.2: "If the server does not know how to decode the section's Content-
    # Transfer-Encoding, it MUST fail the request and issue a "NO" response that contains the
    # "UNKNOWN-CTE" response code."
    assert (status, code) == ("NO", "UNKNOWN-CTE"), (
        f"BINARY of a part in {UNKNOWN!r} was answered {status} [{code}] with {values!r:.80}")
