"""What the IMAP suites share: sessions with clean-up, scratch mailboxes, raw commands, messages."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence

from harness.clients.imap import (
    CommandResult,
    IMAPClient,
    IMAPClientError,
    IMAPConnectionClosed,
    SelectResult,
)
from harness.protocol.errors import ProtocolError
from harness.protocol.imap import mutf7
from harness.protocol.imap.formatting import astring
from harness.protocol.imap.responses import Continuation, Fetch, List, Response, Status, Tagged
from harness.suite import Evidence, check, make_message, need, open_imap, precondition, token
from harness.targets import ProviderTarget, Target


def mbox(name: str) -> str:
    """A mailbox name as a command argument: modified UTF-7 (RFC 3501 §5.1.3), atom or quoted."""
    return astring(mutf7.encode(name)).decode("ascii")


def message(mark: str, *, subject: str = "imap suite", body: str = "Hello from the suite.\r\n",
            extra: Sequence[tuple[str, str]] = ()) -> bytes:
    return make_message(sender="Sender <sender@example.com>", recipient="rcpt@example.net",
                        subject=subject, body=body, mark=mark, extra=extra)


def multipart(mark: str) -> bytes:
    """A multipart/mixed message: a text/plain part and a base64 application/octet-stream."""
    body = (
        "--b1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nfirst part\r\n"
        "--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64"
        "\r\n\r\nAAECAwQ=\r\n--b1--\r\n"
    )
    return make_message(sender="sender@example.com", recipient="rcpt@example.net",
                        subject="multipart", body=body, mark=mark,
                        extra=[("MIME-Version", "1.0"),
                               ("Content-Type", 'multipart/mixed; boundary="b1"')])


@contextlib.asynccontextmanager
async def session(target: Target, evidence: Evidence, *, account_index: int = 0,
                  select: str | None = None,
                  provider: ProviderTarget | None = None) -> AsyncIterator[IMAPClient]:
    """A logged-in session (nothing selected by default), logged out and closed afterwards."""
    client = await open_imap(target, evidence, provider or target.receiver,
                             account_index=account_index, select=select)
    try:
        yield client
    finally:
        if not client.closed:
            with contextlib.suppress(IMAPClientError, ProtocolError, OSError):
                await client.logout()
        await client.close()


@contextlib.asynccontextmanager
async def scratch(client: IMAPClient, *, create: bool = True) -> AsyncIterator[str]:
    """A fresh, uniquely named mailbox, deleted afterwards (with what was made under it)."""
    name = token()
    if create:
        result = await client.command(f"CREATE {mbox(name)}")
        precondition(result.ok, f"setup CREATE {name} answered {result.status}")
    try:
        yield name
    finally:
        await cleanup(client, name)


async def cleanup(client: IMAPClient, *names: str) -> None:
    """Delete mailboxes (and their inferiors) a test made; errors are ignored."""
    if client.closed:
        return
    with contextlib.suppress(IMAPClientError, ProtocolError, OSError):
        await client.command("UNSELECT" if "UNSELECT" in client.capabilities else "CLOSE")
        for name in names:
            listed = await client.list("", name + "/*")
            inferiors = sorted((r.mailbox for r in listed.untagged
                                if isinstance(r, List) and not r.lsub), reverse=True)
            for inner in [*inferiors, name]:
                await client.command(f"DELETE {mbox(inner)}")


async def append(client: IMAPClient, mailbox: str, data: bytes,
                 flags: Sequence[str] = ()) -> CommandResult:
    """A setup APPEND: the test is not reached when it fails."""
    result = await client.append(mailbox, data, flags)
    precondition(result.ok, f"setup APPEND to {mailbox} answered {result.status}")
    return result


async def ensure_binary(client: IMAPClient) -> None:
    """BINARY (RFC 3516) where the server offers it, else IMAP4rev2 enabled (RFC 9051 has it);
    the test is skipped when the server offers neither."""
    if "BINARY" not in client.capabilities:
        await enable_rev2(client, "the server offers neither BINARY nor IMAP4rev2")


async def enable_rev2(client: IMAPClient,
                      reason: str = "the server does not offer IMAP4rev2") -> None:
    """ENABLE IMAP4rev2 (RFC 9051 Appendix D); the test is skipped, with *reason*, where the
    server does not offer it."""
    need("IMAP4REV2" in client.capabilities, reason)
    enabled = await client.command("ENABLE IMAP4rev2")
    precondition(enabled.ok, f"ENABLE IMAP4rev2 answered {enabled.status}")


async def append_literal8(client: IMAPClient, mailbox: str, data: bytes) -> Tagged | None:
    """APPEND *data* as a literal8 (RFC 3516 §4.4, RFC 9051 §6.3.12: the only way to append
    a NUL octet); the tagged answer, or None when the server closed the connection."""
    tag = next_raw_tag()
    await client.send_raw(f"{tag} APPEND {mbox(mailbox)} ~{{{len(data)}}}\r\n".encode("ascii"))
    try:
        refused = await continuation_or_tagged(client, tag)
    except IMAPConnectionClosed:
        return None
    if refused is not None:
        return refused
    await client.send_raw(data + b"\r\n")
    tagged, _ = await until_tagged(client, tag)
    return tagged


async def continuation_or_tagged(client: IMAPClient, tag: str) -> Tagged | None:
    """Read until the server asks for a literal's octets ("+": None) or answers *tag*."""
    while True:
        response = await client.read_response(10.0)
        if isinstance(response, Tagged) and response.tag == tag:
            return response
        if isinstance(response, Continuation):
            return None


