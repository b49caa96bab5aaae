"""Modified UTF-7 mailbox names (RFC 3501 §5.1.3): encode, and strictly decode."""

from __future__ import annotations

import base64
import binascii


def _is_direct(ch: str) -> bool:
    # RFC 3501 §5.1.3: "printable US-ASCII characters, except for "&", represent themselves;
    # that is, characters with octet values 0x20-0x25 and 0x27-0x7e."
    return 0x20 <= ord(ch) <= 0x7E and ch != "&"


def _encode_run(run: str) -> str:
    raw = base64.b64encode(run.encode("utf-16-be")).decode("ascii")
    return "&" + raw.rstrip("=").replace("/", ",") + "-"


def encode(name: str) -> str:
    """Encode a Unicode mailbox name in modified UTF-7."""
    out: list[str] = []
    run: list[str] = []
    for ch in name:
        if _is_direct(ch):
            if run:
                out.append(_encode_run("".join(run)))
                run.clear()
            out.append(ch)
        elif ch == "&":
            if run:
                out.append(_encode_run("".join(run)))
                run.clear()
            out.append("&-")
        else:
            run.append(ch)
    if run:
        out.append(_encode_run("".join(run)))
    return "".join(out)


_B64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")


def _decode_run(encoded: str) -> str:
    if not encoded or any(c not in _B64_ALPHABET for c in encoded):
        raise ValueError(f"bad modified BASE64 {encoded!r}")
    if len(encoded) % 4 == 1:
        raise ValueError(f"truncated modified BASE64 {encoded!r}")
    padded = encoded.replace(",", "/") + "=" * (-len(encoded) % 4)
    try:
        raw = base64.b64decode(padded, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"bad modified BASE64 {encoded!r}") from exc
    if len(raw) % 2:
        raise ValueError(f"odd number of UTF-16 octets in {encoded!r}")
    try:
        return raw.decode("utf-16-be", errors="strict")
    except UnicodeDecodeError as exc:
        raise ValueError(f"bad UTF-16 in {encoded!r}") from exc


def decode(name: str) -> str:
    """Decode a modified UTF-7 name; raise ValueError unless *name* is its one canonical form.

    Rejected: characters outside 0x20-0x7e, an unterminated "&" shift, bad BASE64 or UTF-16,
    encoded printable ASCII, null or adjacent shifts, non-zero padding bits — all the cases
    where ``encode(decode(name)) != name``."""
    out: list[str] = []
    i = 0
    while i < len(name):
        ch = name[i]
        if ch == "&":
            end = name.find("-", i + 1)
            if end < 0:
                # RFC 3501 §5.1.3: names "MUST end in US-ASCII".
                raise ValueError(f"unterminated shift in {name!r}")
            if end == i + 1:
                out.append("&")
            else:
                out.append(_decode_run(name[i + 1 : end]))
            i = end + 1
        elif 0x20 <= ord(ch) <= 0x7E:
            out.append(ch)
            i += 1
        else:
            raise ValueError(f"character {ch!r} must be encoded in {name!r}")
    result = "".join(out)
    # RFC 3501 §5.1.3: "Modified BASE64 MUST NOT be used to represent any printing US-ASCII
    # character which can represent itself." and null shifts "are not permitted".
    if encode(result) != name:
        raise ValueError(f"non-canonical modified UTF-7 {name!r}")
    return result
