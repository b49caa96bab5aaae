"""RFC 2231 parameters: continuations, a charset, a language, in Content-Type and
Content-Disposition."""

# Part 1: name*0*=utf-8''caf%C3%A9; name*1*=%20menu; name*2=".txt" is, by RFC 2231 §3 and
# §4.1, the one parameter "name" whose value is "café menu.txt" in UTF-8.
#
# What the server reports: RFC 9051 §7.5.2 says of the body parameter list "Servers SHOULD
# decode parameter-value continuations and parameter-value character sets as described in
# [RFC2231] ... if the message contains parameters "foo*0*" and "foo*1*", the server should
# decode them per [RFC2231], convert to UTF-8, concatenate, and return the resulting value as
# a parameter "foo*"."  RFC 2231 §6, older and narrower: "IMAP4 [RFC-2060] servers SHOULD
# decode parameter value continuations when generating the BODY and BODYSTRUCTURE fetch
# attributes" (continuations only: the one parameter "name*", still in its charset and
# %-encoding).  All SHOULDs: the parameters as they are in the header (RFC 3501: "as defined
# in [MIME-IMB]"), the continuations joined (RFC 2231 §6) and the value decoded (RFC 9051)
# are accepted, and nothing else: no form names a decoded value "NAME", a parameter the
# message does not have.  Parameter names compare without case (RFC 2045 §5.1), values
# exactly.

EXPECTED = {
    "envelope": (
        "Mon, 7 Feb 1994 21:52:25 -0800",
        "rfc2231",
        ((None, None, "foobar", "example.org"),),
        ((None, None, "foobar", "example.org"),),
        ((None, None, "foobar", "example.org"),),
        ((None, None, "rcpt", "example.net"),),
        None,
        None,
        None,
        "<rfc2231@example.org>",
    ),
    "bodystructure": (
        ("APPLICATION", "OCTET-STREAM",
         {("NAME*0*", "utf-8''caf%C3%A9", "NAME*1*", "%20menu", "NAME*2", ".txt"),
          ("NAME*", "utf-8''caf%C3%A9%20menu.txt"),
          ("NAME*", "café menu.txt")},
         None, None, "7BIT", 4,
         # Extension data: MD5, then disposition: "a disposition type string, followed by a
         # parenthesized list of disposition attribute/value pairs"; RFC 2183 §2: the type
         # is not case sensitive.  "Servers SHOULD decode parameter-value continuations".
         None,
         ("ATTACHMENT", {("FILENAME*", "utf-8''caf%C3%A9.txt"), ("FILENAME*", "café.txt")}),
         None, None),
        # title*=us-ascii'en'This%20is%20%2A%2A%2Afun%2A%2A%2A (RFC 2231 §5's own example,
        # shortened): decoded "This is ***fun***".  Text without a charset parameter: a
        # server may add the default CHARSET (RFC 2046 §4.1.2).
        ("TEXT", "PLAIN",
         {("TITLE*", "us-ascii'en'This%20is%20%2A%2A%2Afun%2A%2A%2A"),
          ("TITLE*", "This is ***fun***"),
          ("CHARSET", "US-ASCII", "TITLE*", "us-ascii'en'This%20is%20%2A%2A%2Afun%2A%2A%2A"),
          ("CHARSET", "US-ASCII", "TITLE*", "This is ***fun***")},
         None, None, "7BIT", 3, {1, 0},
         None, None, None, None),
        "MIXED",
        ("BOUNDARY", "b1"), None, None, None,
    ),
    "size": 521,
    "sections": {
        "BODY[1]": b"menu",
        "BODY[2]": b"fun",
        "BODY[1.MIME]":
            b"Content-Type: application/octet-stream;\r\n name*0*=utf-8''caf%C3%A9;\r\n"
            b" name*1*=%20menu;\r\n name*2=\".txt\"\r\n"
            b"Content-Disposition: attachment; filename*=utf-8''caf%C3%A9.txt\r\n"
            b"Content-Transfer-Encoding: 7bit\r\n\r\n",
    },
}
