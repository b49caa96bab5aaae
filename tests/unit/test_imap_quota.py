"""QUOTA (RFC 9208): the command grammar, the configured quotas and the reference server's
GETQUOTAROOT, GETQUOTA, SETQUOTA, DELETED-STORAGE and OVERQUOTA."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.protocol.imap.commands import (
    Command,
    InvalidCommand,
    MailboxArg,
    QuotaRoot,
    SetQuota,
    Status,
    format_command,
    parse_command,
)
from reference_agents.config import DEFAULT_QUOTA, ProviderConfig, Quota
from reference_agents.topology import DEFAULT_ACCOUNTS, ConfigError, settings_from_dict
from tests.unit.test_imapd import (  # noqa: F401 (base_config is a fixture)
    MESSAGE,
    RawClient,
    _raw_login,
    base_config,
    serving,
)

VALID: list[tuple[bytes, Command]] = [
    (b'a GETQUOTA ""', Command("a", "GETQUOTA", QuotaRoot(""))),
    (b"a GETQUOTA #user/alice", Command("a", "GETQUOTA", QuotaRoot("#user/alice"))),
    (b"a getquotaroot inbox", Command("a", "GETQUOTAROOT", MailboxArg("INBOX", "inbox"))),
    (b'a SETQUOTA "" (storage 512 MESSAGE 9223372036854775807)',
     Command("a", "SETQUOTA", SetQuota("", (("STORAGE", 512), ("MESSAGE", 2**63 - 1))))),
    (b"a SETQUOTA x ()", Command("a", "SETQUOTA", SetQuota("x", ()))),
    (b"a STATUS INBOX (DELETED DELETED-STORAGE)",
     Command("a", "STATUS", Status("INBOX", ("DELETED", "DELETED-STORAGE")))),
]

INVALID = [
    b"a GETQUOTA",
    b"a GETQUOTA a b",
    b"a GETQUOTAROOT",
    b"a SETQUOTA x",
    b"a SETQUOTA x (STORAGE)",
    b"a SETQUOTA x (STORAGE -1)",
    b"a SETQUOTA x (STORAGE 9223372036854775808)",
    b"a SETQUOTA x (STORAGE 1 MESSAGE)",
    b"a SETQUOTA x STORAGE 1",
]


@pytest.mark.parametrize(("line", "expected"), VALID, ids=[v[0].decode() for v in VALID])
def test_quota_commands_parse_and_round_trip(line: bytes, expected: Command) -> None:
    assert parse_command(line) == expected
    assert parse_command(b"".join(format_command(expected))) == expected


@pytest.mark.parametrize("line", INVALID, ids=[v.decode() for v in INVALID])
def test_bad_quota_commands_are_invalid(line: bytes) -> None:
    result = parse_command(line)
    assert isinstance(result, InvalidCommand)
    assert result.tag == "a"


def test_quota_settings() -> None:
    base = Path("/tmp")
    default = settings_from_dict({}, source="t", base=base)
    assert default.quota == DEFAULT_QUOTA
    assert [a.quota for a in default.accounts if a.quota is not None] == [Quota(1024, 50)]
    raw = {"quota_storage": 10, "accounts": [
        {"user": "a@example.org", "password": "p"},
        {"user": "b@example.net", "password": "p", "quota_messages": 0}]}
    chosen = settings_from_dict(raw, source="t", base=base)
    assert chosen.quota == Quota(10, DEFAULT_QUOTA.messages)
    assert [a.quota for a in chosen.accounts] == [None, Quota(10, 0)]
    for bad in ({"quota_storage": -1}, {"quota_messages": "5"}, {"quota_storage": True},
                {"accounts": [{"user": "a@example.org", "password": "p", "quota_storage": 1.5},
                              {"user": "b@example.net", "password": "p"}]}):
        with pytest.raises(ConfigError, match="quota_"):
            settings_from_dict(bad, source="t", base=base)


def test_quota_of_a_user(base_config: tuple[ProviderConfig, object]) -> None:  # noqa: F811
    config = base_config[0]
    assert config.quota_of("alice") == DEFAULT_QUOTA
    assert DEFAULT_ACCOUNTS[3].quota is not None


def _ask(c: RawClient, tag: bytes, command: bytes) -> list[bytes]:
    c.send(tag + b" " + command + b"\r\n")
    return c.until_tagged(tag)


def test_quota_commands_and_overquota(
        base_config: tuple[ProviderConfig, object]) -> None:  # noqa: F811
    small = (("alice", Quota(storage_kib=None, messages=3)),)
    with serving(base_config, user_quotas=small) as srv:  # type: ignore[arg-type]
        c = _raw_login(srv)
        assert _ask(c, b"d", b"CREATE box")[-1].startswith(b"d OK [MAILBOXID (F")
        # INBOX holds the one message serving() put there.
        assert _ask(c, b"e", b"GETQUOTAROOT nosuchbox") == [
            b'* QUOTAROOT nosuchbox ""', b'* QUOTA "" (MESSAGE 1 3)', b"e OK GETQUOTAROOT completed"]
        assert _ask(c, b"f", b'GETQUOTA ""')[0] == b'* QUOTA "" (MESSAGE 1 3)'
        assert _ask(c, b"g", b"GETQUOTA other")[-1].startswith(b"g NO [NONEXISTENT]")
        assert _ask(c, b"h", b'SETQUOTA "" (MESSAGE 10)')[-1].startswith(b"h NO [NOPERM]")
        for tag in (b"i", b"j"):
            c.send(tag + b" APPEND box {%d+}\r\n" % len(MESSAGE) + MESSAGE + b"\r\n")
            assert c.until_tagged(tag)[-1].startswith(tag + b" OK [APPENDUID")
        c.send(b"k APPEND box {%d+}\r\n" % len(MESSAGE) + MESSAGE + b"\r\n")
        assert c.until_tagged(b"k")[-1].startswith(b"k NO [OVERQUOTA]")
        assert _ask(c, b"l", b"SELECT box")[-1].startswith(b"l OK")
        assert _ask(c, b"m", b"COPY 1 box")[-1].startswith(b"m NO [OVERQUOTA]")
        assert _ask(c, b"n", b"STATUS box (MESSAGES DELETED-STORAGE)")[0] == (
            b"* STATUS box (MESSAGES 2 DELETED-STORAGE 0)")
        _ask(c, b"o", b"STORE 1 +FLAGS (\\Deleted)")
        assert _ask(c, b"p", b"STATUS box (DELETED-STORAGE)")[0] == (
            b"* STATUS box (DELETED-STORAGE %d)" % len(MESSAGE))
        assert b"QUOTA=RES-MESSAGE" in _ask(c, b"q", b"CAPABILITY")[0]
        c.close()
