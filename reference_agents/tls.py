"""TLS material for the reference agents: a CA and server certificates made at run time (trustme)."""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import trustme


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

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this CA only."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        self.ca.configure_trust(ctx)
        return ctx
