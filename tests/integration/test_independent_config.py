"""The independent-server configuration in servers/ renders completely, and its target file loads."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from harness.targets import load_target

SERVERS = Path(__file__).resolve().parents[2] / "servers"


def _load_runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_independent", SERVERS / "run_independent.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("run_independent", module)
    spec.loader.exec_module(module)
    return module


runner = _load_runner()


@pytest.fixture
def rendered(tmp_path: Path) -> Path:
    layout = runner.Layout(tmp_path / "run")
    runner.make_tls(layout)
    runner.render(layout, mail_uid=8, mail_gid=8,
                  versions={"postfix": "3.test", "dovecot": "2.test"})
    return layout.root


def test_every_placeholder_is_filled(rendered: Path) -> None:
    files = [p for p in rendered.rglob("*") if p.is_file()]
    assert any(p.name == "main.cf" for p in files) and any(p.name == "dovecot.conf" for p in files)
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"@[A-Z][A-Z_]*@", text), f"{path} keeps a placeholder"


def test_unknown_placeholder_is_an_error() -> None:
    with pytest.raises(runner.SetupError, match="@NOPE@"):
        runner.render_text("a = @NOPE@\n", {}, source="t")


def test_target_file_loads_and_describes_both_providers(rendered: Path) -> None:
    target = load_target(rendered / "target.toml")
    assert target.name.startswith("Postfix 3.test + Dovecot 2.test")
    assert target.sender.domain == "example.org" and target.receiver.domain == "example.net"
    assert target.sender.submission is not None and target.sender.submission.url == "smtp://127.0.0.2:587"
    assert target.sender.submissions is not None and target.sender.submissions.implicit_tls
    assert target.receiver.mx is not None and target.receiver.mx.url == "smtp://127.0.0.3:25"
    assert target.receiver.imaps is not None and target.receiver.imaps.port == 993
    assert len(target.sender.accounts) >= 2 and len(target.receiver.accounts) >= 2
    assert target.dns is not None and target.dns.update
    assert (target.dns.host, target.dns.port) == (runner.DNS_ADDRESS, runner.DNS_PORT)
    assert target.sender.outbound_port == 25
    assert target.ca_file is not None and Path(target.ca_file).name == "ca.pem"
    assert len(target.sink_addresses) == 5


def test_accounts_agree_across_postfix_dovecot_and_target(rendered: Path) -> None:
    target = load_target(rendered / "target.toml")
    users = (rendered / "dovecot" / "users").read_text(encoding="utf-8")
    for provider, instance in ((target.sender, "sender"), (target.receiver, "receiver")):
        mailboxes = (rendered / f"postfix-{instance}" / "etc" / "virtual_mailboxes").read_text()
        logins = (rendered / f"postfix-{instance}" / "etc" / "sender_logins").read_text()
        for acct in provider.accounts:
            assert f"{acct.user}:{{PLAIN}}{acct.password}:" in users
            assert f"{acct.address} OK" in mailboxes
            assert f"{acct.address} {acct.user}" in logins
        aliases = (rendered / f"postfix-{instance}" / "etc" / "virtual_aliases").read_text()
        assert aliases.startswith(f"postmaster@{provider.domain} ")


def test_postfix_is_no_open_relay_and_uses_the_zone_server(rendered: Path) -> None:
    main = (rendered / "postfix-sender" / "etc" / "main.cf").read_text(encoding="utf-8")
    settings = dict(
        (key.strip(), value.strip())
        for key, _, value in (line.partition("=") for line in main.splitlines())
        if key and not key.startswith((" ", "#"))
    )
    assert settings["smtpd_relay_restrictions"] == "permit_sasl_authenticated, reject_unauth_destination"
    assert not any("permit_mynetworks" in line for line in main.splitlines()
                   if not line.lstrip().startswith("#"))
    assert settings["smtpd_tls_auth_only"] == "yes"
    assert settings["smtpd_peername_lookup"] == "no"
    assert settings["inet_protocols"] == "ipv4"
    master = (rendered / "postfix-sender" / "etc" / "master.cf").read_text(encoding="utf-8")
    for port in (25, 587, 465):
        assert re.search(rf"^127\.0\.0\.2:{port}\s+inet\s", master, re.M), f"no listener on :{port}"


def test_zone_files_parse_and_point_at_the_providers(rendered: Path) -> None:
    from harness.dns import ZoneServer

    server = ZoneServer(runner.DNS_ADDRESS, 0)
    for zone in runner.ZONES:
        server.add_zone(zone, (rendered / "zones" / f"{zone}.zone").read_text(encoding="utf-8"))
    assert server.zones() == sorted(f"{z}." for z in runner.ZONES)
    for instance in runner.INSTANCES:
        text = (rendered / "zones" / f"{instance.domain}.zone").read_text(encoding="utf-8")
        assert re.search(rf"^mail\s+A\s+{re.escape(instance.address)}$", text, re.M)


@pytest.mark.skipif(shutil.which("postconf") is None, reason="Postfix is not installed (postconf missing)")
def test_postfix_accepts_the_rendered_configuration(rendered: Path) -> None:
    for instance in ("sender", "receiver"):
        config = rendered / f"postfix-{instance}" / "etc"
        result = subprocess.run(["postconf", "-c", str(config), "-n"], capture_output=True,
                                text=True, timeout=30, check=False)
        assert result.returncode == 0, result.stderr
        assert "warning" not in result.stderr, result.stderr
        result = subprocess.run(["postconf", "-c", str(config), "-M"], capture_output=True,
                                text=True, timeout=30, check=False)
        assert result.returncode == 0 and "warning" not in result.stderr, result.stderr


@pytest.mark.skipif(shutil.which("doveconf") is None, reason="Dovecot is not installed (doveconf missing)")
def test_dovecot_accepts_the_rendered_configuration(rendered: Path) -> None:
    result = subprocess.run(["doveconf", "-c", str(rendered / "dovecot" / "dovecot.conf"), "-n"],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert "ssl = required" in result.stdout
    assert "disable_plaintext_auth" not in result.stdout or "disable_plaintext_auth = yes" in result.stdout


def test_pid_file_is_read_once_its_writer_has_filled_it(tmp_path: Path) -> None:
    """A daemon creates its pid file before it writes the pid: an empty file is waited for."""
    import threading
    import time

    path = tmp_path / "master.pid"
    path.write_text("")
    timer = threading.Timer(0.3, lambda: path.write_text("  4242\n"))
    timer.start()
    try:
        assert runner._read_pid(path, time.monotonic() + 5, "daemon") == 4242
    finally:
        timer.cancel()


def test_pid_file_that_stays_empty_is_a_setup_error(tmp_path: Path) -> None:
    import time

    path = tmp_path / "master.pid"
    path.write_text("\n")
    with pytest.raises(runner.SetupError, match="holds no pid"):
        runner._read_pid(path, time.monotonic() + 0.3, "daemon")
