"""TLS material for the reference agents: a CA and server certificates made at run time (trustme)."""

from __future__ import annotations

import asyncio.sslproto
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import trustme

#: Seconds a server waits for the client's close_notify after sending its own before it closes
#: the TCP connection. RFC 8446 §6.1: "It is not required for the initiator of the close to
#: wait for the responding close_notify alert before closing the read side of the
#: connection"; and after LOGOUT a server MUST close (RFC 9051 §6.1.3) — asyncio's default
#: wait of 30 s left a client that waits for the close stalled that long.
TLS_SHUTDOWN_SECONDS = 0.25
#: Seconds a client has to complete the TLS handshake (implicit TLS, or after STARTTLS).
TLS_HANDSHAKE_SECONDS = 10.0
#: Octets asyncio reads from a TLS socket at a time, into a buffer every TLS connection holds
#: for its whole life. asyncio's own is 256 KiB (SSLProtocol.max_size), most of the memory of
#: an idle TLS connection (about 300 KiB in all, measured with benchmarks/connections.py); two
#: TLS records' worth reads just as well.
TLS_READ_BUFFER = 32 * 1024


def bound_tls_buffers() -> None:
    """Make every asyncio TLS connection of this process read with TLS_READ_BUFFER octets
    (asyncio offers no per-server setting: the size is a class attribute)."""
    asyncio.sslproto.SSLProtocol.max_size = TLS_READ_BUFFER



@dataclass(frozen=True)
class TLSMaterial:
    """A run-time CA, and the PEM file that clients trust it through."""

    ca: trustme.CA
    ca_file: Path

    @classmethod
    def create(cls, directory: Path) -> TLSMaterial:
        directory.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA(organization_name="mailharness test CA")
        ca_file = directory / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        return cls(ca=ca, ca_file=ca_file)

    def server_context(self, identities: Sequence[str]) -> ssl.SSLContext:
        """A server context with a certificate for *identities* (host names and IP addresses)."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert(*identities).configure_cert(ctx)
        return ctx

    def server_files(self, identities: Sequence[str], path: Path) -> ssl.SSLContext:
        """As `server_context`, and the same key and certificate chain written (owner-only)
        to *path*, for processes that build their own context from it."""
        leaf = self.ca.issue_cert(*identities)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "wb") as f:
            f.write(leaf.private_key_pem.bytes())
            for blob in leaf.cert_chain_pems:
                f.write(blob.bytes())
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(path)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this CA only."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        self.ca.configure_trust(ctx)
        return ctx
