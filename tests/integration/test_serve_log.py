"""`mailharness serve --log-file`: one line per session event (connect, TLS, AUTH without the
password, the transaction, queue and delivery, IMAP login and selection), and a client that
aborts the TLS handshake or resets the connection is one line, never a traceback."""

from __future__ import annotations

import imaplib
import os
import re
import signal
import smtplib
import socket
import ssl
import struct
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

from reference_agents.tls import TLSMaterial

MAILHARNESS = [sys.executable, "-m", "mailharness.cli"]
LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (smtp|queue|mda|imap|error|\w+)\s+\S")


def _ports(target: Path) -> dict[str, tuple[str, int]]:
    import tomllib

    data = tomllib.loads(target.read_text())
    found = {}
    for role in ("sender", "receiver"):
        for kind in ("submission", "imaps"):
            url = data[role][kind]
            host, port = url.split("://", 1)[1].rsplit(":", 1)
            found[f"{role} {kind}"] = (host, int(port))
    return found


def _wait(predicate: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_serve_log_names_each_event_and_aborts_are_one_line(tmp_path: Path) -> None:
    config = tmp_path / "serve.toml"
    config.write_text('standard_ports = false\ndns_port = 0\ndata_dir = "data"\n')
    log = tmp_path / "serve.log"
    target = tmp_path / "data" / "target.toml"
    process = subprocess.Popen([*MAILHARNESS, "serve", "--config", str(config), "--log-file",
                                str(log)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        _wait(target.exists)
        ports = _ports(target)
        ca = tmp_path / "data" / "tls" / "ca.pem"
        trusted = ssl.create_default_context(cafile=str(ca))
        host, port = ports["sender submission"]
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = (
            "alice@example.org", "bob@example.net", "logged")
        message.set_content("see the log")
        with smtplib.SMTP(host, port, local_hostname="client.mailharness.invalid") as smtp:
            smtp.starttls(context=trusted)
            smtp.login("alice@example.org", "alice-password")
            smtp.send_message(message)
            refused = smtp.sendmail("alice@example.org", ["nobody@example.net"], b"x\r\n")
            assert refused == {}  # the MSA takes it; the receiving MTA refuses the RCPT later
        # A client that does not trust the certificate: the handshake fails on its side.
        untrusted = ssl.create_default_context(
            cafile=str(TLSMaterial.create(tmp_path / "other").ca_file))
        with smtplib.SMTP(host, port, local_hostname="client.mailharness.invalid") as smtp:
            try:
                smtp.starttls(context=untrusted)
            except ssl.SSLError:
                pass
        # A reset in the middle of a session.
        with socket.create_connection((host, port)) as raw:
            raw.recv(512)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        imap_host, imap_port = ports["receiver imaps"]
        _wait(lambda: "mda   example.net <bob@example.net>" in log.read_text())
        with imaplib.IMAP4_SSL(imap_host, imap_port, ssl_context=trusted) as imap:
            imap.login("bob@example.net", "bob-password")
            imap.select("INBOX")
            imap.logout()
        _wait(lambda: "imaps" in log.read_text() and "disconnect (LOGOUT)" in log.read_text())
        _wait(lambda: "bounced <nobody@example.net>" in log.read_text())
    finally:
        os.kill(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=30)
    text = log.read_text()
    lines = text.splitlines()
    assert process.returncode == 0 and "Traceback" not in err, err
    assert "Traceback" not in text and all(LINE.match(line) for line in lines), text
    assert "alice-password" not in text and "bob-password" not in text

    def one(pattern: str) -> str:
        found = [line for line in lines if re.search(pattern, line)]
        assert found, f"no line matches {pattern!r} in:\n{text}"
        return found[0]

    one(r"smtp  example\.org submission 127\.0\.0\.1:\d+ connect$")
    one(r"smtp  example\.org submission \S+ STARTTLS: TLSv1\.[23] ")
    one(r"smtp  example\.org submission \S+ AUTH PLAIN as alice@example\.org: 235 ")
    queued = one(r"smtp  example\.org submission \S+ message <alice@example\.org> -> "
                 r"<bob@example\.net>: 250 ")
    queue_id = queued.rsplit(" ", 1)[-1]
    one(rf"queue example\.org {re.escape(queue_id)} queued <alice@example\.org> -> <bob@example\.net>, \d+ octets")
    one(rf"queue example\.org {re.escape(queue_id)} attempt 1 for <bob@example\.net>")
    one(rf"queue example\.org {re.escape(queue_id)} delivered <bob@example\.net>: 250 ")
    # The relay hop arrives from the sending provider's own address.
    one(r"smtp  example\.net smtp 127\.0\.0\.2:\d+ connect")
    one(r"smtp  example\.net smtp \S+ RCPT TO:<nobody@example\.net> refused: 550 5\.1\.1")
    one(r"queue example\.org \S+ bounced <nobody@example\.net> \(5\.1\.1\): ")
    one(r"mda   example\.net <bob@example\.net> -> bob@example\.net/INBOX uid \d+: spam no, score ")
    one(r"imap  example\.net imaps 127\.0\.0\.1:\d+ connect \(TLSv1\.[23] ")
    one(r"imap  example\.net imaps \S+ LOGIN bob@example\.net: OK")
    one(r"imap  example\.net imaps \S+ bob@example\.net SELECT INBOX: OK")
    aborted = [line for line in lines if "TLS handshake failed" in line]
    assert len(aborted) == 1 and re.search(r"disconnect \(TLS handshake failed: TLS: \w+", aborted[0]), text
    one(r"smtp  example\.org submission \S+ disconnect \(lost: ")
    assert sum("disconnect (QUIT)" in line for line in lines) >= 1
