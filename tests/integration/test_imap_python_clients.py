"""Python's imaplib and imapclient do every operation of issue 4 against the reference IMAP server.

An independent client is the other half of the check that our strict parser and the server do not
share a symmetric bug. Connections go to IP addresses; TLS trusts the topology's CA only.

imaplib of Python 3.11 has no method for ID and IDLE (IDLE arrives in 3.14); those two go through
its documented low-level ``send()`` / ``readline()``, never through a patched module global.
"""

from __future__ import annotations

import email.utils
import imaplib
import re
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import imapclient
import pytest

from harness.targets import Endpoint, Target

TIMEOUT = 10.0


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    from reference_agents.topology import TopologySettings, TopologyThread

    runner = TopologyThread(TopologySettings(data_dir=tmp_path_factory.mktemp("topology")))
    try:
        yield runner.start()
    finally:
        runner.stop()


def _context(target: Target) -> ssl.SSLContext:
    assert target.ca_file is not None
    return ssl.create_default_context(cafile=str(target.ca_file))


def _endpoint(target: Target, implicit: bool) -> Endpoint:
    endpoint = target.receiver.imaps if implicit else target.receiver.imap
    assert endpoint is not None
    return endpoint


def _message(mark: str, subject: str = "python clients") -> bytes:
    return (
        f"From: Sender <sender@example.com>\r\nTo: bob@example.net\r\n"
        f"Subject: {subject} {mark}\r\nDate: {email.utils.formatdate()}\r\n"
        f"Message-ID: <{mark}@clients.mailharness.invalid>\r\n\r\nHello {mark}.\r\n"
    ).encode("ascii")


def _names(prefix: str) -> tuple[str, str, str]:
    mark = f"{prefix}-{uuid.uuid4().hex[:12]}"
    return mark, f"{mark}-a", f"{mark}-b"


# -- imaplib -------------------------------------------------------------------------------------


def _imaplib(target: Target, *, implicit: bool) -> imaplib.IMAP4:
    endpoint = _endpoint(target, implicit)
    account = target.receiver.accounts[0]
    imap: imaplib.IMAP4
    if implicit:
        imap = imaplib.IMAP4_SSL(endpoint.host, endpoint.port, ssl_context=_context(target),
                                 timeout=TIMEOUT)
    else:
        imap = imaplib.IMAP4(endpoint.host, endpoint.port, timeout=TIMEOUT)
        assert "STARTTLS" in imap.capabilities
        assert imap.starttls(ssl_context=_context(target))[0] == "OK"
    assert imap.login(account.user, account.password)[0] == "OK"
    return imap


def _raw(imap: imaplib.IMAP4, tag: bytes, line: bytes) -> list[bytes]:
    """One command through imaplib's low-level send()/readline(); the lines up to its tag."""
    imap.send(tag + b" " + line + b"\r\n")
    lines: list[bytes] = []
    for _ in range(100):
        got = imap.readline()
        lines.append(got)
        if got.startswith(tag + b" ") or not got:
            return lines
    raise AssertionError(f"no tagged answer to {line!r}: {lines}")


def _ok(answer: tuple[str, Any]) -> list[Any]:
    status, data = answer
    assert status == "OK", f"{status} {data}"
    return list(data)


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "imaps"])
def test_imaplib_logs_in(target: Target, implicit: bool) -> None:
    imap = _imaplib(target, implicit=implicit)
    try:
        caps = _ok(imap.capability())
        assert b"IMAP4rev1" in caps[0]
    finally:
        assert imap.logout()[0] == "BYE"


def test_imaplib_enable(target: Target) -> None:
    imap = _imaplib(target, implicit=True)
    try:
        assert imap.enable("IMAP4rev2")[0] == "OK"
        assert imap.untagged_responses.get("ENABLED") in ([b"IMAP4rev2"], None)
    finally:
        imap.logout()


