"""Tests of the SASL PLAIN and LOGIN helpers and strict base64."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.protocol import sasl


def test_plain_vectors() -> None:
    # RFC 4616 §4 examples: "\0tim\0tanstaaftanstaaf" and "Ursel\0Kurt\0xipj3plmq"
    assert sasl.plain_initial_response("tim", "tanstaaftanstaaf") == "AHRpbQB0YW5zdGFhZnRhbnN0YWFm"
    assert sasl.plain_initial_response("Kurt", "xipj3plmq", "Ursel") == base64.b64encode(
        b"Ursel\0Kurt\0xipj3plmq"
    ).decode()
    assert sasl.parse_plain("AHRpbQB0YW5zdGFhZnRhbnN0YWFm") == ("", "tim", "tanstaaftanstaaf")
    assert sasl.parse_plain(base64.b64encode(b"Ursel\0Kurt\0xipj3plmq").decode()) == (
        "Ursel",
        "Kurt",
        "xipj3plmq",
    )


@pytest.mark.parametrize(
    "message",
    [
        b"tim\0password",  # one NUL
        b"\0tim\0pass\0extra",  # three NULs
        b"\0\0password",  # empty authcid
        b"\0tim\0",  # empty password
        b"\0tim\0\xff\xfe",  # not UTF-8
        b"\0tim\0\xed\xa0\x80",  # surrogate: not UTF-8 per RFC 3629
        b"",
    ],
)
def test_parse_plain_malformed(message: bytes) -> None:
    with pytest.raises(ValueError):
        sasl.parse_plain(base64.b64encode(message).decode())


def test_plain_refuses_nul_in_fields() -> None:
    with pytest.raises(ValueError):
        sasl.plain_initial_response("a\0b", "pw")
    with pytest.raises(ValueError):
        sasl.plain_initial_response("a", "p\0w")
    with pytest.raises(ValueError):
        sasl.plain_initial_response("a", "pw", "z\0")


@given(
    authzid=st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\0")),
    authcid=st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\0"), min_size=1),
    password=st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\0"), min_size=1),
)
def test_plain_round_trip(authzid: str, authcid: str, password: str) -> None:
    b64 = sasl.plain_initial_response(authcid, password, authzid)
    assert sasl.parse_plain(b64) == (authzid, authcid, password)


def test_login_helpers() -> None:
    assert sasl.login_challenge_username == sasl.LOGIN_USERNAME_CHALLENGE == "VXNlcm5hbWU6"
    assert sasl.login_challenge_password == sasl.LOGIN_PASSWORD_CHALLENGE == "UGFzc3dvcmQ6"
    assert sasl.decode_challenge(sasl.LOGIN_USERNAME_CHALLENGE) == b"Username:"
    assert sasl.decode_challenge(sasl.LOGIN_PASSWORD_CHALLENGE) == b"Password:"
    assert sasl.decode_challenge("") == b""
    assert sasl.login_response("alice") == "YWxpY2U="
    assert sasl.parse_login_response("YWxpY2U=") == "alice"
    assert sasl.parse_login_response(sasl.login_response("pässwörd")) == "pässwörd"
    with pytest.raises(ValueError):
        sasl.parse_login_response(base64.b64encode(b"\xff").decode())


@pytest.mark.parametrize(
    "text",
    [
        "=AAA",  # RFC 4954 §4 examples of pad characters out of place
        "AAA=BBB",
        "YWxpY2U",  # length not a multiple of four
        "YWxp Y2U=",  # blank
        "YWxpY2U=\n",
        "YWxpY2U*",
        "YW==xpY2U=",
        "A===",
        "Y",
        "é",
    ],
)
def test_strict_base64_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        sasl.b64decode(text)


@given(st.binary(max_size=200))
def test_base64_round_trip(data: bytes) -> None:
    assert sasl.b64decode(sasl.b64encode(data)) == data
    assert sasl.decode_initial_response(sasl.encode_initial_response(data)) == data


def test_initial_response_empty_is_equals_sign() -> None:
    assert sasl.encode_initial_response(b"") == "="
    assert sasl.decode_initial_response("=") == b""
