"""The TLS material `serve` keeps in its data directory: the CA and the server certificates are
reused while valid, issued anew when their names change or they near their end, and files that
cannot be used are a one-line error, never silently replaced."""

from __future__ import annotations

import socket
import ssl
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from reference_agents import tls
from reference_agents.tls import TLSFilesError, TLSMaterial

IDENTITIES = ["mail.example.org", "127.0.0.2"]


def _cert(path: Path) -> x509.Certificate:
    blob = path.read_bytes()
    return x509.load_pem_x509_certificate(blob[blob.index(b"-----BEGIN CERTIFICATE"):])


def test_ca_is_kept_and_reused(tmp_path: Path) -> None:
    first = TLSMaterial.load_or_create(tmp_path)
    pem = first.ca_file.read_bytes()
    assert (tmp_path / "ca-key.pem").stat().st_mode & 0o077 == 0
    assert first.ca_file.stat().st_mode & 0o777 == 0o644
    again = TLSMaterial.load_or_create(tmp_path)
    assert again.ca_file.read_bytes() == pem
    assert again.ca.private_key_pem.bytes() == first.ca.private_key_pem.bytes()


def test_server_certificate_names_cn_and_sans(tmp_path: Path) -> None:
    material = TLSMaterial.load_or_create(tmp_path)
    leaf = tmp_path / "mail.example.org.pem"
    material.server_files(IDENTITIES, leaf)
    cert = _cert(leaf)
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == [
        "mail.example.org"]
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == {"mail.example.org", "127.0.0.2"}
    assert [str(a) for a in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.2"]
    assert leaf.stat().st_mode & 0o077 == 0


def test_server_certificate_reused_then_reissued_for_new_names(tmp_path: Path) -> None:
    material = TLSMaterial.load_or_create(tmp_path)
    leaf = tmp_path / "leaf.pem"
    material.server_files(IDENTITIES, leaf)
    blob = leaf.read_bytes()
    TLSMaterial.load_or_create(tmp_path).server_files(IDENTITIES, leaf)
    assert leaf.read_bytes() == blob
    material.server_files(["mail.example.org", "127.0.0.9"], leaf)
    assert leaf.read_bytes() != blob
    sans = _cert(leaf).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(a) for a in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.9"]


def test_server_certificate_of_another_ca_is_reissued(tmp_path: Path) -> None:
    leaf = tmp_path / "leaf.pem"
    TLSMaterial.load_or_create(tmp_path / "one").server_files(IDENTITIES, leaf)
    blob = leaf.read_bytes()
    other = TLSMaterial.load_or_create(tmp_path / "two")
    other.server_files(IDENTITIES, leaf)
    assert leaf.read_bytes() != blob
    _cert(leaf).verify_directly_issued_by(
        x509.load_pem_x509_certificate(other.ca.cert_pem.bytes()))


def test_server_certificate_near_its_end_is_reissued(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    material = TLSMaterial.load_or_create(tmp_path)
    leaf = tmp_path / "leaf.pem"
    material.server_files(IDENTITIES, leaf)
    blob = leaf.read_bytes()
    later = datetime.now(UTC) + tls.LEAF_VALIDITY - tls.RENEW_BEFORE + timedelta(days=1)
    monkeypatch.setattr(tls, "_now", lambda: later)
    material.server_files(IDENTITIES, leaf)
    assert leaf.read_bytes() != blob
    assert _cert(leaf).not_valid_after_utc > later + tls.RENEW_BEFORE


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        ({"ca.pem": None}, "ca-key.pem: missing"),
        ({"ca-key.pem": None}, "ca.pem: missing"),
        ({"ca.pem": b"not a certificate\n", "ca-key.pem": b"not a key\n"}, "cannot use the kept CA"),
    ],
)
def test_unusable_ca_files_are_one_line_and_kept(tmp_path: Path, files: dict[str, bytes | None],
                                                 problem: str) -> None:
    good = TLSMaterial.create(tmp_path / "good")
    for name, blob in files.items():
        data = blob if blob is not None else (
            good.ca.cert_pem.bytes() if name == "ca.pem" else good.ca.private_key_pem.bytes())
        (tmp_path / name).write_bytes(data)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    with pytest.raises(TLSFilesError) as caught:
        TLSMaterial.load_or_create(tmp_path)
    assert problem in str(caught.value) and "\n" not in str(caught.value)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


def test_key_of_another_ca_is_refused(tmp_path: Path) -> None:
    one, two = TLSMaterial.create(tmp_path / "one"), TLSMaterial.create(tmp_path / "two")
    (tmp_path / "ca.pem").write_bytes(one.ca.cert_pem.bytes())
    (tmp_path / "ca-key.pem").write_bytes(two.ca.private_key_pem.bytes())
    with pytest.raises(TLSFilesError, match="not the certificate's"):
        TLSMaterial.load_or_create(tmp_path)


@pytest.mark.parametrize("server_hostname", ["mail.example.org", "127.0.0.2"])
def test_a_client_trusting_only_the_ca_verifies_name_and_address(
        tmp_path: Path, server_hostname: str) -> None:
    material = TLSMaterial.load_or_create(tmp_path)
    server_ctx = material.server_files(IDENTITIES, tmp_path / "leaf.pem")
    client_ctx = ssl.create_default_context(cafile=str(material.ca_file))
    with socket.socket() as listener:
        listener.bind(("127.0.0.2", 0))
        listener.listen(1)
        port = listener.getsockname()[1]

        def accept() -> None:
            conn, _ = listener.accept()
            with server_ctx.wrap_socket(conn, server_side=True) as tls_conn:
                tls_conn.recv(1)

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        with socket.create_connection(("127.0.0.2", port), timeout=10) as raw, \
                client_ctx.wrap_socket(raw, server_hostname=server_hostname) as conn:
            assert conn.version() is not None
            conn.sendall(b"x")
        thread.join(10)