def test_imaplib_does_every_operation(target: Target) -> None:
    mark, box, other = _names("imaplib")
    renamed = box + "-renamed"
    imap = _imaplib(target, implicit=False)
    try:
        namespace = _ok(imap.namespace())
        assert b'"/"' in namespace[0]
        ident = _raw(imap, b"X1", b'ID ("name" "imaplib")')
        assert ident[0].startswith(b"* ID ") and b" OK" in ident[-1]
        for name in (box, other):
            _ok(imap.create(name))
        _ok(imap.rename(box, renamed))
        listed = b"\n".join(x for x in _ok(imap.list()) if isinstance(x, bytes))
        assert renamed.encode() in listed and box.encode() + b"\r" not in listed
        _ok(imap.subscribe(renamed))
        assert renamed.encode() in b"".join(x for x in _ok(imap.lsub()) if isinstance(x, bytes))
        _ok(imap.unsubscribe(renamed))

        message = _message(mark)
        appended = _ok(imap.append(renamed, "(\\Seen)", None, message))
        assert b"APPENDUID" in appended[0]
        _ok(imap.append(renamed, None, None, _message(mark, "second")))
        status = _ok(imap.status(renamed, "(MESSAGES UIDNEXT)"))
        assert b"MESSAGES 2" in status[0]

        assert _ok(imap.select(renamed, readonly=True)) == [b"2"]  # EXAMINE
        assert _ok(imap.select(renamed)) == [b"2"]
        data = _ok(imap.fetch("1", "(BODY[])"))
        assert isinstance(data[0], tuple) and data[0][1] == message
        data = _ok(imap.fetch("1", "(BODY.PEEK[HEADER])"))
        assert isinstance(data[0], tuple) and data[0][1] == message.split(b"\r\n\r\n")[0] + b"\r\n\r\n"
        meta = _ok(imap.fetch("1", "(RFC822.SIZE INTERNALDATE FLAGS UID)"))[0]
        assert isinstance(meta, bytes)
        assert f"RFC822.SIZE {len(message)}".encode() in meta and b"\\Seen" in meta
        assert imaplib.Internaldate2tuple(meta) is not None
        envelope = _ok(imap.fetch("1", "(ENVELOPE BODYSTRUCTURE)"))
        flat = b"".join(x if isinstance(x, bytes) else b"".join(x) for x in envelope)
        assert mark.encode() in flat and b'BODYSTRUCTURE ("TEXT" "PLAIN"' in flat.upper()
        found = re.search(rb"UID (\d+)", meta)
        assert found is not None
        uid = int(found.group(1))

        assert b"\\Flagged" in _ok(imap.store("1", "+FLAGS", "(\\Flagged)"))[0]
        assert _ok(imap.search(None, "FLAGGED")) == [b"1"]
        assert _ok(imap.search(None, "UNSEEN")) == [b"2"]
        assert _ok(imap.uid("SEARCH", "ALL"))[0].split()[0] == str(uid).encode()
        uid_fetch = _ok(imap.uid("FETCH", str(uid), "(FLAGS)"))[0]
        assert f"UID {uid}".encode() in uid_fetch
        _ok(imap.uid("STORE", str(uid), "-FLAGS", "(\\Flagged)"))
        _ok(imap.copy("1", other))
        _ok(imap.uid("COPY", str(uid), other))
        _ok(imap.xatom("MOVE", "2", other))  # MOVE is in imaplib's command table
        _ok(imap.uid("MOVE", str(uid), other))
        assert _ok(imap.status(other, "(MESSAGES)"))[0].endswith(b"(MESSAGES 4)")

        assert _ok(imap.select(other)) == [b"4"]
        _ok(imap.store("1:2", "+FLAGS.SILENT", "(\\Deleted)"))
        # Highest first or lowest first: both orders are valid (RFC 9051 §7.5.1).
        assert _ok(imap.expunge()) in ([b"2", b"1"], [b"1", b"1"])
        assert _ok(imap.search(None, "ALL")) == [b"1 2"]
        uids = _ok(imap.uid("SEARCH", "ALL"))[0].split()
        _ok(imap.uid("STORE", uids[0].decode(), "+FLAGS", "(\\Deleted)"))
        _ok(imap.uid("EXPUNGE", uids[0].decode()))
        assert _ok(imap.search(None, "ALL")) == [b"1"]

        # IDLE (imaplib 3.11 has no method): a message appended by another session wakes it.
        imap.send(b"I1 IDLE\r\n")
        assert imap.readline().startswith(b"+")
        second = _imaplib(target, implicit=True)
        try:
            _ok(second.append(other, None, None, _message(mark, "during idle")))
        finally:
            second.logout()
        assert imap.readline() == b"* 2 EXISTS\r\n"
        # IMAP4rev1: the first session told of it has it as \Recent (RFC 3501 §7.3.2).
        assert re.fullmatch(rb"\* [0-9]+ RECENT\r\n", imap.readline())
        imap.send(b"DONE\r\n")
        assert imap.readline().startswith(b"I1 OK")

        _ok(imap.unselect())
        _ok(imap.select(other))
        _ok(imap.close())
        for name in (renamed, other):
            _ok(imap.delete(name))
        assert renamed.encode() not in b"".join(
            x for x in _ok(imap.list()) if isinstance(x, bytes))
    finally:
        assert imap.logout()[0] == "BYE"


# -- imapclient ----------------------------------------------------------------------------------


