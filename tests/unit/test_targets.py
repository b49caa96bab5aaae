"""Tests for target descriptions: endpoint URLs, TOML loading and dumping, command-line targets."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme

from harness.targets import (
    DEFAULT_SINK_ADDRESSES,
    Account,
    DNSControl,
    Endpoint,
    ProviderTarget,
    Target,
    TargetError,
    dump_target,
    load_target,
    target_from_urls,
)

EXAMPLE = """\
name = "reference agents (mailharness serve)"
description = "two providers on loopback"
ca_file = "ca.pem"
tls_verify = true
delivery_timeout = 30
sink_addresses = ["127.0.0.5", "127.0.0.6"]
quirks = ["msa_no_date"]

[dns]
server = "127.0.0.1:5300"
update = true

[sender]
domain = "example.org"
submission = "smtp://127.0.0.2:587"
submissions = "smtps://127.0.0.2:465"
mx = "smtp://127.0.0.2:25"
outbound_port = 2525

[[sender.accounts]]
user = "alice@example.org"
password = "alice-password"
address = "alice@example.org"

[receiver]
domain = "example.net"
mx = "smtp://127.0.0.3"
imap = "imap://127.0.0.3:143"
imaps = "imaps://[::1]"
mailbox_junk = "Spam"

[[receiver.accounts]]
user = "bob"
password = "bob:pass word"

