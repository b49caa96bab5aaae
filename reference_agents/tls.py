"""TLS material for the reference agents: a CA and server certificates made at run time (trustme),
kept in the data directory and reused while they are valid."""

from __future__ import annotations

import asyncio.sslproto
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from reference_agents.durable import replace_file

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



#: A server certificate kept in the data directory is issued for this long, and issued anew
#: when less than RENEW_BEFORE of it is left (or its names or CA changed). 825 days is the
#: longest validity some clients (Apple's) accept for a server certificate.
LEAF_VALIDITY = timedelta(days=825)
RENEW_BEFORE = timedelta(days=30)
#: The kept CA is replaced when less than this is left of it (trustme issues it for decades).
CA_RENEW_BEFORE = timedelta(days=90)
CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"


class TLSFilesError(Exception):
    """The TLS directory holds files that cannot be used; ``str()`` is one line."""


@dataclass(frozen=True)
class TLSMaterial:
    """A CA, and the PEM file that clients trust it through.

    `create` makes a new CA each time (tests); `load_or_create` keeps one in a directory
    (``ca.pem``, and ``ca-key.pem`` readable by the owner only) and reuses it while it is valid,
    so that client configurations that trust it keep working across restarts of `serve`."""

    ca: trustme.CA
    ca_file: Path

    @classmethod
    def create(cls, directory: Path) -> TLSMaterial:
        directory.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA(organization_name="mailharness test CA")
        ca_file = directory / CA_FILE
        ca.cert_pem.write_to_path(str(ca_file))
        return cls(ca=ca, ca_file=ca_file)

    @classmethod
    def load_or_create(cls, directory: Path) -> TLSMaterial:
        """The CA kept in *directory*, or a new one written there when there is none, or it
        expires within CA_RENEW_BEFORE. Files that exist but do not parse, or a certificate
        without its key, raise TLSFilesError: they are the user's, and are not overwritten."""
        directory.mkdir(parents=True, exist_ok=True)
        ca_file, key_file = directory / CA_FILE, directory / CA_KEY_FILE
        if ca_file.exists() or key_file.exists():
            ca = _load_ca(ca_file, key_file)
            if _not_after(ca.cert_pem.bytes()) - _now() > CA_RENEW_BEFORE:
                return cls(ca=ca, ca_file=ca_file)
        ca = trustme.CA(organization_name="mailharness test CA")
        # The key first: a crash between the two writes leaves a key without a certificate,
        # which the next start reports, never a certificate that nothing can sign with.
        replace_file(key_file, ca.private_key_pem.bytes())
        replace_file(ca_file, ca.cert_pem.bytes())
        os.chmod(ca_file, 0o644)
        return cls(ca=ca, ca_file=ca_file)

    def _leaf(self, identities: Sequence[str]) -> bytes:
        """A new ECDSA key and a certificate for *identities*, signed by the CA, as PEM (key,
        then the chain). The subject's CN is the first identity; the SANs are a DNS name for
        each host name, and for each address an IP address and also a DNS name spelling it:
        clients that compare only DNS names and the CN with the host they were given (mbsync
        1.4, fetchmail) then verify a connection made to the address."""
        key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = x509.load_pem_x509_certificate(self.ca.cert_pem.bytes())
        ca_key = serialization.load_pem_private_key(self.ca.private_key_pem.bytes(), None)
        names: list[x509.GeneralName] = []
        for identity in identities:
            name = _general_name(identity)
            names.append(name)
            if isinstance(name, x509.IPAddress):
                names.append(x509.DNSName(identity))
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mailharness"),
                x509.NameAttribute(NameOID.COMMON_NAME, identities[0]),
            ]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + LEAF_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value),
                critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
        )
        return (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
                + cert.public_bytes(serialization.Encoding.PEM) + self.ca.cert_pem.bytes())

    def server_context(self, identities: Sequence[str]) -> ssl.SSLContext:
        """A server context with a new certificate for *identities* (host names and IP
        addresses; the first is also the subject's CN)."""
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "leaf.pem"
            path.write_bytes(self._leaf(identities))
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(path)
        return ctx

    def server_files(self, identities: Sequence[str], path: Path) -> ssl.SSLContext:
        """A server context from the key and certificate chain kept at *path* (owner-only):
        reused when this CA signed it for exactly *identities* and it has more than
        RENEW_BEFORE left, else issued anew and written there."""
        blob = path.read_bytes() if path.exists() else b""
        if not (blob and self._reusable(blob, identities)):
            replace_file(path, self._leaf(identities))
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(path)
        return ctx

    def _reusable(self, blob: bytes, identities: Sequence[str]) -> bool:
        try:
            cert = x509.load_pem_x509_certificate(blob[blob.index(b"-----BEGIN CERTIFICATE"):])
            names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            ca_cert = x509.load_pem_x509_certificate(self.ca.cert_pem.bytes())
            cert.verify_directly_issued_by(ca_cert)
        except (ValueError, TypeError, x509.ExtensionNotFound, InvalidSignature):
            return False
        wanted = {_general_name(i) for i in identities} | {
            x509.DNSName(i) for i in identities if isinstance(_general_name(i), x509.IPAddress)}
        common = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return (set(names) == wanted and len(common) == 1 and common[0].value == identities[0]
                and cert.not_valid_after_utc - _now() > RENEW_BEFORE)

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this CA only."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        self.ca.configure_trust(ctx)
        return ctx


def _now() -> datetime:
    return datetime.now(UTC)


def _not_after(pem: bytes) -> datetime:
    return x509.load_pem_x509_certificate(pem).not_valid_after_utc


def _general_name(identity: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(identity))
    except ValueError:
        return x509.DNSName(identity)


def _load_ca(ca_file: Path, key_file: Path) -> trustme.CA:
    for path in (ca_file, key_file):
        if not path.is_file():
            raise TLSFilesError(f"{path}: missing (the CA needs both {ca_file.name} and "
                                f"{key_file.name}; remove the other to make a new CA)")
    try:
        ca = trustme.CA.from_pem(ca_file.read_bytes(), key_file.read_bytes())
        cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
        if cert.public_key() != serialization.load_pem_private_key(
                key_file.read_bytes(), password=None).public_key():
            raise ValueError("the key is not the certificate's")
    except (ValueError, TypeError, OSError) as exc:
        raise TLSFilesError(f"{ca_file.parent}: cannot use the kept CA ({exc}); remove "
                            f"{ca_file.name} and {key_file.name} to make a new one") from None
    return ca