def _imapclient(target: Target, *, implicit: bool) -> imapclient.IMAPClient:
    endpoint = _endpoint(target, implicit)
    account = target.receiver.accounts[0]
    client = imapclient.IMAPClient(endpoint.host, port=endpoint.port, ssl=implicit,
                                   ssl_context=_context(target) if implicit else None,
                                   timeout=TIMEOUT)
    if not implicit:
        assert client.has_capability("STARTTLS")
        client.starttls(_context(target))
    client.login(account.user, account.password)
    return client


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "imaps"])
def test_imapclient_logs_in(target: Target, implicit: bool) -> None:
    client = _imapclient(target, implicit=implicit)
    try:
        assert b"IMAP4REV1" in client.capabilities()
    finally:
        client.logout()


def test_imapclient_enable(target: Target) -> None:
    client = _imapclient(target, implicit=True)
    try:
        assert client.enable("IMAP4rev2") == [b"IMAP4rev2"]
    finally:
        client.logout()


def test_imapclient_does_every_operation(target: Target, tmp_path: Path) -> None:
    mark, box, other = _names("imapclient")
    renamed = box + "-renamed"
    client = _imapclient(target, implicit=False)
    try:
        assert client.namespace().personal[0][1] == "/"
        assert isinstance(client.id_({"name": "imapclient"}), (tuple, type(None)))
        for name in (box, other):
            client.create_folder(name)
        client.rename_folder(box, renamed)
        names = [name for _, _, name in client.list_folders()]
        assert renamed in names and box not in names
        client.subscribe_folder(renamed)
        assert renamed in [name for _, _, name in client.list_sub_folders()]
        client.unsubscribe_folder(renamed)

        message = _message(mark)
        client.append(renamed, message, flags=(imapclient.SEEN,))
        client.append(renamed, _message(mark, "second"))
        assert client.folder_status(renamed, [b"MESSAGES"])[b"MESSAGES"] == 2

        assert client.select_folder(renamed, readonly=True)[b"EXISTS"] == 2  # EXAMINE
        assert client.select_folder(renamed)[b"EXISTS"] == 2
        (uid, _) = client.search(["ALL"])
        items = client.fetch([uid], ["ENVELOPE", "BODYSTRUCTURE", "BODY[]", "BODY.PEEK[HEADER]",
                                     "RFC822.SIZE", "INTERNALDATE", "FLAGS", "UID"])[uid]
        assert items[b"BODY[]"] == message
        assert items[b"BODY[HEADER]"] == message.split(b"\r\n\r\n")[0] + b"\r\n\r\n"
        assert items[b"RFC822.SIZE"] == len(message)  # (imapclient keys the result by UID)
        assert items[b"ENVELOPE"].subject == f"python clients {mark}".encode()
        assert items[b"BODYSTRUCTURE"][0].upper() == b"TEXT"
        assert imapclient.SEEN in items[b"FLAGS"] and items[b"INTERNALDATE"] is not None

        client.add_flags([uid], [imapclient.FLAGGED])
        assert client.search(["FLAGGED"]) == [uid]
        client.remove_flags([uid], [imapclient.FLAGGED])
        assert client.get_flags([uid])[uid] == (imapclient.SEEN, imapclient.RECENT)
        assert len(client.search(["UNSEEN"])) == 1
        client.copy([uid], other)
        client.move([uid], other)
        assert client.folder_status(other, [b"MESSAGES"])[b"MESSAGES"] == 2

        # The sequence-number forms of the same commands.
        client.use_uid = False
        assert client.search(["ALL"]) == [1]
        assert client.fetch([1], ["FLAGS"])[1][b"FLAGS"] == (imapclient.RECENT,)
        client.copy([1], other)
        client.set_flags([1], [imapclient.DELETED])
        client.use_uid = True
        client.expunge()
        assert client.search(["ALL"]) == []

        client.select_folder(other)
        uids = client.search(["ALL"])
        assert len(uids) == 3
        client.add_flags(uids[:2], [imapclient.DELETED])
        client.uid_expunge(uids[:1])  # UID EXPUNGE (RFC 4315)
        assert client.search(["ALL"]) == uids[1:]

        client.idle()
        second = _imapclient(target, implicit=True)
        try:
            second.append(other, _message(mark, "during idle"))
        finally:
            second.logout()
        events = client.idle_check(timeout=5)
        client.idle_done()
        assert (3, b"EXISTS") in events

        client.unselect_folder()
        client.select_folder(other)
        client.close_folder()  # expunges the \Deleted one
        assert client.folder_status(other, [b"MESSAGES"])[b"MESSAGES"] == 2
        for name in (renamed, other):
            client.delete_folder(name)
        assert renamed not in [name for _, _, name in client.list_folders()]
    finally:
        client.logout()
