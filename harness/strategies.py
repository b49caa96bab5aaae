"""Hypothesis strategies for mail: header text, body lines (dots, 8-bit, long), MIME messages."""

from __future__ import annotations

from hypothesis import strategies as st

#: RFC 5322 §2.1.1: "Each line of characters MUST be no more than 998 characters".
MAX_LINE = 998

_ascii_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=0, max_size=60
)
_unicode_text = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Cc", "Zl", "Zp"), min_codepoint=0x20, max_codepoint=0x2FFF
    ),
    min_size=1, max_size=40,
)


@st.composite
def body_lines(draw: st.DrawFn, *, eight_bit: bool = True) -> bytes:
    """One body line without its CRLF: plain, dotted, 8-bit UTF-8, empty, or up to 998 octets."""
    kind = draw(st.sampled_from(["ascii", "dot", "dots", "empty", "long", "utf8", "spaces"]))
    if kind == "utf8" and not eight_bit:
        kind = "ascii"
    if kind == "ascii":
        line = draw(_ascii_text).encode("ascii")
    elif kind == "dot":
        line = b"." + draw(_ascii_text).encode("ascii")
    elif kind == "dots":
        line = b"." * draw(st.integers(1, 3))
    elif kind == "empty":
        line = b""
    elif kind == "long":
        line = (draw(st.sampled_from(["x", "=", ".", "ab "])) * MAX_LINE).encode("ascii")
        line = line[: draw(st.integers(500, MAX_LINE))]
    elif kind == "spaces":
        line = b" " * draw(st.integers(1, 5)) + draw(_ascii_text).encode("ascii") + b" \t"
    else:
        line = draw(_unicode_text).encode("utf-8")[:MAX_LINE]
    return line


@st.composite
def bodies(draw: st.DrawFn, *, eight_bit: bool = True) -> bytes:
    lines = draw(st.lists(body_lines(eight_bit=eight_bit), min_size=0, max_size=30))
    return b"".join(line + b"\r\n" for line in lines)


@st.composite
def subjects(draw: st.DrawFn) -> str:
    return draw(_ascii_text).strip() or "(no subject)"


@st.composite
def messages(draw: st.DrawFn, *, sender: str, recipient: str, mark: str,
             eight_bit: bool = True) -> bytes:
    """A complete RFC 5322 message with CRLF line ends, From/To/Date/Message-ID present (so an
    MSA has nothing to add), carrying *mark*; sometimes multipart/mixed MIME."""
    headers = [
        f"From: {sender}",
        f"To: {recipient}",
        f"Subject: {draw(subjects())} [{mark}]",
        "Date: " + draw(st.sampled_from([
            "Sat, 28 Nov 2026 15:44:33 +0000", "Mon, 1 Jan 2024 00:00:00 -0800",
        ])),
        f"Message-ID: <{mark}@client.mailharness.invalid>",
        f"X-Mailharness-Token: {mark}",
    ]
    extra = draw(st.lists(st.tuples(
        st.sampled_from(["X-Test", "Comments", "Keywords", "X-Folded"]), _ascii_text
    ), max_size=3))
    for name, value in extra:
        if name == "X-Folded":
            headers.append(f"{name}: {value}\r\n\t{value[::-1]}")
        else:
            headers.append(f"{name}: {value}")
    if draw(st.booleans()):
        boundary = "mh-boundary-" + mark
        headers += ["MIME-Version: 1.0", f'Content-Type: multipart/mixed; boundary="{boundary}"']
        parts = draw(st.lists(bodies(eight_bit=eight_bit), min_size=1, max_size=3))
        charset = "utf-8" if eight_bit else "us-ascii"
        body = b"This is a MIME message.\r\n"
        for part in parts:
            body += (f"--{boundary}\r\nContent-Type: text/plain; charset={charset}\r\n"
                     f"Content-Transfer-Encoding: {'8bit' if eight_bit else '7bit'}\r\n\r\n").encode()
            body += part
        body += f"--{boundary}--\r\n".encode()
    else:
        body = draw(bodies(eight_bit=eight_bit))
    head = "".join(h + "\r\n" for h in headers).encode("ascii")
    return head + b"\r\n" + body + mark.encode("ascii") + b"\r\n"
