"""Comments (RFC 5322 §3.2.2 CFWS) inside and around addresses: none reaches the ENVELOPE."""

EXPECTED = {
    "envelope": (
        # The date is a string taken as it is: RFC 9051's own sample (§8) shows
        # "Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" with its comment.
        "Mon, 7 Feb 1994 21:52:25 -0800 (PST)",
        "comments",
        # From: <user-from (comment)@ (comment) domain.org>.  RFC 5322 §3.4.1: local-part =
        # dot-atom, dot-atom = [CFWS] dot-atom-text [CFWS] (§3.2.3); domain likewise: the
        # comments are CFWS around the tokens, not part of them.  §3.4: name-addr =
        # [display-name] angle-addr, and there is no display-name; "the meaning of the
        # information in a comment is unspecified", so a comment is no display name: NIL.
        ((None, None, "user-from", "domain.org"),),
        ((None, None, "user-from", "domain.org"),),
        # Reply-To: (lead) "Ann" (mid) <ann@example.org> (trail).  display-name = phrase; the
        # quoted-string's DQUOTEs are not part of its value (RFC 5322 §3.2.4: "the DQUOTE
        # characters ... are not semantically part of the value"), the comments are CFWS.
        (("Ann", None, "ann", "example.org"),),
        # To: (only a comment) rcpt@example.net: an addr-spec with a leading comment.
        ((None, None, "rcpt", "example.net"),),
        None,
        None,
        None,
        "<comments@example.org>",
    ),
    "bodystructure": (
        "TEXT", "PLAIN", {None, ("CHARSET", "US-ASCII")}, None, None, "7BIT", 46, 1,
        None, None, None, None,
    ),
    "size": 293,
    "sections": {
        "BODY[HEADER.FIELDS (FROM)]": b"From: <user-from (comment)@ (comment) domain.org>\r\n\r\n",
    },
}
