"""Real mail clients from Debian's packages (msmtp, mbsync, fetchmail, swaks, curl) against
`mailharness serve`, each verifying TLS with the CA file alone, and the same client
configurations working again after a restart with the same data directory and base_port.

Every client is given IP addresses, never a host name: nothing here may ask the system
resolver. Each test skips, naming the package, where its client is not installed (.ci/run
installs them)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reference_agents.tls import TLSMaterial
from reference_agents.topology import BASE_OFFSETS

MAILHARNESS = [sys.executable, "-m", "mailharness.cli"]
SENDER, RECEIVER = "127.0.0.2", "127.0.0.3"
#: Every address the topology binds (DNS, the two providers, the sinks).
ADDRESSES = ("127.0.0.1", *(f"127.0.0.{i}" for i in range(2, 10)))
CLIENT_TIMEOUT = 60


def _need(program: str, package: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.skip(f"{program} is not installed (Debian package {package})")
    return path


def _free_base_port() -> int:
    """A base_port whose every port is free on every address of the topology, now."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1] % 40000 + 20000
        try:
            for offset in BASE_OFFSETS.values():
                for address in ADDRESSES:
                    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                        with socket.socket(socket.AF_INET, kind) as sock:
                            sock.bind((address, base + offset))
        except OSError:
            continue
        return base
    raise AssertionError("no free base_port")


@dataclass
class Served:
    """A `mailharness serve` process with a config that fixes its ports."""

    config: Path
    base: int
    process: subprocess.Popen[str] | None = None

    @property
    def data(self) -> Path:
        return self.config.parent / "data"

    @property
    def ca(self) -> Path:
        return self.data / "tls" / "ca.pem"

    def port(self, service: str) -> int:
        return self.base + BASE_OFFSETS[service]

    def start(self) -> None:
        target = self.data / "target.toml"
        target.unlink(missing_ok=True)
        self.process = subprocess.Popen([*MAILHARNESS, "serve", "--config", str(self.config)],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not target.exists():
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited: {self.process.communicate()[1]}")
            assert time.monotonic() < deadline, "serve did not write its target file in time"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGINT)
            _, err = self.process.communicate(timeout=30)
            assert self.process.returncode == 0, err
        self.process = None


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    config = tmp_path / "serve.toml"
    base = _free_base_port()
    config.write_text(f'data_dir = "data"\nbase_port = {base}\n')
    server = Served(config, base)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _run(argv: list[str], *, home: Path, stdin: str | None = None) -> str:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                          timeout=CLIENT_TIMEOUT, env={**os.environ, "HOME": str(home)})
    assert done.returncode == 0, f"{argv[0]} exited {done.returncode}: {done.stderr[-2000:]}"
    return done.stdout + done.stderr


def _message(subject: str) -> str:
    return (f"From: alice@example.org\r\nTo: bob@example.net\r\nSubject: {subject}\r\n"
            f"Message-ID: <{uuid.uuid4().hex}@example.org>\r\n\r\nfrom a real client\r\n")


def _wait_for_file(directory: Path, needle: bytes, timeout: float = 30) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in directory.rglob("*"):
            if path.is_file() and needle in (blob := path.read_bytes()):
                return blob
        time.sleep(0.2)
    raise AssertionError(f"no file under {directory} holds {needle!r}")


def _config(path: Path, text: str) -> Path:
    """A client's configuration file, owner-only (msmtp and fetchmail refuse others)."""
    path.write_text(text)
    path.chmod(0o600)
    return path


def _msmtprc(tmp: Path, served: Served) -> Path:
    return _config(
        tmp / "msmtprc",
        "account alice\n"
        f"host {SENDER}\nport {served.port('submission')}\n"
        "tls on\ntls_starttls on\n"
        f"tls_trust_file {served.ca}\n"
        "domain client.mailharness.invalid\n"
        "auth plain\nuser alice@example.org\npassword alice-password\n"
        "from alice@example.org\n")


def _mbsyncrc(tmp: Path, served: Served, maildir: Path) -> Path:
    return _config(
        tmp / "mbsyncrc",
        "IMAPAccount bob\n"
        f"Host {RECEIVER}\nPort {served.port('imaps')}\n"
        "User bob@example.net\nPass bob-password\n"
        f"SSLType IMAPS\nCertificateFile {served.ca}\n\n"
        "IMAPStore bob-remote\nAccount bob\n\n"
        f"MaildirStore bob-local\nPath {maildir}/\nInbox {maildir}/INBOX\n\n"
        "Channel bob\nFar :bob-remote:\nNear :bob-local:\nPatterns INBOX\nCreate Near\n"
        "SyncState *\n")


def _fetchmailrc(tmp: Path, served: Served, out: Path) -> Path:
    return _config(
        tmp / "fetchmailrc",
        "set no syslog\n"
        f"poll {RECEIVER} service {served.port('imaps')} protocol IMAP\n"
        '  user "bob@example.net" password "bob-password"\n'
        f'  ssl sslcertck sslcertfile "{served.ca}"\n'
        "  keep\n"
        f"  mda \"/bin/sh -c 'cat > {out}/$$.msg'\"\n")