async def select(client: IMAPClient, mailbox: str, *, readonly: bool = False) -> SelectResult:
    """A setup SELECT (EXAMINE with *readonly*): the test is not reached when it fails."""
    selected = await client.select(mailbox, readonly=readonly)
    verb = "EXAMINE" if readonly else "SELECT"
    precondition(selected.result.ok, f"setup {verb} {mailbox} answered {selected.result.status}")
    return selected


async def message_count(client: IMAPClient, mailbox: str) -> int:
    """STATUS *mailbox* (MESSAGES), a step: the test is not reached when it fails."""
    result = await client.command(f"STATUS {mbox(mailbox)} (MESSAGES)")
    found = [r.items.get("MESSAGES") for r in result.untagged if isinstance(r, Status)]
    precondition(result.ok and len(found) == 1 and isinstance(found[0], int),
                 f"STATUS (MESSAGES) answered {result.status} with {found}")
    assert isinstance(found[0], int)
    return found[0]


async def uids(client: IMAPClient) -> list[int]:
    """The UIDs of the selected mailbox, read with UID SEARCH ALL (a step, not judged)."""
    result, found = await client.search("ALL", uid=True)
    precondition(result.ok, f"UID SEARCH ALL answered {result.status}")
    return sorted(found)


async def fetch_uid(
    client: IMAPClient, uid: int, items: str, requirement: str | None = None
) -> dict[str, object]:
    """The items of one message by UID, merged over its FETCH responses. Without
    *requirement* the FETCH is a step (a tagged answer other than OK makes the test not
    reached); with it, the FETCH is the command under test and its completion a check."""
    result = await client.command(f"UID FETCH {uid} {items}")
    detail = f"UID FETCH {uid} {items} answered {result.status}"
    if requirement is None:
        precondition(result.ok, detail)
    else:
        check(requirement, result.ok, detail)
    merged: dict[str, object] = {}
    for response in result.untagged:
        if isinstance(response, Fetch) and response.items.get("UID") in (uid, None):
            merged.update(response.items)
    return merged


async def only_uid(client: IMAPClient) -> int:
    """The UID of the one message the selected mailbox holds (a step, not judged)."""
    found = await uids(client)
    precondition(len(found) == 1, f"UID SEARCH ALL found {found}, not the one message appended")
    return found[0]


def flags_of(items: dict[str, object]) -> set[str]:
    """The FLAGS of fetched *items*; the test is not reached when the FETCH carried none."""
    value = items.get("FLAGS")
    precondition(isinstance(value, tuple), f"no FLAGS in the FETCH response: {sorted(items)}")
    assert isinstance(value, tuple)
    return {str(f) for f in value}


async def raw(client: IMAPClient, line: bytes, *,
              timeout: float = 10.0) -> tuple[Tagged | None, list[Response]]:  # noqa: ASYNC109
    """Send ``tag line`` CRLF exactly; read until its tagged response. (None, responses) when
    the server closed the connection first."""
    tag = next_raw_tag()
    await client.send_raw(tag.encode("ascii") + b" " + line + b"\r\n")
    return await until_tagged(client, tag, timeout=timeout)


async def until_tagged(client: IMAPClient, tag: str, *,
                       timeout: float = 10.0) -> tuple[Tagged | None, list[Response]]:  # noqa: ASYNC109
    seen: list[Response] = []
    try:
        while True:
            response = await client.read_response(timeout)
            if isinstance(response, Tagged) and response.tag == tag:
                return response, seen
            seen.append(response)
    except IMAPConnectionClosed:
        return None, seen


def next_raw_tag() -> str:
    return "X" + uuid.uuid4().hex[:8]
