"""Sequence sets (RFC 9051 §9) and modified UTF-7 mailbox names (RFC 3501 §5.1.3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.protocol.imap import mutf7
from harness.protocol.imap.seqset import MAX_NUMBER, SequenceSet

# -- sequence sets ------------------------------------------------------------------------------

SEQSET_VALID = [
    # text, largest, members
    ("1", 10, [1]),
    ("1:3", 10, [1, 2, 3]),
    ("3:1", 10, [1, 2, 3]),
    ("2,4:5,9", 10, [2, 4, 5, 9]),
    ("*", 10, [10]),
    ("8:*", 10, [8, 9, 10]),
    ("*:8", 10, [8, 9, 10]),
    ("12:*", 10, [10]),  # RFC 9051 §9: "559:*" always includes the last message
    ("1:3,2:4", 10, [1, 2, 3, 4]),
    ("1:4294967295", 3, [1, 2, 3]),
    ("5,1", 10, [1, 5]),
]
SEQSET_INVALID = ["", "0", "1:0", "01", "a", "1,", ",1", "1::2", "1:2:3", " 1", "1 ", "-1",
                  "4294967296", "1,,2", "*:", ":*", "١"]


@pytest.mark.parametrize(("text", "largest", "members"), SEQSET_VALID)
def test_seqset_parse(text: str, largest: int, members: list[int]) -> None:
    s = SequenceSet.parse(text)
    assert list(s.iter(largest)) == members
    for n in range(1, largest + 1):
        assert s.contains(n, largest) == (n in members)
    assert s.format() == text
    assert SequenceSet.parse(s.format()) == s


@pytest.mark.parametrize("text", SEQSET_INVALID)
def test_seqset_invalid(text: str) -> None:
    with pytest.raises(ValueError):
        SequenceSet.parse(text)


def test_seqset_from_ints() -> None:
    assert SequenceSet.from_ints([5, 1, 2, 3, 3, 9, 10]).format() == "1:3,5,9:10"
    assert SequenceSet.from_ints([7]).format() == "7"
    with pytest.raises(ValueError):
        SequenceSet.from_ints([])
    with pytest.raises(ValueError):
        SequenceSet.from_ints([0])


def test_seqset_star_on_empty_mailbox() -> None:
    assert list(SequenceSet.parse("1:*").iter(0)) == []


@given(st.sets(st.integers(min_value=1, max_value=MAX_NUMBER), min_size=1, max_size=50))
def test_seqset_from_ints_round_trip(values: set[int]) -> None:
    s = SequenceSet.from_ints(values)
    parsed = SequenceSet.parse(s.format())
    assert parsed == s
    assert all(parsed.contains(v, MAX_NUMBER) for v in values)
    small = {v for v in values if v <= 500}
    assert list(parsed.iter(500)) == sorted(small)


@given(st.lists(st.tuples(st.one_of(st.none(), st.integers(1, 200)),
                          st.one_of(st.none(), st.integers(1, 200))), min_size=1, max_size=8),
       st.integers(0, 250))
def test_seqset_iter_matches_contains(ranges: list[tuple[int | None, int | None]],
                                      largest: int) -> None:
    s = SequenceSet(tuple(ranges))
    assert SequenceSet.parse(s.format()) == s
    members = list(s.iter(largest))
    assert members == sorted(set(members))
    assert members == [n for n in range(1, largest + 1) if s.contains(n, largest)]


# -- modified UTF-7 -----------------------------------------------------------------------------

MUTF7 = [
    ("INBOX", "INBOX"),
    ("&", "&-"),
    ("a&b", "a&-b"),
    ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
    ("☺!", "&Jjo-!"),
    ("😀", "&2D3eAA-"),
    ("Entwürfe", "Entw&APw-rfe"),
    ("\t", "&AAk-"),
    ("", ""),
]
MUTF7_INVALID = [
    "&",  # unterminated
    "&Jjo",  # must end in US-ASCII
    "&AGE-",  # printable ASCII encoded
    "&Jjo-&Jjo-",  # adjacent shifts: not the canonical form
    "&Jj-",  # bad length
    "&Jjp-",  # non-zero padding bits
    "&2D0-",  # lone high surrogate
    "a\tb",  # control character must be encoded
    "&Jj/-",  # "/" is not in modified BASE64
    "&Jjo=-",  # padding
    "é",  # non-ASCII must be encoded
]


@pytest.mark.parametrize(("text", "wire"), MUTF7)
def test_mutf7(text: str, wire: str) -> None:
    assert mutf7.encode(text) == wire
    assert mutf7.decode(wire) == text


@pytest.mark.parametrize("wire", MUTF7_INVALID)
def test_mutf7_invalid(wire: str) -> None:
    with pytest.raises(ValueError):
        mutf7.decode(wire)


@given(st.text(alphabet=st.characters(codec="utf-8")))
def test_mutf7_round_trip(text: str) -> None:
    wire = mutf7.encode(text)
    assert wire.isascii()
    assert all(0x20 <= ord(c) <= 0x7E for c in wire)
    assert mutf7.decode(wire) == text
