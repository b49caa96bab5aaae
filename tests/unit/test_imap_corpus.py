"""The IMAP structure corpus agrees with itself: every hand-written size, line count, section
and decoded value is checked here against the message's own octets (by slicing and the
standard library only), and the comparison rules of suites/imap/expectations.py."""

from __future__ import annotations

import base64
import binascii
import re

import pytest

from suites.imap.corpus import HERE, Case, cases, names
from suites.imap.expectations import (
    SIZE,
    body_differences,
    matches,
    part_body,
    part_encoding,
    without_extension,
)

CASES = {c.name: c for c in cases()}
PARTIAL = re.compile(r"(.*)<(\d+)\.(\d+)>\Z")


def test_every_message_has_its_expectations() -> None:
    emls = {p.name.removesuffix(".eml") for p in HERE.glob("*.eml")}
    expected = {p.name.removesuffix(".expected.py") for p in HERE.glob("*.expected.py")}
    assert emls == expected
    assert len(names()) >= 15


@pytest.mark.parametrize("name", sorted(CASES))
def test_line_ends(name: str) -> None:
    data = CASES[name].data
    if name == "bare-lf":
        assert b"\r" not in data and b"\n" in data
    else:
        assert data.count(b"\n") == data.count(b"\r\n") and data.endswith(b"\r\n")


def _decode(encoding: str | None, data: bytes) -> bytes:
    if encoding == "BASE64":
        return base64.b64decode(data)
    if encoding == "QUOTED-PRINTABLE":
        return binascii.a2b_qp(data)
    return data


@pytest.mark.parametrize("name", sorted(CASES))
def test_expectations_agree_with_the_octets(name: str) -> None:
    case: Case = CASES[name]
    data = case.data
    size = case.expected.get("size")
    assert size is ... or size == len(data)
    sections = case.table("sections")
    for section, value in sections.items():
        options = value if isinstance(value, set) else {value}
        m = PARTIAL.match(section)
        if m and isinstance(sections.get(m.group(1)), bytes):
            full = sections[m.group(1)]
            assert isinstance(full, bytes)
            start, length = int(m.group(2)), int(m.group(3))
            assert full[start:start + length] in options, section
        for option in options:
            assert isinstance(option, bytes)
            lines = option.removesuffix(b"\r\n\r\n").split(b"\r\n") if "HEADER" in section \
                else [option]
            for line in lines:
                assert line in data, (section, line)
    structure = case.expected.get("bodystructure")
    for section, value in sections.items():
        m = re.fullmatch(r"BODY\[([0-9.]+)\]", section)
        if not m or not isinstance(structure, tuple):
            continue
        leaf = part_body(structure, m.group(1))
        assert leaf is not None, section
        if isinstance(leaf[0], str):
            options = value if isinstance(value, set) else {value}
            assert any(matches(len(o), leaf[6]) for o in options), (section, leaf[6])
            if str(leaf[0]).upper() == "TEXT":
                for option in options:
                    ends = option.count(b"\r\n")
                    counts = {ends} if not option or option.endswith(b"\r\n") else {ends, ends + 1}
                    assert all(matches(n, leaf[7]) for n in counts), (section, leaf[7])
    binary = case.table("binary")
    for part, octets in case.table("binary_size").items():
        assert binary.get(f"BINARY[{part}]") is None or len(binary[f"BINARY[{part}]"]) == octets
    for section, value in binary.items():
        m = re.fullmatch(r"BINARY\[([0-9.]+)\]", section)
        encoded = sections.get(f"BODY[{m.group(1)}]") if m else None
        if isinstance(encoded, bytes) and isinstance(structure, tuple):
            assert m is not None
            assert _decode(part_encoding(structure, m.group(1)), encoded) == value, section


def test_matches_alternatives_and_any() -> None:
    assert matches(("a", 1), ("a", {1, 2}))
    assert matches(("a", 5), ("a", ...))
    assert not matches(("a", 3), ("a", {1, 2}))
    assert not matches(("a",), ("a", 1))
    assert not matches(1, True) and not matches(b"x", "x")
    assert matches(None, {None, ("CHARSET", "US-ASCII")})


TEXT = ("TEXT", "PLAIN", {None, ("CHARSET", "US-ASCII")}, None, None, "7BIT", 10, {1, 0},
        None, None, None, None)
MULTI = (TEXT, ("APPLICATION", "OCTET-STREAM", None, None, None, "BASE64", 8,
                None, ("ATTACHMENT", ("FILENAME", "x")), None, None),
         "MIXED", ("BOUNDARY", "b1"), None, None, None)


def test_bodystructure_comparison() -> None:
    server = (("text", "plain", ("charset", "us-ascii"), None, None, "7bit", 10, 1),
              ("Application", "Octet-Stream", None, None, None, "base64", 8, None,
               ("attachment", ("Filename", "x"))),
              "mixed", ("boundary", "b1"))
    assert list(body_differences(server, MULTI)) == []
    wrong_case = (*server[:3], ("boundary", "B1"))
    assert [d.field for d in body_differences(wrong_case, MULTI)] == ["parameters"]
    sized = (("TEXT", "PLAIN", None, None, None, "7BIT", 11, 3), *server[1:])
    assert {(d.field, d.kind) for d in body_differences(sized, MULTI)} == {("size", SIZE),
                                                                          ("lines", SIZE)}
    flat = ("TEXT", "PLAIN", None, None, None, "7BIT", 10, 1)
    assert [d.field for d in body_differences(flat, MULTI)] == ["body"]
    extra = (*server[:2], "mixed", ("boundary", "b1"), None, None, None, "more")
    assert [d.field for d in body_differences(extra, MULTI)] == ["extension data"]
    assert without_extension(MULTI) == (TEXT[:8], MULTI[1][:7], "MIXED")
    assert part_encoding(server, "2") == "BASE64" and part_encoding(server, "3") is None
