"""SASL PLAIN (RFC 4616) and LOGIN encoding and decoding, for clients and servers, with strict base64."""

from __future__ import annotations

import base64
import binascii
import re

#: "Username:" and "Password:" base64-encoded: the challenges of the LOGIN mechanism
#: (draft-murchison-sasl-login).
LOGIN_USERNAME_CHALLENGE = "VXNlcm5hbWU6"
LOGIN_PASSWORD_CHALLENGE = "UGFzc3dvcmQ6"
login_challenge_username = LOGIN_USERNAME_CHALLENGE
login_challenge_password = LOGIN_PASSWORD_CHALLENGE

#: RFC 4954 §4: "If the client wishes to cancel the authentication exchange, it issues a line
#: with a single '*'."
CANCEL = "*"

#: RFC 4616 §2: "Servers MUST be capable of accepting authzid, authcid, and passwd productions
#: up to and including 255 octets."
PLAIN_FIELD_MINIMUM = 255

# RFC 4954 §4: "servers and clients MUST reject (and not ignore) any character not explicitly
# allowed by the BASE64 alphabet, and MUST reject any sequence of BASE64 characters that
# contains the pad character ('=') anywhere other than the end of the string".
_B64_RE = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    """Strict base64 (RFC 4648 §4): only the alphabet, padding only at the end, length a
    multiple of four. Raises ValueError."""
    if not _B64_RE.fullmatch(text):
        raise ValueError(f"not strict base64: {text[:64]!r}")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:  # pragma: no cover - the pattern already excludes these
        raise ValueError(f"not base64: {exc}") from exc


def encode_initial_response(data: bytes) -> str:
    """An AUTH initial response: base64, or "=" for an empty one (RFC 4954 §4: "If the client
    is transmitting an initial response of zero length, it MUST instead transmit the response
    as a single equals sign")."""
    return b64encode(data) if data else "="


def decode_initial_response(text: str) -> bytes:
    """Inverse of encode_initial_response ("=" is the empty response)."""
    return b"" if text == "=" else b64decode(text)


def plain_message(authcid: str, password: str, authzid: str = "") -> bytes:
    """``[authzid] NUL authcid NUL passwd`` in UTF-8 (RFC 4616 §2). Empty fields are allowed
    here so that tests can send them; NUL is refused because it would change the fields."""
    # RFC 4616 §2: "the NUL (U+0000) character MUST NOT appear in authzid, authcid, or passwd
    # productions."
    for name, value in (("authzid", authzid), ("authcid", authcid), ("password", password)):
        if "\0" in value:
            raise ValueError(f"NUL inside the PLAIN {name}")
    return f"{authzid}\0{authcid}\0{password}".encode()


def plain_initial_response(authcid: str, password: str, authzid: str = "") -> str:
    """The base64 PLAIN message, as sent after ``AUTH PLAIN`` or in reply to ``334``."""
    return b64encode(plain_message(authcid, password, authzid))


def parse_plain_message(message: bytes) -> tuple[str, str, str]:
    """(authzid, authcid, password) from a decoded PLAIN message; ValueError if it does not
    match ``message = [authzid] UTF8NUL authcid UTF8NUL passwd`` (RFC 4616 §2)."""
    try:
        text = message.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError("PLAIN message is not UTF-8") from exc
    parts = text.split("\0")
    if len(parts) != 3:
        raise ValueError(f"PLAIN message has {len(parts) - 1} NUL separators, not 2")
    authzid, authcid, password = parts
    # authcid = 1*SAFE; passwd = 1*SAFE
    if not authcid:
        raise ValueError("PLAIN authcid is empty")
    if not password:
        raise ValueError("PLAIN password is empty")
    return authzid, authcid, password


def parse_plain(b64: str) -> tuple[str, str, str]:
    """(authzid, authcid, password) from a base64 PLAIN response; ValueError if malformed."""
    return parse_plain_message(b64decode(b64))


def login_response(value: str) -> str:
    """A LOGIN mechanism response line: the UTF-8 user name or password in base64."""
    return b64encode(value.encode("utf-8"))


def parse_login_response(b64: str) -> str:
    """The user name or password from a LOGIN response line; ValueError if malformed."""
    try:
        return b64decode(b64).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError("LOGIN response is not UTF-8") from exc


def decode_challenge(text: str) -> bytes:
    """A server's 334 challenge text decoded; "" (the line ``334 ``) is the empty challenge
    (RFC 4954 §4)."""
    return b64decode(text) if text else b""