[[receiver.accounts]]
user = "carol"
password = ""
address = "carol@example.net"
"""


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    return tmp_path


def write(directory: Path, text: str, name: str = "target.toml") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


# --- Endpoint -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "allowed", "expected"),
    [
        ("smtp://127.0.0.2:587", ("smtp",), Endpoint("smtp", "127.0.0.2", 587)),
        ("smtps://127.0.0.2", ("smtps",), Endpoint("smtps", "127.0.0.2", 465)),
        ("smtp://127.0.0.2", ("smtp",), Endpoint("smtp", "127.0.0.2", 25)),
        ("imap://127.0.0.3", ("imap",), Endpoint("imap", "127.0.0.3", 143)),
        ("IMAPS://127.0.0.3/", ("imaps",), Endpoint("imaps", "127.0.0.3", 993)),
        ("imaps://[::1]:9993", ("imaps",), Endpoint("imaps", "::1", 9993)),
        ("smtp://[0:0::1]", ("smtp",), Endpoint("smtp", "::1", 25)),
    ],
)
def test_endpoint_parse(url: str, allowed: tuple[str, ...], expected: Endpoint) -> None:
    assert Endpoint.parse(url, allowed=allowed) == expected


def test_endpoint_properties() -> None:
    assert Endpoint("smtps", "127.0.0.2", 465).implicit_tls
    assert not Endpoint("smtp", "127.0.0.2", 587).implicit_tls
    assert Endpoint("imaps", "::1", 993).url == "imaps://[::1]:993"
    assert Endpoint("smtp", "127.0.0.2", 587).url == "smtp://127.0.0.2:587"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("smtp://mail.example.org:25", "host names are not resolved; give an IP address"),
        ("smtp://localhost", "host names are not resolved; give an IP address"),
        ("imap://127.0.0.3:143", "expected smtp://ADDRESS[:PORT]"),
        ("127.0.0.2:25", "expected smtp://ADDRESS[:PORT]"),
        ("smtp://127.0.0.2:0", "port must be a number in 1-65535"),
        ("smtp://127.0.0.2:70000", "port must be a number in 1-65535"),
        ("smtp://127.0.0.2:abc", "port must be a number in 1-65535"),
        ("smtp://user@127.0.0.2", "expected smtp://"),
        ("smtp://127.0.0.2/path", "expected smtp://"),
        ("smtp://", "expected smtp://"),
        ("smtp://::1:25", "port must be"),
    ],
)
def test_endpoint_parse_rejects(url: str, problem: str) -> None:
    with pytest.raises(TargetError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        Endpoint.parse(url, allowed=("smtp",))


# --- load_target --------------------------------------------------------------------------


def test_load_example(ca_dir: Path) -> None:
    target = load_target(write(ca_dir, EXAMPLE))
    assert target.name == "reference agents (mailharness serve)"
    assert target.ca_file == (ca_dir / "ca.pem").resolve()
    assert target.dns == DNSControl("127.0.0.1", 5300, True)
    assert target.sink_addresses == ("127.0.0.5", "127.0.0.6")
    assert target.delivery_timeout == 30.0
    assert target.quirks == ("msa_no_date",)
    assert not target.embedded
    sender = target.sender
    assert sender.submission == Endpoint("smtp", "127.0.0.2", 587)
    assert sender.submissions == Endpoint("smtps", "127.0.0.2", 465)
    assert sender.imap is None and sender.imaps is None
    assert sender.outbound_port == 2525
    assert sender.account() == Account("alice@example.org", "alice-password", "alice@example.org")
    receiver = target.receiver
    assert receiver.mx == Endpoint("smtp", "127.0.0.3", 25)
    assert receiver.imaps == Endpoint("imaps", "::1", 993)
    assert receiver.mailbox_junk == "Spam"
    assert receiver.account(0) == Account("bob", "bob:pass word", "bob@example.net")
    assert receiver.account(1).address == "carol@example.net"
    with pytest.raises(LookupError, match="account 2 is not configured"):
        receiver.account(2)


def test_minimal_target_defaults_and_receiver_is_sender(tmp_path: Path) -> None:
    target = load_target(
        write(tmp_path, 'name = "mx only"\n[sender]\ndomain = "example.org"\nmx = "smtp://127.0.0.9"\n')
    )
    assert target.receiver is target.sender
    assert target.sink_addresses == DEFAULT_SINK_ADDRESSES
    assert target.delivery_timeout == 30.0
    assert target.tls_verify and target.ca_file is None and target.dns is None
    assert target.sender.accounts == () and target.sender.mailbox_junk == "Junk"


def test_dump_round_trip(ca_dir: Path) -> None:
    target = load_target(write(ca_dir, EXAMPLE))
    text = dump_target(target)
    again = load_target(write(ca_dir / "..", text, "dumped.toml"))
    assert again == target


def test_dump_round_trip_odd_strings(tmp_path: Path) -> None:
    provider = ProviderTarget(
        domain="example.org",
        submission=None,
        submissions=Endpoint("smtps", "::1", 465),
        mx=None,
        imap=None,
        imaps=None,
        outbound_port=None,
        accounts=(Account('we"ird\\', 'p\x01a\ts"s\n\u00e9\u2603', "x@example.org"),),
    )
    target = Target(
        name='a "name"\twith\\ escapes',
        description="line one\nline two",
        sender=provider,
        receiver=provider,
        dns=DNSControl("::1", 53, False),
        ca_file=None,
        tls_verify=False,
        sink_addresses=("127.0.0.7",),
        delivery_timeout=0.25,
        embedded=True,
        quirks=(),
    )
    assert load_target(write(tmp_path, dump_target(target))) == target


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ('name = "x"\nnmae = 1\n[sender]\ndomain = "a.org"\n', "nmae", "unknown key"),
        ('name = "x"\n[sender]\ndomain = "a.org"\nsmtp = "smtp://127.0.0.1"\n', "sender.smtp", "unknown key"),
        ('[sender]\ndomain = "a.org"\n', "name", "missing required key"),
        ('name = "x"\n', "sender", "missing required key"),
        ('name = "x"\n[sender]\nmx = "smtp://127.0.0.1"\n', "sender.domain", "missing required key"),
        ('name = ""\n[sender]\ndomain = "a.org"\n', "name", "must not be empty"),
        ('name = 3\n[sender]\ndomain = "a.org"\n', "name", "expected a string, got 3"),
        (
            'name = "x"\n[sender]\ndomain = "a.org"\nmx = "smtp://mx.a.org"\n',
            "sender.mx",
            "host names are not resolved; give an IP address",
        ),
        (
            'name = "x"\n[sender]\ndomain = "a.org"\nsubmission = "smtps://127.0.0.1"\n',
            "sender.submission",
            "expected smtp://",
        ),
        (
            'name = "x"\n[sender]\ndomain = "a.org"\nsubmissions = "smtp://127.0.0.1"\n',
            "sender.submissions",
            "expected smtps://",
        ),
        (
            'name = "x"\n[sender]\ndomain = "a.org"\nimap = "imaps://127.0.0.1"\n',
            "sender.imap",
            "expected imap://",
        ),
        ('name = "x"\n[sender]\ndomain = "a.org"\noutbound_port = 0\n', "sender.outbound_port", "1-65535"),
        ('name = "x"\n[sender]\ndomain = "a.org"\noutbound_port = true\n', "sender.outbound_port", "expected a port number"),
        (
            'name = "x"\n[sender]\ndomain = "a.org"\nimap = "imap://127.0.0.1"\n',
            "sender.accounts",
            "at least one account",
        ),
        (
            'name = "x"\n[sender]\ndomain = "a.org"\n[[sender.accounts]]\nuser = "u"\npassword = "p"\naddress = "nobody"\n',
            "sender.accounts[0].address",
            "not an email address",
        ),
        (
            'name = "x"\n[sender]\ndomain = "a.org"\n[[sender.accounts]]\nuser = "u"\n',
            "sender.accounts[0].password",
            "missing required key",
        ),
        (
            'name = "x"\n[sender]\ndomain = "a.org"\n[[sender.accounts]]\nuser = "u"\npassword = "p"\npass = "q"\n',
            "sender.accounts[0].pass",
            "unknown key",
        ),
        ('name = "x"\nsender = "a.org"\n', "sender", "expected a table"),
        ('name = "x"\n[sender]\ndomain = "a@org"\n', "sender.domain", "not a domain name"),
        ('name = "x"\ndelivery_timeout = -1\n[sender]\ndomain = "a.org"\n', "delivery_timeout", "positive"),
        ('name = "x"\ndelivery_timeout = nan\n[sender]\ndomain = "a.org"\n', "delivery_timeout", "positive"),
        ('name = "x"\ntls_verify = "yes"\n[sender]\ndomain = "a.org"\n', "tls_verify", "expected true or false"),
        ('name = "x"\nsink_addresses = ["sink.local"]\n[sender]\ndomain = "a.org"\n', "sink_addresses", "give an IP address"),
        ('name = "x"\nsink_addresses = "127.0.0.5"\n[sender]\ndomain = "a.org"\n', "sink_addresses", "expected a list of strings"),
        ('name = "x"\nca_file = "missing.pem"\n[sender]\ndomain = "a.org"\n', "ca_file", "no such file"),
        ('name = "x"\n[dns]\nserver = "ns.example:53"\n[sender]\ndomain = "a.org"\n', "dns.server", "give an IP address"),
        ('name = "x"\n[dns]\nserver = "127.0.0.1:99999"\n[sender]\ndomain = "a.org"\n', "dns.server", "1-65535"),
        ('name = "x"\n[dns]\nupdate = true\n[sender]\ndomain = "a.org"\n', "dns.server", "missing required key"),
        ('name = "x"\n[dns]\nserver = "127.0.0.1"\nzone = "a"\n[sender]\ndomain = "a.org"\n', "dns.zone", "unknown key"),
        ('name = "x"\n[sender]\ndomain = "a.org"\naccounts = ["u:p"]\n', "sender.accounts", "expected an array of tables"),
    ],
)
def test_bad_target_one_line_error(tmp_path: Path, text: str, key: str, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(TargetError) as info:
        load_target(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {key}: "), message
    assert problem in message


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"name = \n", "invalid TOML"), (b'name = "\xff"\n', "not UTF-8")],
)
def test_unparseable_target(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "t.toml"
    path.write_bytes(content)
    with pytest.raises(TargetError) as info:
        load_target(path)
    assert str(info.value).startswith(f"{path}: {problem}")
    assert "\n" not in str(info.value)


def test_missing_target_file(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match=r"absent\.toml: cannot read"):
        load_target(tmp_path / "absent.toml")


def test_dns_default_port_and_ipv6(tmp_path: Path) -> None:
    target = load_target(
        write(tmp_path, 'name = "x"\n[dns]\nserver = "[::1]"\n[sender]\ndomain = "a.org"\n')
    )
    assert target.dns == DNSControl("::1", 53, False)
    assert target.dns.server == "[::1]:53"


# --- TLS ----------------------------------------------------------------------------------


def test_client_ssl_context(ca_dir: Path) -> None:
    target = load_target(write(ca_dir, EXAMPLE))
    ctx = target.client_ssl_context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.get_ca_certs()  # the trustme CA was loaded
    lax = Target(
        name="lax", description="", sender=target.sender, receiver=target.receiver,
        dns=None, ca_file=None, tls_verify=False,
    ).client_ssl_context()
    assert lax.verify_mode == ssl.CERT_NONE and not lax.check_hostname


def test_client_ssl_context_bad_ca(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    target = target_from_urls(
        submission=None, mx="smtp://127.0.0.2", imap=None, accounts=(), domain="a.org",
        ca_file=str(bad),
    )
    with pytest.raises(TargetError, match="ca_file: cannot load CA certificates"):
        target.client_ssl_context()


# --- target_from_urls ---------------------------------------------------------------------


def test_target_from_urls() -> None:
    target = target_from_urls(
        submission="smtps://127.0.0.2",
        mx="smtp://127.0.0.2:2525",
        imap="imap://127.0.0.2",
        accounts=("alice@example.org:secret", "bob:pw:with:colons", "carol:pw:carol@example.net"),
        domain=None,
        tls_verify=False,
    )
    assert target.name == "command line"
    assert target.sender is target.receiver
    provider = target.sender
    assert provider.domain == "example.org"
    assert provider.submission is None
    assert provider.submissions == Endpoint("smtps", "127.0.0.2", 465)
    assert provider.mx == Endpoint("smtp", "127.0.0.2", 2525)
    assert provider.imap == Endpoint("imap", "127.0.0.2", 143) and provider.imaps is None
    assert provider.accounts == (
        Account("alice@example.org", "secret", "alice@example.org"),
        Account("bob", "pw:with:colons", "bob@example.org"),
        Account("carol", "pw", "carol@example.net"),
    )
    assert not target.tls_verify


def test_target_from_urls_dumps_and_loads(tmp_path: Path) -> None:
    target = target_from_urls(
        submission="smtp://127.0.0.2:587", mx=None, imap="imaps://[::1]",
        accounts=("u:p",), domain="example.org", name="cli",
    )
    assert target.sender.submission == Endpoint("smtp", "127.0.0.2", 587)
    assert target.sender.imaps == Endpoint("imaps", "::1", 993)
    assert load_target(write(tmp_path, dump_target(target))) == target


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"submission": "smtp://mail.example.org"}, "command line: submission: host names are not resolved"),
        ({"imap": "smtp://127.0.0.2"}, "command line: imap: expected imap://"),
        ({"mx": "smtps://127.0.0.2"}, "command line: mx: expected smtp://"),
        ({"accounts": ("nopassword",)}, "command line: account 1: expected USER:PASSWORD"),
        ({"accounts": ("bob:pw",), "domain": None}, "command line: account 1: user 'bob' has no domain"),
        ({"accounts": (), "domain": None}, "command line: domain: give a domain or at least one account"),
        ({"accounts": (), "submission": "smtp://127.0.0.2"}, "command line: accounts: at least one account"),
        ({"ca_file": "/nonexistent/ca.pem"}, "command line: ca_file: no such file"),
    ],
)
def test_target_from_urls_errors(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {
        "submission": None, "mx": None, "imap": None, "accounts": ("a@b.org:p",), "domain": "b.org",
    }
    args.update(kwargs)
    with pytest.raises(TargetError) as info:
        target_from_urls(**args)  # type: ignore[arg-type]
    assert str(info.value).startswith(message)


def test_documented_example_loads(ca_dir: Path) -> None:
    doc = (Path(__file__).parents[2] / "docs" / "targets.md").read_text(encoding="utf-8")
    example = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    target = load_target(write(ca_dir, example))
    assert target.receiver.account().address == "bob@example.net"
    assert target.dns == DNSControl("127.0.0.1", 5300, True)
