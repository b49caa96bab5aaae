"""Two From addresses, and a Sender field holding two addresses (RFC 5322 allows one)."""

EXPECTED = {
    "envelope": (
        "Mon, 7 Feb 1994 21:52:25 -0800",
        "two senders",
        ((None, None, "one", "example.org"), ("Two", None, "two", "example.org")),
        # RFC 5322 §3.6.2 has "sender = "Sender:" mailbox CRLF": a list is malformed.  RFC 9051
        # §7.5.2 makes the member "a parenthesized list of address structures" and says no
        # more; both the whole list and its first address are accepted.
        {
            ((None, None, "first", "example.org"), (None, None, "second", "example.org")),
            ((None, None, "first", "example.org"),),
        },
        # Reply-To is absent: "the same value as the from member".
        ((None, None, "one", "example.org"), ("Two", None, "two", "example.org")),
        ((None, None, "rcpt", "example.net"),),
        None,
        None,
        None,
        "<sender-two@example.org>",
    ),
    "bodystructure": (
        "TEXT", "PLAIN", {None, ("CHARSET", "US-ASCII")}, None, None, "7BIT", 60, 1,
        None, None, None, None,
    ),
    "size": 275,
    "sections": {},
}
