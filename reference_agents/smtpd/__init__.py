"""The provider's SMTP servers: the MSA (587 STARTTLS, 465 implicit TLS) and the inbound MTA (25),
a thin asyncio shell around the sans-IO SMTP core (harness/protocol/smtp).

``listeners`` the ports and TLS, ``connection`` the byte stream, ``session`` the per-connection
state, ``verbs`` the commands, ``handlers`` the MSA and MTA policy (AUTH, relaying, recipients,
the hand-off to the queue)."""

from __future__ import annotations

from reference_agents.smtpd.handlers import (
    AUTH_FAILURE_DELAY,
    AUTH_FAILURE_LIMIT,
    MAX_RECIPIENTS,
    Enqueue,
    add_missing_fields,
)
from reference_agents.smtpd.listeners import SHUTDOWN_GRACE, SMTPServers
from reference_agents.smtpd.session import ERROR_LIMIT, IDENT, SERVER_TIMEOUT, SIZE_PARAM_ALLOWANCE

__all__ = [
    "AUTH_FAILURE_DELAY", "AUTH_FAILURE_LIMIT", "ERROR_LIMIT", "IDENT", "MAX_RECIPIENTS",
    "SERVER_TIMEOUT", "SHUTDOWN_GRACE", "SIZE_PARAM_ALLOWANCE", "Enqueue", "SMTPServers",
    "add_missing_fields",
]