def test_msmtp_mbsync_fetchmail_keep_working_after_restart(served: Served, tmp_path: Path) -> None:
    """msmtp submits over STARTTLS with AUTH, mbsync and fetchmail read over IMAPS, all three
    verifying the certificate with the CA file only; then `serve` restarts with the same data
    directory and base_port, and the same three files work again. The CA is the same file, and
    the relay hop's Received field names the sending provider's own address."""
    msmtp = _need("msmtp", "msmtp")
    mbsync = _need("mbsync", "isync")
    fetchmail = shutil.which("fetchmail")
    maildir, fetched = tmp_path / "maildir", tmp_path / "fetched"
    maildir.mkdir()
    fetched.mkdir()
    msmtprc, mbsyncrc = _msmtprc(tmp_path, served), _mbsyncrc(tmp_path, served, maildir)
    fetchmailrc = _fetchmailrc(tmp_path, served, fetched)
    ca_before = served.ca.read_bytes()
    for round_ in ("first start", "after restart"):
        subject = f"real clients {round_} {uuid.uuid4().hex}"
        _run([msmtp, "-C", str(msmtprc), "-a", "alice", "bob@example.net"], home=tmp_path,
             stdin=_message(subject))
        deadline = time.monotonic() + 30
        while True:
            _run([mbsync, "-c", str(mbsyncrc), "-a"], home=tmp_path)
            found = [p for p in maildir.rglob("*") if p.is_file() and subject.encode() in p.read_bytes()]
            if found or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert found, f"mbsync did not bring {subject!r} ({round_})"
        head = found[0].read_bytes().split(b"\n\n", 1)[0]
        received = [line for line in head.splitlines() if line.startswith(b"Received:")]
        assert received and f"[{SENDER}]".encode() in received[0], received
        if fetchmail is not None:
            _run([fetchmail, "-f", str(fetchmailrc), "-i", str(tmp_path / "fetchids"),
                  "--nosyslog"], home=tmp_path)
            _wait_for_file(fetched, subject.encode())
        if round_ == "first start":
            served.stop()
            served.start()
            assert served.ca.read_bytes() == ca_before, "the CA changed across a restart"


def test_swaks_and_curl_with_the_ca_only(served: Served, tmp_path: Path) -> None:
    """swaks submits over STARTTLS with --tls-verify, curl over implicit TLS (465) and reads
    over IMAPS (993), each trusting the CA file alone."""
    swaks = _need("swaks", "swaks")
    curl = _need("curl", "curl")
    subject_swaks, subject_curl = (f"{who} {uuid.uuid4().hex}" for who in ("swaks", "curl"))
    out = _run([swaks, "--server", f"{SENDER}:{served.port('submission')}", "--tls",
                "--tls-verify", "--tls-ca-path", str(served.ca), "--auth", "PLAIN",
                "--auth-user", "alice@example.org", "--auth-password", "alice-password",
                "--from", "alice@example.org", "--to", "bob@example.net",
                "--helo", "client.mailharness.invalid", "--header", f"Subject: {subject_swaks}"],
               home=tmp_path)
    assert "TLS started" in out and "\n<~  250 2.0.0" in out, out[-2000:]
    message = tmp_path / "message.eml"
    message.write_text(_message(subject_curl))
    _run([curl, "-sS", "--url", f"smtps://{SENDER}:{served.port('submissions')}",
          "--cacert", str(served.ca), "-u", "alice@example.org:alice-password",
          "--mail-from", "alice@example.org", "--mail-rcpt", "bob@example.net",
          "-T", str(message)], home=tmp_path)
    mailbox = f"imaps://{RECEIVER}:{served.port('imaps')}/INBOX"
    imap = [curl, "-sS", "--cacert", str(served.ca), "-u", "bob@example.net:bob-password"]
    deadline = time.monotonic() + 30
    while True:
        listing = _run([*imap, mailbox, "-X", "UID SEARCH ALL"], home=tmp_path)
        uids = [int(n) for n in listing.split("SEARCH", 1)[-1].split()] if "SEARCH" in listing else []
        subjects = "".join(
            _run([*imap, f"{mailbox};UID={uid}/;SECTION=HEADER.FIELDS%20(SUBJECT)"], home=tmp_path)
            for uid in uids)
        if (subject_swaks in subjects and subject_curl in subjects) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert subject_swaks in subjects and subject_curl in subjects, subjects


def test_mutt_sends_with_the_ca_only(served: Served, tmp_path: Path) -> None:
    """mutt (GnuTLS) submits over STARTTLS trusting the CA file alone; with another CA it
    refuses to send."""
    mutt = _need("mutt", "mutt")
    other = TLSMaterial.create(tmp_path / "other").ca_file  # a CA that signed nothing here

    def muttrc(ca: Path) -> Path:
        rc = tmp_path / ("muttrc" if ca == served.ca else "muttrc-other")
        rc.write_text(
            'set from = "alice@example.org"\n'
            f'set smtp_url = "smtp://alice@example.org@{SENDER}:{served.port("submission")}/"\n'
            'set smtp_pass = "alice-password"\n'
            "set ssl_starttls = yes\nset ssl_force_tls = yes\n"
            f'set ssl_ca_certificates_file = "{ca}"\n'
            f'set certificate_file = "{tmp_path / "mutt-certificates"}"\n'
            'set record = ""\n')
        return rc

    subject = f"mutt {uuid.uuid4().hex}"
    _run([mutt, "-n", "-F", str(muttrc(served.ca)), "-s", subject, "bob@example.net"],
         home=tmp_path, stdin="from mutt\n")
    refused = subprocess.run([mutt, "-n", "-F", str(muttrc(other)), "-s", "untrusted",
                              "bob@example.net"], input="x\n", capture_output=True, text=True,
                             timeout=CLIENT_TIMEOUT, env={**os.environ, "HOME": str(tmp_path)})
    assert refused.returncode != 0, refused.stdout + refused.stderr
    _wait_for_file(served.data / "example.net" / "mail", subject.encode())
