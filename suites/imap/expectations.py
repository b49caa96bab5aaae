"""Comparing what an IMAP server said with what the RFCs require: values with alternatives,
ENVELOPE fields, and BODYSTRUCTURE trees compared field by field (RFC 9051 §7.5.2)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

#: The ENVELOPE members, in order (RFC 9051 §7.5.2).
ENVELOPE_FIELDS = ("date", "subject", "from", "sender", "reply-to", "to", "cc", "bcc",
                   "in-reply-to", "message-id")

#: Kinds of BODYSTRUCTURE difference: the structure itself, or a size or line count.
STRUCTURE, SIZE = "structure", "size"


def matches(actual: object, expected: object) -> bool:
    """*actual* is *expected*, where a set in *expected* is "any one of these" and ``...`` is
    any value, at any depth."""
    if expected is Ellipsis:
        return True
    if isinstance(expected, set | frozenset):
        return any(matches(actual, option) for option in expected)
    if isinstance(expected, tuple):
        return (isinstance(actual, tuple) and len(actual) == len(expected)
                and all(matches(a, e) for a, e in zip(actual, expected, strict=True)))
    return type(actual) is type(expected) and actual == expected


def shown(expected: object) -> str:
    """*expected* for a failure's detail: alternatives as "one of ..."."""
    if isinstance(expected, set | frozenset):
        return "one of " + " | ".join(sorted(repr(o) for o in expected))
    return "any value" if expected is Ellipsis else repr(expected)


def has_group(addresses: object) -> bool:
    """An expected address list with an RFC 5322 group in it (a marker with NIL host)."""
    options = addresses if isinstance(addresses, set | frozenset) else [addresses]
    return any(isinstance(o, tuple) and any(isinstance(a, tuple) and len(a) == 4 and a[3] is None
                                            for a in o) for o in options)


# --- BODYSTRUCTURE -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Difference:
    """One field of a body structure that is not what is expected: *part* is its part number
    ("" for the message), *kind* STRUCTURE or SIZE."""

    part: str
    field: str
    actual: object
    expected: object
    kind: str = STRUCTURE

    def __str__(self) -> str:
        where = f"part {self.part}" if self.part else "the message"
        return f"{where}: {self.field} is {self.actual!r}, expected {shown(self.expected)}"


def _upper(value: object) -> object:
    # RFC 2045 §5.1: "The type, subtype, and parameter names are not case sensitive"; §6.1:
    # the Content-Transfer-Encoding values "are not case sensitive".
    return value.upper() if isinstance(value, str) else value


def _params(value: object) -> object:
    """A body parameter list with its names in capitals, and the CHARSET value (RFC 2046
    §4.1.2: "The values of the charset parameter are NOT case sensitive")."""
    if not (isinstance(value, tuple) and len(value) % 2 == 0
            and all(isinstance(v, str) for v in value)):
        return value
    pairs = sorted((name.upper(), val.upper() if name.upper() == "CHARSET" else val)
                   for name, val in zip(value[::2], value[1::2], strict=True))
    # RFC 2045 §5.1: "The ordering of parameters is not significant."
    return tuple(item for pair in pairs for item in pair)


def _expected_params(expected: object) -> object:
    """*expected* (a parameter list, or a set of alternatives) normalised as _params does."""
    if isinstance(expected, set | frozenset):
        return {_params(option) for option in expected}
    return _params(expected)


def _disposition(value: object) -> object:
    # RFC 2183 §2: the disposition type and parameter names are not case sensitive.
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        return (value[0].upper(), _params(value[1]))
    return value


def _is_multipart(body: object) -> bool:
    return isinstance(body, tuple) and bool(body) and isinstance(body[0], tuple)


def body_differences(actual: object, expected: tuple[object, ...],
                     part: str = "") -> Iterator[Difference]:
    """How *actual* (a parsed BODY or BODYSTRUCTURE) differs from *expected*."""
    if _is_multipart(expected):
        yield from _multipart(actual, expected, part)
    else:
        yield from _single(actual, expected, part)


def _child(part: str, index: int) -> str:
    return f"{part}.{index}" if part else str(index)


def _multipart(actual: object, expected: tuple[object, ...], part: str) -> Iterator[Difference]:
    count = len(_parts(expected))
    if not _is_multipart(actual):
        yield Difference(part, "body", actual, f"a multipart of {count} parts")
        return
    assert isinstance(actual, tuple)
    have = len(_parts(actual))
    if have != count:
        yield Difference(part, "number of parts", have, count)
        return
    for index in range(count):
        child = expected[index]
        assert isinstance(child, tuple)
        yield from body_differences(actual[index], child, _child(part, index + 1))
    if len(actual) <= count:
        yield Difference(part, "multipart subtype", None, expected[count])
        return
    if not matches(_upper(actual[count]), expected[count]):
        yield Difference(part, "multipart subtype", actual[count], expected[count])
    yield from _extension(actual[count + 1:], expected[count + 1:], part,
                          ("parameters", "disposition", "language", "location"))


