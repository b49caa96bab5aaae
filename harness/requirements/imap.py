"""Requirements of IMAP in depth (RFC 9051, 3501, 2177, 4315, 6851, 5161, 2971, 2342, 7888, 7162): suites/imap."""

from __future__ import annotations

from harness.requirements import Level, Requirement

M, S, Y = Level.MUST, Level.SHOULD, Level.MAY

IMAP: tuple[Requirement, ...] = ()
