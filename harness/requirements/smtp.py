"""Requirements of SMTP in depth (RFC 5321, 6409, 4954, 4616, 3207, 8314, 1870, 2920, 6152, 3463, 2034, 6531): suites/smtp and suites/security."""

from __future__ import annotations

from harness.requirements import Level, Requirement

M, S, Y = Level.MUST, Level.SHOULD, Level.MAY

SMTP: tuple[Requirement, ...] = ()