def _single(actual: object, expected: tuple[object, ...], part: str) -> Iterator[Difference]:
    media = str(expected[0]).upper(), str(expected[1]).upper()
    if not isinstance(actual, tuple) or len(actual) < 7 or _is_multipart(actual):
        yield Difference(part, "body", actual, f"a {media[0]}/{media[1]} part")
        return
    kind = (_upper(actual[0]), _upper(actual[1]))
    if not (matches(kind[0], expected[0]) and matches(kind[1], expected[1])):
        yield Difference(part, "type/subtype", actual[:2], expected[:2])
        return
    fields: list[tuple[str, object, str]] = [
        ("parameters", _params(actual[2]), STRUCTURE), ("id", actual[3], STRUCTURE),
        ("description", actual[4], STRUCTURE), ("encoding", _upper(actual[5]), STRUCTURE),
        ("size", actual[6], SIZE)]
    basic = 7
    if media[0] == "TEXT":
        basic = 8
        fields.append(("lines", actual[7] if len(actual) > 7 else None, SIZE))
    elif media == ("MESSAGE", "RFC822"):
        basic = 10
        if len(actual) < basic:
            yield Difference(part, "fields", actual, "envelope, body and lines after the size")
            return
        fields.append(("envelope", actual[7], STRUCTURE))
    for index, (name, value, kind_of) in enumerate(fields):
        wanted = _expected_params(expected[2]) if name == "parameters" else expected[2 + index]
        if not matches(value, wanted):
            yield Difference(part, name, value, expected[2 + index], kind_of)
    if media == ("MESSAGE", "RFC822"):
        inner = expected[8]
        assert isinstance(inner, tuple)
        yield from body_differences(actual[8], inner, part if _is_multipart(inner)
                                    else _child(part, 1))
        if not matches(actual[9], expected[9]):
            yield Difference(part, "lines", actual[9], expected[9], SIZE)
    yield from _extension(actual[basic:], expected[basic:], part,
                          ("md5", "disposition", "language", "location"))


def _extension(actual: tuple[object, ...], expected: tuple[object, ...], part: str,
               names: tuple[str, ...]) -> Iterator[Difference]:
    # RFC 9051 §7.5.2: extension data "can be returned with a BODYSTRUCTURE fetch. Extension
    # data, if present, MUST be in the defined order"; a server may stop after any of it
    # (body-ext-1part, body-ext-mpart in §9), but "MUST NOT send such extension data until
    # it has been defined".
    if len(actual) > len(expected):
        yield Difference(part, "extension data", actual, expected)
        return
    for index, value in enumerate(actual):
        name = names[index] if index < len(names) else f"extension {index + 1}"
        normal = _params(value) if name == "parameters" else (
            _disposition(value) if name == "disposition" else value)
        wanted = _expected_params(expected[index]) if name == "parameters" else expected[index]
        if name == "disposition" and isinstance(wanted, tuple) and len(wanted) == 2:
            wanted = (wanted[0], _expected_params(wanted[1]))
        if not matches(normal, wanted):
            yield Difference(part, name, value, expected[index])


def _parts(body: tuple[object, ...]) -> tuple[object, ...]:
    """The nested bodies of a multipart, before its subtype."""
    count = next((i for i, e in enumerate(body) if not isinstance(e, tuple)), len(body))
    return body[:count]


def without_extension(expected: tuple[object, ...]) -> tuple[object, ...]:
    """*expected* as FETCH BODY reports it: RFC 9051 §7.5.2 "Extension data is never returned
    with the BODY fetch"."""
    if _is_multipart(expected):
        parts = _parts(expected)
        return (*(without_extension(p) for p in parts if isinstance(p, tuple)),
                expected[len(parts)])
    media = str(expected[0]).upper(), str(expected[1]).upper()
    if media == ("MESSAGE", "RFC822"):
        inner = expected[8]
        assert isinstance(inner, tuple)
        return (*expected[:8], without_extension(inner), expected[9])
    return expected[:8] if media[0] == "TEXT" else expected[:7]


def part_body(structure: object, part: str) -> tuple[object, ...] | None:
    """The body structure of *part* ("2", "1.3") in *structure* (RFC 9051 §6.4.5.1 numbering:
    the parts of a MESSAGE/RFC822 part are those of its encapsulated message); None when
    there is no such part."""
    node = structure
    for number in part.split("."):
        if (isinstance(node, tuple) and len(node) > 8 and not _is_multipart(node)
                and (_upper(node[0]), _upper(node[1])) == ("MESSAGE", "RFC822")):
            node = node[8]
        if _is_multipart(node):
            assert isinstance(node, tuple)
            parts = _parts(node)
            if not 1 <= int(number) <= len(parts):
                return None
            node = parts[int(number) - 1]
        elif number != "1":
            return None
    return node if isinstance(node, tuple) else None


def part_encoding(structure: object, part: str) -> str | None:
    """The encoding a BODYSTRUCTURE reports for *part*, in capitals."""
    node = part_body(structure, part)
    if node is not None and len(node) > 5 and isinstance(node[5], str):
        return node[5].upper()
    return None
