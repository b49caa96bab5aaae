"""IMAP in depth — IDLE (RFC 2177): another session's APPEND is announced promptly."""

from __future__ import annotations

import asyncio

import pytest

from harness.clients.imap import IMAPClientError
from harness.protocol.imap.responses import Exists
from harness.suite import Evidence, check, need, run, token
from harness.targets import Target
from suites.imap.imap_helpers import append, message, scratch, select, session

pytestmark = pytest.mark.step(9)

#: How soon an EXISTS must follow the APPEND's OK in the other session (seconds).
PROMPT = 1.5


@pytest.mark.requirement("IMAP-IDLE-PROMPT")
def test_imap_idle_wakes_on_append(target: Target, evidence: Evidence) -> None:
    async def scenario() -> float | None:
        async with session(target, evidence) as watcher, scratch(watcher) as name, \
                session(target, evidence) as writer:
            need("IDLE" in watcher.capabilities, "server does not advertise IDLE")
            await select(watcher, name)
            loop = asyncio.get_running_loop()
            command = watcher.idle()
            try:
                async with command as idle:
                    await append(writer, name, message(token()))
                    appended = loop.time()
                    while (left := appended + PROMPT - loop.time()) > 0:
                        if isinstance(await idle.wait(left), Exists):
                            return loop.time() - appended
            except IMAPClientError:
                refused = command.result
                if refused is None:
                    raise
                # RFC 2177 §3: the server answers IDLE with a continuation request.
                check("IMAP-IDLE-PROMPT", False,
                      f"IDLE, advertised, answered {refused.status} with no continuation request")
            return None

    delay = run(scenario())
    # RFC 2177 §3: "the server is now free to send untagged EXISTS ... responses at any time";
    # a client IDLEs instead of polling so that it hears of new mail as it arrives.
    check("IMAP-IDLE-PROMPT", delay is not None,
          f"no EXISTS within {PROMPT} s of another session's APPEND"
          if delay is None else f"EXISTS {delay:.2f} s after another session's APPEND")
