"""harness/protocol/imap/mime.py: header unfolding, address lists with groups, MIME parameters,
and the structure views, on tables written from the RFCs; and no exception on any input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.protocol.imap.commands import Section
from harness.protocol.imap.headers import (
    Address,
    parse_addresses,
    parse_fields,
    unfold,
)
from harness.protocol.imap.mime import (
    MAX_DEPTH,
    bodystructure,
    count_lines,
    envelope,
    header_fields,
    parse_content_type,
    parse_mime,
    section_bytes,
)


def test_unfolding_removes_only_the_line_break() -> None:
    # RFC 5322 §2.2.3: "Unfolding is accomplished by simply removing any CRLF that is
    # immediately followed by WSP."
    assert unfold(b"a\r\n b\r\n\tc") == b"a b\tc"
    assert unfold(b"a\n b") == b"a b"
    (field,) = parse_fields(b"Subject: Hello\r\n  world\r\n\r\n")
    assert (field.name, field.value, field.raw) == ("subject", b"Hello  world", b"Subject: Hello\r\n  world\r\n")


@pytest.mark.parametrize(("value", "expected"), [
    # RFC 5322 §3.4 groups; RFC 3501 §7.4.2: a group start has host NIL and the group name as
    # mailbox, a group end has mailbox and host NIL.
    (b"group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;",
     [Address(None, None, b"group", None), Address(None, None, b"g1", b"d1.org"),
      Address(None, None, b"g2", b"d2.org"), Address(None, None, None, None),
      Address(None, None, b"group2", None), Address(None, None, b"g3", b"d3.org"),
      Address(None, None, None, None)]),
    (b"group:;", [Address(None, None, b"group", None), Address(None, None, None, None)]),
    # Comments are CFWS (RFC 5322 §3.2.2): not part of the mailbox, not a name.
    (b"<user-from (comment)@ (comment) domain.org>", [Address(None, None, b"user-from", b"domain.org")]),
    (b"user@host (Full Name)", [Address(None, None, b"user", b"host")]),
    # A quoted display name is unquoted; a phrase with "." (obs-phrase) keeps it.
    (b'"Joe Q. Public" <john.q.public@example.com>',
     [Address(b"Joe Q. Public", None, b"john.q.public", b"example.com")]),
    (b"John Q. Public <jqp@x.test>", [Address(b"John Q. Public", None, b"jqp", b"x.test")]),
    # RFC 2047 encoded words stay as they are.
    (b"=?utf-8?q?J=C3=B6rg?= <j@x.test>", [Address(b"=?utf-8?q?J=C3=B6rg?=", None, b"j", b"x.test")]),
    # obs-route (RFC 5322 §4.4) is the at-domain-list.
    (b"<@a.test,@b.test:jqp@x.test>", [Address(None, b"@a.test,@b.test", b"jqp", b"x.test")]),
    (b'"a b"@c.test', [Address(None, None, b'"a b"', b"c.test")]),
    (b"a@b.test, c@d.test", [Address(None, None, b"a", b"b.test"), Address(None, None, b"c", b"d.test")]),
    # A mailbox without a host: an empty host, never NIL (which would be a group marker).
    (b"bob", [Address(None, None, b"bob", b"")]),
    (b"", []),
    (b",,", []),
])
def test_address_lists(value: bytes, expected: list[Address]) -> None:
    assert parse_addresses(value) == expected


def test_envelope_sender_and_reply_to_default_to_from() -> None:
    header = b"From: a@b.test\r\nSender:\r\nSubject: s\r\n\r\n"
    # RFC 9051 §7.5.2: absent or empty Sender / Reply-To take the From value.
    assert envelope(header) == (b'(NIL "s" ((NIL NIL "a" "b.test")) ((NIL NIL "a" "b.test")) '
                                b'((NIL NIL "a" "b.test")) NIL NIL NIL NIL NIL)')


@pytest.mark.parametrize(("value", "expected"), [
    (b"text/plain", ("text", "plain", [])),
    (b'Multipart/Mixed; boundary="foo bar"', ("multipart", "mixed", [("BOUNDARY", b"foo bar")])),
    (b"text/plain (a comment); charset=utf-8 (another)", ("text", "plain", [("CHARSET", b"utf-8")])),
    # RFC 2231 §3 continuations and §4 charset and percent-encoding.
    (b"application/x; name*0*=utf-8''caf%C3%A9; name*1=\".txt\"",
     ("application", "x", [("NAME*", "café.txt".encode())])),
    (b"application/x; title*=us-ascii'en'This%20is", ("application", "x", [("TITLE*", b"This is")])),
    (b'application/x; baz*0="a b"; baz*1=c', ("application", "x", [("BAZ", b"a bc")])),
    # A malformed type is the default (RFC 2045 §5.2).
    (b"nonsense", ("text", "plain", [])),
    (None, ("text", "plain", [])),
])
def test_content_type(value: bytes | None, expected: tuple[str, str, list[tuple[str, bytes]]]) -> None:
    assert parse_content_type(value) == expected


def test_a_folded_boundary_is_found() -> None:
    message = (b'Content-Type: multipart/mixed; boundary="foo\r\n bar"\r\n\r\n'
               b"--foo bar\r\n\r\none\r\n--foo bar\r\n\r\ntwo\r\n--foo bar--\r\n")
    root = parse_mime(message)
    assert [c.body for c in root.children] == [b"one", b"two"]
    assert section_bytes(message, Section(part=(2,))) == b"two"
    assert bodystructure(message, extensible=False) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3 1)'
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3 1) "MIXED")')


def test_header_fields_match_names_once_and_case_insensitively() -> None:
    header = b"Subject: a\r\nTo: x@y\r\nsubject: b\r\n\r\n"
    assert header_fields(header, ["Subject", "SUBJECT", "subject"]) == b"Subject: a\r\nsubject: b\r\n\r\n"
    assert header_fields(header, ["subject"], exclude=True) == b"To: x@y\r\n\r\n"
    # A message with no body and no blank line gets no blank line (RFC 9051 §6.4.5).
    assert header_fields(b"Subject: a\r\nTo: x@y\r\n", ["to"]) == b"To: x@y\r\n"


def test_line_counts() -> None:
    # RFC 3501 §7.4.2 body-fld-lines: "the size of the body in text lines".
    assert [count_lines(b""), count_lines(b"a"), count_lines(b"a\r\n"), count_lines(b"a\r\nb")] == [0, 1, 1, 2]


def test_deep_nesting_is_cut() -> None:
    depth = 1000
    message = b"".join(b"Content-Type: message/rfc822\r\n\r\n" for _ in range(depth)) + b"x\r\n"
    part, seen = parse_mime(message), 0
    while part.encapsulated is not None:
        part, seen = part.encapsulated, seen + 1
    assert seen == MAX_DEPTH
    assert bodystructure(message).startswith(b'("MESSAGE" "RFC822"')


def test_many_parts_and_a_long_header_line() -> None:
    parts = b"".join(b"--b\r\n\r\n%d\r\n" % i for i in range(10_000))
    message = b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + parts + b"--b--\r\n"
    assert len(parse_mime(message).children) == 10_000
    header = b"Subject: " + b"x" * 1_000_000 + b"\r\n\r\n"
    assert b"x" * 1_000_000 in envelope(header)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_any_octets_get_an_answer(data: bytes) -> None:
    envelope(data)
    bodystructure(data)
    for section in (Section(), Section(part=(1,)), Section(part=(1, 2), text="MIME"),
                    Section(text="HEADER.FIELDS", fields=("From", "to"))):
        section_bytes(data, section)


_WORDS = st.sampled_from([b"a", b"b@c", b"<", b">", b",", b";", b":", b'"q"', b"(c)", b"@", b" ", b".",
                          b"\\", b"(", b")", b'"', b"[", b"]", b"\r\n ", b"=?x?q?y?="])


@settings(max_examples=300, deadline=None)
@given(st.lists(_WORDS, max_size=30).map(b"".join))
def test_any_address_field_parses(value: bytes) -> None:
    for address in parse_addresses(value):
        # A host is None only in a group marker, whose name is the mailbox (or None at its end).
        assert address.host is not None or address.name is None
