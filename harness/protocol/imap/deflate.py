"""COMPRESS=DEFLATE (RFC 4978): the raw DEFLATE stream of each direction, bounded when inflating.

RFC 4978 §4: "The windowBits value must be in the range -8 to -15, or else deflateInit2() uses
the wrong format": the stream is RFC 1951 DEFLATE with no zlib header or checksum (negative
window bits in zlib's API). Both sides of the project use these two classes; the suites check
the format against the server they talk to, which for an independent server is its own code.
"""

from __future__ import annotations

import zlib

from harness.protocol.errors import RemoteProtocolError

#: RFC 4978 §5: algorithm = "DEFLATE" (the only one defined).
DEFLATE = "DEFLATE"

class DeflateError(RemoteProtocolError):
    """Octets that are not the raw DEFLATE stream RFC 4978 asks for (a zlib or gzip header, a
    corrupt block, data after the stream's end)."""

    protocol = "imap"


#: Raw DEFLATE, the largest window (RFC 1951 §2: a 32K window).
_RAW_WINDOW = -15


class Deflater:
    """The sending side: each piece written is compressed and ends with a full flush, so the
    peer can decompress every response as soon as it arrives, and the dictionary starts afresh
    (RFC 4978 §4: "The Z_FULL_FLUSH argument to deflate() can be used to clear the
    dictionary")."""

    def __init__(self, level: int = 6, *, window: int = _RAW_WINDOW) -> None:
        self._z = zlib.compressobj(level, zlib.DEFLATED, window)

    def compress(self, data: bytes) -> bytes:
        return self._z.compress(data) + self._z.flush(zlib.Z_FULL_FLUSH)


class Inflater:
    """The receiving side: compressed octets are fed as they come and taken out inflated in
    bounded pieces, so a small input that inflates to gigabytes (a decompression bomb) never
    occupies more than the caller's limit at a time."""

    def __init__(self) -> None:
        self._z = zlib.decompressobj(_RAW_WINDOW)
        self._tail = b""  # compressed octets received and not yet inflated

    @property
    def pending(self) -> int:
        """Compressed octets waiting to be inflated."""
        return len(self._tail)

    def feed(self, data: bytes) -> None:
        self._tail += data

    def take(self, limit: int) -> bytes:
        """At most *limit* inflated octets (fewer when the input so far gives no more).
        DeflateError when the octets are not a raw DEFLATE stream, or the stream ended
        (a peer that finishes its stream has nothing more to say through it)."""
        if not self._tail or limit <= 0:
            return b""
        if self._z.eof:
            raise DeflateError("data after the end of the DEFLATE stream", data=self._tail[:64])
        try:
            out = self._z.decompress(self._tail, limit)
        except zlib.error as exc:
            raise DeflateError(f"not a raw DEFLATE stream: {exc}", data=self._tail[:64]) from None
        self._tail = self._z.unconsumed_tail
        if self._z.eof and self._z.unused_data:
            self._tail = self._z.unused_data
        return out
