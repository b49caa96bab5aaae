"""A message whose lines end in a bare LF, not CRLF."""

# RFC 5322 §2.3: "CR and LF MUST only occur together as CRLF"; RFC 9051 §6.3.12: the APPEND
# argument "SHOULD be in the format of an [RFC5322] ... message", and APPEND may answer "NO -
# append error: ... message text".  A server may refuse the message, or store it as it is, or
# with CRLF.  Whatever it stores, RFC 9051 §2.3.4 defines RFC822.SIZE as the size "when the
# message is expressed in [RFC5322] format" ("This size SHOULD match the result of a "FETCH
# BODY[]" command"), and RFC 9051 §7.5.2 (BINARY): "servers MUST ensure that textual
# line-oriented sections are always transmitted using the IMAP CRLF line termination syntax,
# regardless of the underlying storage representation of the data on the server."
# No ENVELOPE or BODYSTRUCTURE is asserted: no RFC says how a header in bare LFs is parsed.

EXPECTED = {
    "append": "may-refuse",
    "size": ...,
    # BINARY[1] has no LF that is not preceded by CR.
    "binary_crlf": ("1",),
}
