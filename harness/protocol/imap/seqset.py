"""IMAP sequence sets (RFC 9051 §9 ``sequence-set``): parse, format, membership, iteration."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

#: RFC 9051 §9: ``nz-number = digit-nz *DIGIT`` ; "Non-zero unsigned 32-bit integer".
MAX_NUMBER = 4294967295

#: ``None`` stands for "*", the largest number in use.
SeqNumber = int | None


def _parse_number(text: str) -> SeqNumber:
    if text == "*":
        return None
    if not text or not text.isascii() or not text.isdigit() or text[0] == "0":
        raise ValueError(f"bad sequence number {text!r}")
    value = int(text)
    if value > MAX_NUMBER:
        raise ValueError(f"sequence number {text!r} exceeds 2^32-1")
    return value


def _format_number(value: SeqNumber) -> str:
    return "*" if value is None else str(value)


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """A non-empty sequence set; each range is (first, last) as written, ``None`` meaning "*".

    A range may be written in either order: RFC 9051 §9 "the range includes all numbers between
    the two numbers, inclusive of both"; "2:4" and "4:2" are the same set."""

    ranges: tuple[tuple[SeqNumber, SeqNumber], ...]
    #: RFC 5182 §3 ``seq-last-command = "$"``: the search result variable, whose members the
    #: server knows (``ranges`` is empty and names nothing by itself).
    saved: bool = False

    @classmethod
    def parse(cls, text: str) -> SequenceSet:
        """Parse ``1,3:5,7:*`` or ``$`` (RFC 5182); raise ValueError on bad syntax (empty
        elements, zero, spaces...)."""
        if text == "$":
            return cls((), saved=True)
        if not text:
            raise ValueError("empty sequence set")
        ranges: list[tuple[SeqNumber, SeqNumber]] = []
        for element in text.split(","):
            first, sep, last = element.partition(":")
            start = _parse_number(first)
            end = _parse_number(last) if sep else start
            ranges.append((start, end))
        return cls(tuple(ranges))

    @classmethod
    def from_ints(cls, ints: Iterable[int]) -> SequenceSet:
        """The compact form of a set of numbers: ``[1, 2, 3, 5]`` -> ``1:3,5``."""
        values = sorted(set(ints))
        if not values:
            raise ValueError("a sequence set cannot be empty")
        if values[0] < 1 or values[-1] > MAX_NUMBER:
            raise ValueError("sequence numbers are 1..2^32-1")
        ranges: list[tuple[SeqNumber, SeqNumber]] = []
        start = prev = values[0]
        for value in values[1:]:
            if value != prev + 1:
                ranges.append((start, prev))
                start = value
            prev = value
        ranges.append((start, prev))
        return cls(tuple(ranges))

    def format(self) -> str:
        if self.saved:
            return "$"
        parts = []
        for start, end in self.ranges:
            if start == end:
                parts.append(_format_number(start))
            else:
                parts.append(f"{_format_number(start)}:{_format_number(end)}")
        return ",".join(parts)

    def __str__(self) -> str:
        return self.format()

    def _bounds(self, largest: int) -> Iterator[tuple[int, int]]:
        for start, end in self.ranges:
            a = largest if start is None else start
            b = largest if end is None else end
            yield (a, b) if a <= b else (b, a)

    @property
    def uses_star(self) -> bool:
        return any(start is None or end is None for start, end in self.ranges)

    def contains(self, n: int, largest: int) -> bool:
        """Whether *n* is in the set, "*" standing for *largest* (the largest number in use)."""
        return any(a <= n <= b for a, b in self._bounds(largest))

    def iter(self, largest: int) -> Iterator[int]:
        """The members that are at most *largest*, ascending and without duplicates.

        Members above *largest* cannot name an existing message (a sequence number or a UID), so
        they are left out; this keeps ``1:4294967295`` cheap."""
        merged: list[tuple[int, int]] = []
        for a, b in sorted(self._bounds(largest)):
            a, b = max(a, 1), min(b, largest)
            if a > b:
                continue
            if merged and a <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        for a, b in merged:
            yield from range(a, b + 1)
