"""IMAP in depth — BODYSTRUCTURE, BODY[n] and BINARY[n] of multipart messages built from parts,
so that the answer is known by construction: types, subtypes, boundaries, encodings, each
part's octets and lines (RFC 9051 §7.5.2, §6.4.5.1; RFC 2046 §5.1.1)."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.suite import Evidence, check, not_applicable, run, token
from harness.targets import Target
from suites.imap.expectations import SIZE, body_differences
from suites.imap.imap_helpers import (
    append,
    ensure_binary,
    fetch_uid,
    only_uid,
    scratch,
    select,
    session,
)

pytestmark = pytest.mark.step(9)

#: Examples per run; --model-examples N asks for N // 5 (at least this many).
DEFAULT_EXAMPLES = 8


@dataclass(frozen=True)
class Leaf:
    """A leaf part: its media type, charset, Content-Transfer-Encoding and decoded content."""

    media: tuple[str, str]
    charset: str | None
    encoding: str
    content: bytes


@dataclass(frozen=True)
class Multi:
    """A multipart of *parts* under *boundary*."""

    subtype: str
    boundary: str
    parts: tuple[Leaf | Multi, ...]


#: Body text never holds "-", so no line of it can look like a boundary (RFC 2046 §5.1.1: the
#: boundary "MUST NOT appear inside any of the encapsulated parts").
_LINE = st.text(alphabet="abcXYZ019 .,:;!?=_\t", max_size=20).map(str.encode)
_TEXT = st.lists(_LINE, max_size=4).map(lambda lines: b"".join(x + b"\r\n" for x in lines))


def quoted_printable(content: bytes) -> bytes:
    """RFC 2045 §6.7, lines kept: rule (2) literal representation for "!" through "~" but
    "=", rule (1) "=XX" otherwise, rule (3) a space or TAB ending a line encoded."""
    lines = []
    for line in content.split(b"\r\n"):
        out = bytearray()
        for index, octet in enumerate(line):
            last = index == len(line) - 1
            if 33 <= octet <= 126 and octet != 61 or octet in (9, 32) and not last:
                out.append(octet)
            else:
                out += f"={octet:02X}".encode("ascii")
        lines.append(bytes(out))
    return b"\r\n".join(lines)


def encoded(leaf: Leaf) -> bytes:
    if leaf.encoding == "base64":
        return base64.encodebytes(leaf.content).replace(b"\n", b"\r\n")
    if leaf.encoding == "quoted-printable":
        return quoted_printable(leaf.content)
    return leaf.content


@st.composite
def leaves(draw: st.DrawFn) -> Leaf:
    media = draw(st.sampled_from([("text", "plain"), ("text", "html"), ("Text", "Plain"),
                                  ("application", "octet-stream"), ("image", "png")]))
    if media[0].lower() == "text":
        return Leaf(media, draw(st.sampled_from([None, "us-ascii", "utf-8"])),
                    draw(st.sampled_from(["7bit", "quoted-printable", "base64"])), draw(_TEXT))
    return Leaf(media, None, "base64", draw(st.binary(max_size=40)))


def multiparts(path: str = "", depth: int = 0) -> st.SearchStrategy[Multi]:
    @st.composite
    def build(draw: st.DrawFn) -> Multi:
        count = draw(st.integers(1, 3))
        parts: list[Leaf | Multi] = []
        for index in range(1, count + 1):
            child = f"{path}.{index}" if path else str(index)
            nested = depth < 1 and draw(st.booleans())
            parts.append(draw(multiparts(child, depth + 1)) if nested else draw(leaves()))
        # RFC 2046 §5.1.1: bchars include space, "=" and "." (not last for the space); no
        # boundary is the start of another: the part path is ended by "=".
        boundary = f"mh{path}= " + draw(st.text(alphabet="0123456789abcdef", min_size=4,
                                                  max_size=4))
        subtype = draw(st.sampled_from(["mixed", "alternative", "related", "parallel"]))
        return Multi(subtype, boundary, tuple(parts))

    return build()


def render(node: Leaf | Multi) -> tuple[bytes, bytes]:
    """The MIME header of *node* (without the blank line) and its body."""
    if isinstance(node, Leaf):
        charset = f"; charset={node.charset}" if node.charset else ""
        header = (f"Content-Type: {node.media[0]}/{node.media[1]}{charset}\r\n"
                  f"Content-Transfer-Encoding: {node.encoding}\r\n").encode("ascii")
        return header, encoded(node)
    header = f'Content-Type: multipart/{node.subtype}; boundary="{node.boundary}"\r\n'
    body = b""
    for part in node.parts:
        head, text = render(part)
        body += f"--{node.boundary}\r\n".encode("ascii") + head + b"\r\n" + text + b"\r\n"
    return header.encode("ascii"), body + f"--{node.boundary}--".encode("ascii")


def message(root: Multi, mark: str) -> bytes:
    header, body = render(root)
    return (b"From: sender@example.com\r\nTo: rcpt@example.net\r\n"
            + f"Subject: built [{mark}]\r\nMessage-ID: <{mark}@example.com>\r\n".encode("ascii")
            + b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\nMIME-Version: 1.0\r\n"
            + header + b"\r\n" + body + b"\r\n")


def expected_structure(node: Leaf | Multi) -> tuple[object, ...]:
    """The BODYSTRUCTURE RFC 9051 §7.5.2 gives *node*, with its extension data."""
    if isinstance(node, Multi):
        return (*(expected_structure(p) for p in node.parts), node.subtype.upper(),
                ("BOUNDARY", node.boundary), None, None, None)
    octets = encoded(node)
    kind = (node.media[0].upper(), node.media[1].upper())
    params: object = ("CHARSET", node.charset.upper()) if node.charset else (
        {None, ("CHARSET", "US-ASCII")} if kind[0] == "TEXT" else None)
    basic: tuple[object, ...] = (*kind, params, None, None, node.encoding.upper(), len(octets))
    if kind[0] == "TEXT":
        # Every built line ends in CRLF: the count is unambiguous.
        basic += (octets.count(b"\r\n"),)
    return (*basic, None, None, None, None)


def leaf_parts(node: Multi, path: str = "") -> dict[str, Leaf]:
    found: dict[str, Leaf] = {}
    for index, part in enumerate(node.parts, 1):
        number = f"{path}.{index}" if path else str(index)
        if isinstance(part, Leaf):
            found[number] = part
        else:
            found.update(leaf_parts(part, number))
    return found


def _examples(request: pytest.FixtureRequest) -> int:
    asked = request.config.getoption("model_examples", default=None)
    return max(DEFAULT_EXAMPLES, int(asked) // 5) if asked else DEFAULT_EXAMPLES


@pytest.mark.requirement("IMAP-FETCH-BODYSTRUCTURE", "IMAP-BODYSTRUCTURE-SIZES",
                         "IMAP-FETCH-SECTIONS", "IMAP-FETCH-BINARY")
def test_built_multipart_structure(target: Target, evidence: Evidence,
                                   request: pytest.FixtureRequest) -> None:
    @settings(max_examples=_examples(request), deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(root=multiparts())
    def example(root: Multi) -> None:
        evidence.transcripts.clear()  # the evidence of the last (shrunk) example only
        run(scenario(root))

    async def scenario(root: Multi) -> None:
        data = message(root, token())
        parts = leaf_parts(root)
        async with session(target, evidence) as client, scratch(client) as name:
            await append(client, name, data)
            await select(client, name)
            uid = await only_uid(client)
            items = await fetch_uid(client, uid, "(BODYSTRUCTURE)", "IMAP-FETCH-BODYSTRUCTURE")
            differences = list(body_differences(items.get("BODYSTRUCTURE"),
                                                expected_structure(root)))
            shape = [str(d) for d in differences if d.kind != SIZE]
            # RFC 9051 §7.5.2: BODYSTRUCTURE is "computed by the server by parsing the
            # [MIME-IMB] header fields".
            check("IMAP-FETCH-BODYSTRUCTURE", not shape, "; ".join(shape) + f" of {data!r:.600}")
            sizes = [str(d) for d in differences if d.kind == SIZE]
            check("IMAP-BODYSTRUCTURE-SIZES", not sizes, "; ".join(sizes) + f" of {data!r:.600}")
            wanted = " ".join(f"BODY.PEEK[{n}]" for n in parts)
            items = await fetch_uid(client, uid, f"({wanted})", "IMAP-FETCH-SECTIONS")
            for number, leaf in parts.items():
                # RFC 2046 §5.1.1: "The CRLF preceding the boundary delimiter line is
                # conceptually attached to the boundary".
                check("IMAP-FETCH-SECTIONS", items.get(f"BODY[{number}]") == encoded(leaf),
                      f"BODY[{number}] is {items.get(f'BODY[{number}]')!r:.200}, the part is "
                      f"{encoded(leaf)!r:.200}")
            if "BINARY" not in client.capabilities and "IMAP4REV2" not in client.capabilities:
                not_applicable("IMAP-FETCH-BINARY", "the server offers neither BINARY nor "
                                                    "IMAP4rev2")
                return
            await ensure_binary(client)
            wanted = " ".join(f"BINARY.PEEK[{n}]" for n in parts)
            items = await fetch_uid(client, uid, f"({wanted})", "IMAP-FETCH-BINARY")
            for number, leaf in parts.items():
                # RFC 9051 §7.5.2: "the content of the specified section after removing any
                # encoding specified in the corresponding Content-Transfer-Encoding".
                check("IMAP-FETCH-BINARY", items.get(f"BINARY[{number}]") == leaf.content,
                      f"BINARY[{number}] is {items.get(f'BINARY[{number}]')!r:.200}, the part "
                      f"decoded is {leaf.content!r:.200}")

    example()
