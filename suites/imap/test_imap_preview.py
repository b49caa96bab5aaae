"""IMAP PREVIEW (RFC 8970): FETCH PREVIEW and PREVIEW (LAZY), never NIL without LAZY, at most
256 characters, decoded plain text without markup.

The tests run where the server advertises PREVIEW and are skipped elsewhere.
"""

from __future__ import annotations

import pytest

from harness.clients.imap import IMAPClient
from harness.suite import Evidence, check, make_message, need, precondition, run, token
from harness.targets import Target
from suites.imap.imap_helpers import append, fetch_uid, only_uid, scratch, select, session

pytestmark = pytest.mark.step(9)

#: A quoted-printable body: "Café ..." with an encoded é and a soft line break.
_QP_BODY = ("Caf=C3=A9 au lait costs 3=3D4 coins, and this first line is long enough to be =\r\n"
            "broken softly.\r\n")
#: Words enough for a body of about 700 characters.
_LONG_BODY = " ".join(f"word{i}" for i in range(120)) + "\r\n"
_HTML_BODY = ("<html><body><p>Hello <b>bold</b> <i>reader</i>, see the "
              "<a href=\"http://example.com/\">link</a>.</p></body></html>\r\n")


def _message(mark: str, body: str, content_type: str, encoding: str = "7bit") -> bytes:
    return make_message(sender="sender@example.com", recipient="rcpt@example.net",
                        subject="preview", body=body, mark=mark,
                        extra=[("MIME-Version", "1.0"), ("Content-Type", content_type),
                               ("Content-Transfer-Encoding", encoding)])


async def _preview(target: Target, evidence: Evidence, data: bytes, items: str,
                   requirement: str) -> tuple[bool, object]:
    """Append *data* to a scratch mailbox and FETCH *items* of it: whether the message had a
    PREVIEW item, and its value."""
    async with session(target, evidence) as client, scratch(client) as name:
        _need_preview(client)
        await append(client, name, data)
        await select(client, name)
        uid = await only_uid(client)
        found = await fetch_uid(client, uid, items, requirement)
        return "PREVIEW" in found, found.get("PREVIEW")


def _string_preview(target: Target, evidence: Evidence, data: bytes, requirement: str) -> str:
    """FETCH PREVIEW of *data*, a string (a NIL or missing preview is judged elsewhere)."""
    _, value = run(_preview(target, evidence, data, "(PREVIEW)", requirement))
    precondition(isinstance(value, str), f"FETCH PREVIEW gave {value!r}")
    assert isinstance(value, str)
    return value


def _need_preview(client: IMAPClient) -> None:
    need("PREVIEW" in client.capabilities, "the server does not advertise PREVIEW")


@pytest.mark.requirement("IMAP-PREVIEW", "IMAP-PREVIEW-DECODED")
def test_imap_preview_decoded_text(target: Target, evidence: Evidence) -> None:
    data = _message(token(), _QP_BODY, "text/plain; charset=utf-8", "quoted-printable")
    present, value = run(_preview(target, evidence, data, "(PREVIEW)", "IMAP-PREVIEW"))
    # RFC 8970 §3.2: "A server MUST NOT return NIL to a FETCH PREVIEW request made without the
    # LAZY modifier."
    check("IMAP-PREVIEW", present and isinstance(value, str),
          f"FETCH PREVIEW gave {value!r}" if present else "FETCH PREVIEW gave no PREVIEW item")
    assert isinstance(value, str)
    # §3.3: "The generated string MUST NOT be content transfer encoded and MUST be encoded in
    # UTF-8": no "=C3=A9" or "=3D" of the quoted-printable body, no soft line break.
    encoded = [piece for piece in ("=C3=A9", "=3D", "=\r\n") if piece in value]
    check("IMAP-PREVIEW-DECODED", not encoded,
          f"the preview {value[:80]!r} carries the quoted-printable {encoded}")


@pytest.mark.requirement("IMAP-PREVIEW-LENGTH")
def test_imap_preview_length(target: Target, evidence: Evidence) -> None:
    data = _message(token(), _LONG_BODY, "text/plain; charset=us-ascii")
    value = _string_preview(target, evidence, data, "IMAP-PREVIEW-LENGTH")
    # RFC 8970 §3.3: "The server MUST NOT output preview text longer than 256 preview
    # characters." (a preview character: one UCS character)
    check("IMAP-PREVIEW-LENGTH", len(value) <= 256,
          f"the preview of a {len(_LONG_BODY)}-character body has {len(value)} characters")


@pytest.mark.requirement("IMAP-PREVIEW-PLAIN")
def test_imap_preview_without_markup(target: Target, evidence: Evidence) -> None:
    data = _message(token(), _HTML_BODY, "text/html; charset=us-ascii")
    value = _string_preview(target, evidence, data, "IMAP-PREVIEW-PLAIN")
    # RFC 8970 §3.3: "The server SHOULD remove any formatting markup and do whatever processing
    # might be useful in rendering the preview as plain text."
    tags = [tag for tag in ("<p>", "<b>", "</b>", "<a ", "<html>", "<body>") if tag in value]
    check("IMAP-PREVIEW-PLAIN", not tags, f"the preview of an HTML body {value[:80]!r} keeps {tags}")


@pytest.mark.requirement("IMAP-PREVIEW-LAZY")
def test_imap_preview_lazy(target: Target, evidence: Evidence) -> None:
    data = _message(token(), "A short body for a lazy preview.\r\n", "text/plain; charset=us-ascii")
    # RFC 8970 §4.1: "The LAZY modifier MUST be implemented by any server that supports the
    # PREVIEW extension." §3.2: with LAZY "the server MAY return NIL for the preview response".
    # fetch_uid checks the FETCH completes OK.
    present, value = run(_preview(target, evidence, data, "(PREVIEW (LAZY))",
                                  "IMAP-PREVIEW-LAZY"))
    check("IMAP-PREVIEW-LAZY", present and (value is None or isinstance(value, str)),
          f"FETCH PREVIEW (LAZY) gave {value!r}" if present else "no PREVIEW item in the FETCH")
