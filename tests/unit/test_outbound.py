"""Tests for reference_agents.outbound (MX delivery, retry, bounce, quirks) and reference_agents.dsn."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from pathlib import Path
from typing import Any

import pytest

from harness.dns import ZoneServer
from harness.sink import SinkServer
from reference_agents.accounts import Account, AccountStore, hash_password
from reference_agents.config import ProviderConfig
from reference_agents.dsn import build_dsn
from reference_agents.outbound import DeliveryOutcome, OutboundWorker
from reference_agents.queue import MailQueue
from reference_agents.tls import TLSMaterial

#: The sinks the tests start; each is an MX of some test domain.
SINK_ADDRESSES = ("127.0.0.5", "127.0.0.6", "127.0.0.7")
#: An address where nothing listens: connections are refused.
DEAD_ADDRESS = "127.0.0.8"

ZONE_NET = """
@            MX 10 mx1
@            MX 20 mx2
mx1          A  127.0.0.5
mx2          A  127.0.0.6
mx3          A  127.0.0.7
dead         A  127.0.0.8
plain        A  127.0.0.7
"""

MESSAGE = (
    b"From: alice@example.org\r\n"
    b"To: bob@example.net\r\n"
    b"Subject: hello\r\n"
    b"Message-ID: <1@example.org>\r\n"
    b"\r\n"
    b"line one\r\n"
    b".a line starting with a dot\r\n"
    b"..two dots\r\n"
)

TIMEOUT = 5.0


@pytest.fixture(scope="module")
def accounts() -> AccountStore:
    account = Account("alice", "alice@example.org", hash_password("secret"))
    return AccountStore([account], ["example.org"])


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSMaterial:
    return TLSMaterial.create(tmp_path_factory.mktemp("tls"))


@dataclass
class Env:
    zone: ZoneServer
    sinks: dict[str, SinkServer]
    queue: MailQueue
    worker: OutboundWorker
    config: ProviderConfig
    local: list[tuple[str, str, bytes]] = field(default_factory=list)
    local_event: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_local(self, n: int) -> None:
        async with asyncio.timeout(TIMEOUT):
            while len(self.local) < n:
                self.local_event.clear()
                await self.local_event.wait()


Scenario = Callable[[Env], Awaitable[None]]


async def start_sinks(
    stack: AsyncExitStack, tls: TLSMaterial, sink_tls: dict[str, list[str]]
) -> dict[str, SinkServer]:
    """One sink per SINK_ADDRESSES, all on the port the first one got (retried if another
    process holds that port on one of the other addresses)."""
    for _ in range(10):
        sinks: dict[str, SinkServer] = {}
        port = 0
        try:
            async with AsyncExitStack() as attempt:
                for address in SINK_ADDRESSES:
                    names = sink_tls.get(address)
                    sink = SinkServer(
                        address,
                        port,
                        hostname=f"sink-{address}.example.net",
                        tls_context=tls.server_context(names) if names else None,
                    )
                    await attempt.enter_async_context(sink)
                    port = sink.port
                    sinks[address] = sink
                stack.push_async_exit(attempt.pop_all())
                return sinks
        except OSError:
            continue
    raise RuntimeError("no port free on all sink addresses")


def run(
    tmp_path: Path,
    accounts: AccountStore,
    tls: TLSMaterial,
    scenario: Scenario,
    *,
    quirks: frozenset[str] = frozenset(),
    sink_tls: dict[str, list[str]] | None = None,
    **config_kw: Any,
) -> None:
    """Start a zone server, sinks on SINK_ADDRESSES (one shared port) and a worker, then run
    *scenario*. ``sink_tls`` maps a sink address to the names on its certificate."""

    async def main() -> None:
        async with AsyncExitStack() as stack:
            zone = await stack.enter_async_context(ZoneServer("127.0.0.1"))
            zone.add_zone("example.net", ZONE_NET)
            zone.add_zone("example.com")
            sinks = await start_sinks(stack, tls, sink_tls or {})
            port = sinks[SINK_ADDRESSES[0]].port
            config = ProviderConfig(
                domain="example.org",
                address="127.0.0.2",
                hostname="mail.example.org",
                data_dir=tmp_path,
                accounts=accounts,
                server_tls=tls.server_context(["mail.example.org"]),
                client_tls=tls.client_context(),
                dns_server=("127.0.0.1", zone.port),
                outbound_port=port,
                quirks=quirks,
                retry_schedule=config_kw.pop("retry_schedule", (0.1, 0.2)),
                smtp_timeout=config_kw.pop("smtp_timeout", 2.0),
                **config_kw,
            )
            queue = MailQueue(tmp_path / "queue")
            env_box: list[Env] = []

            async def local_delivery(mail_from: str, recipient: str, data: bytes,
                                     delivery: str) -> DeliveryOutcome:
                env = env_box[0]
                if accounts.by_address(recipient) is None:
                    return DeliveryOutcome("permanent", "unknown user", "5.1.1")
                env.local.append((mail_from, recipient, data))
                env.local_event.set()
                return DeliveryOutcome("delivered", "stored")

            worker = OutboundWorker(config, queue, local_delivery)
            env = Env(zone, sinks, queue, worker, config)
            env_box.append(env)
            task = asyncio.create_task(worker.run())
            try:
                await scenario(env)
            finally:
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task

    asyncio.run(main())


def parse(data: bytes) -> Message:
    return email.message_from_bytes(data, policy=email.policy.default)


def dsn_fields(data: bytes) -> tuple[Message, list[Message]]:
    """The DSN message and its delivery-status blocks (per-message first)."""
    message = parse(data)
    assert message.get_content_type() == "multipart/report"
    status = next(p for p in message.walk() if p.get_content_type() == "message/delivery-status")
    blocks = status.get_payload()
    assert isinstance(blocks, list)
    return message, blocks


# -- delivery over SMTP -----------------------------------------------------------------------


def test_delivers_to_the_most_preferred_mx_intact(
    tmp_path: Path, accounts: AccountStore, tls: TLSMaterial
) -> None:
    async def scenario(env: Env) -> None:
        env.queue.enqueue("alice@example.org", ["bob@example.net", "carol@example.net"], MESSAGE)
        message = await env.sinks["127.0.0.5"].wait_for_message(TIMEOUT)
        assert message.mail_from == "alice@example.org"
        assert message.recipients == ("bob@example.net", "carol@example.net")
        assert message.data == MESSAGE  # dot-stuffed on the wire, intact on arrival
        assert message.helo == "mail.example.org"
        await env.worker.drain(TIMEOUT)
        assert env.queue.entries() == []
        assert env.sinks["127.0.0.6"].messages == []

    run(tmp_path, accounts, tls, scenario)


def test_reverse_preference_quirk_uses_the_least_preferred_mx(
    tmp_path: Path, accounts: AccountStore, tls: TLSMaterial
) -> None:
    async def scenario(env: Env) -> None:
        env.queue.enqueue("alice@example.org", ["bob@example.net"], MESSAGE)
        await env.sinks["127.0.0.6"].wait_for_message(TIMEOUT)
        await env.worker.drain(TIMEOUT)
        assert env.sinks["127.0.0.5"].messages == []

    run(tmp_path, accounts, tls, scenario, quirks=frozenset({"mta_mx_reverse_preference"}))


def test_falls_back_when_the_best_mx_refuses_or_answers_421(
    tmp_path: Path, accounts: AccountStore, tls: TLSMaterial
) -> None:
    async def scenario(env: Env) -> None:
        env.zone.add_zone("example.com", "@ MX 5 dead.example.net.\n@ MX 10 mx1.example.net.\n")
        env.sinks["127.0.0.5"].script_mail(["421 4.3.2 Going away"])
        env.zone.add_record("example.com", "MX", "20 mx3.example.net")
        env.queue.enqueue("alice@example.org", ["dave@example.com"], MESSAGE)
        message = await env.sinks["127.0.0.7"].wait_for_message(TIMEOUT)
        assert message.recipients == ("dave@example.com",)
        await env.worker.drain(TIMEOUT)
        assert env.sinks["127.0.0.5"].connections == 1
        assert env.queue.entries() == []

    run(tmp_path, accounts, tls, scenario)


def test_implicit_mx_and_the_no_implicit_mx_quirk(
    tmp_path: Path, accounts: AccountStore, tls: TLSMaterial
) -> None:
    async def delivered(env: Env) -> None:
        env.queue.enqueue("alice@example.org", ["erin@plain.example.net"], MESSAGE)
        message = await env.sinks["127.0.0.7"].wait_for_message(TIMEOUT)
        assert message.recipients == ("erin@plain.example.net",)

    run(tmp_path / "a", accounts, tls, delivered)

    async def bounced(env: Env) -> None:
        env.queue.enqueue("alice@example.org", ["erin@plain.example.net"], MESSAGE)
        await env.wait_local(1)
        mail_from, recipient, data = env.local[0]
        assert (mail_from, recipient) == ("", "alice@example.org")
        _, blocks = dsn_fields(data)
        assert str(blocks[1]["Status"]).startswith("5.")
        assert env.sinks["127.0.0.7"].connections == 0

    run(tmp_path / "b", accounts, tls, bounced, quirks=frozenset({"mta_no_implicit_mx"}))


def test_null_mx_bounces_without_connecting(
    tmp_path: Path, accounts: AccountStore, tls: TLSMaterial
) -> None:
    async def scenario(env: Env) -> None:
        env.zone.add_record("nullmx.example.net", "MX", "0 .")
        env.queue.enqueue("alice@example.org", ["x@nullmx.example.net"], MESSAGE)
        await env.wait_local(1)
        _, blocks = dsn_fields(env.local[0][2])
        assert str(blocks[1]["Status"]) == "5.1.10"
        assert sum(s.connections for s in env.sinks.values()) == 0

    run(tmp_path, accounts, tls, scenario)


def test_local_recipients_go_to_local_delivery(
    tmp_path: Path, accounts: AccountStore, tls: TLSMaterial
) -> None:
    async def scenario(env: Env) -> None:
        env.queue.enqueue("bob@example.net", ["alice@example.org", "bob2@example.net"], MESSAGE)
        await env.wait_local(1)
        assert env.local == [("bob@example.net", "alice@example.org", MESSAGE)]
        message = await env.sinks["127.0.0.5"].wait_for_message(TIMEOUT)
        assert message.recipients == ("bob2@example.net",)
        await env.worker.drain(TIMEOUT)
        assert env.queue.entries() == []

    run(tmp_path, accounts, tls, scenario)


def test_starttls_when_offered_and_clear_fallback_on_a_bad_certificate(
    tmp_path: Path, accounts: AccountStore, tls: TLSMaterial
) -> None:
    async def scenario(env: Env) -> None:
        env.queue.enqueue("alice@example.org", ["bob@example.net"], MESSAGE)
        message = await env.sinks["127.0.0.5"].wait_for_message(TIMEOUT)
        assert message.data == MESSAGE
        assert env.sinks["127.0.0.5"].connections == 1  # TLS worked first time
        env.zone.remove_records("example.net", "MX")
        env.zone.add_record("example.net", "MX", "10 mx2.example.net")
        env.queue.enqueue("alice@example.org", ["bob@example.net"], MESSAGE)
        message = await env.sinks["127.0.0.6"].wait_for_message(TIMEOUT)
        assert message.data == MESSAGE
        assert env.sinks["127.0.0.6"].connections == 2  # handshake failed, then in clear

    run(
        tmp_path,
        accounts,
        tls,
        scenario,
        sink_tls={"127.0.0.5": ["mx1.example.net"], "127.0.0.6": ["wrong.example.invalid"]},
    )


def test_many_messages_are_all_delivered(
    tmp_path: Path, accounts: AccountStore, tls: TLSMaterial
) -> None:
    async def scenario(env: Env) -> None:
        count = 60
        for i in range(count):
            env.queue.enqueue("alice@example.org", [f"r{i}@example.net"], MESSAGE)
        await env.worker.drain(TIMEOUT * 2)
        got = sorted(m.recipients[0] for m in env.sinks["127.0.0.5"].messages)
        assert got == sorted(f"r{i}@example.net" for i in range(count))
        assert env.queue.entries() == []

    run(tmp_path, accounts, tls, scenario)


def test_queued_mail_is_delivered_after_a_restart(
    tmp_path: Path, accounts: AccountStore, tls: TLSMaterial
) -> None:
    # Enqueued with no worker running (as if the MTA crashed right after its 250) ...
    MailQueue(tmp_path / "queue").enqueue("alice@example.org", ["bob@example.net"], MESSAGE)

    async def scenario(env: Env) -> None:
        # ... and a fresh worker over the reopened queue delivers it.
        message = await env.sinks["127.0.0.5"].wait_for_message(TIMEOUT)
        assert message.data == MESSAGE
        await env.worker.drain(TIMEOUT)
        assert env.queue.entries() == []

    run(tmp_path, accounts, tls, scenario)


# -- retry ------------------------------------------------------------------------------------


def test_retries_after_451_then_delivers(
    tmp_path: Path, accounts: AccountStore, tls: TLSMaterial
) -> None:
    async def scenario(env: Env) -> None:
        sink = env.sinks["127.0.0.5"]
        sink.script_rcpt(["451 4.3.0 Try again later"])
        entry_id = env.queue.enqueue("alice@example.org", ["bob@example.net"], MESSAGE)
        await sink.wait_for_connections(1, TIMEOUT)
        message = await sink.wait_for_message(TIMEOUT)
        assert message.data == MESSAGE
        assert sink.connections == 2
        await env.worker.drain(TIMEOUT)
        assert env.queue.get(entry_id) is None
        assert env.local == []

    run(tmp_path, accounts, tls, scenario)


def test_retry_keeps_only_undelivered_recipients(
    tmp_path: Path, accounts: AccountStore, tls: TLSMaterial
) -> None:
    async def scenario(env: Env) -> None:
        sink = env.sinks["127.0.0.5"]
        sink.script_rcpt(["250 2.1.5 ok", "450 4.2.1 Mailbox busy"])
        env.queue.enqueue("alice@example.org", ["a@example.net", "b@example.net"], MESSAGE)
        first = await sink.wait_for_message(TIMEOUT)
        second = await sink.wait_for_message(TIMEOUT)
        assert first.recipients == ("a@example.net",)
        assert second.recipients == ("b@example.net",)

    run(tmp_path, accounts, tls, scenario, retry_schedule=(0.05,))


def test_all_mx_hosts_down_stays_queued(
    tmp_path: Path, accounts: AccountStore, tls: TLSMaterial
) -> None:
    async def scenario(env: Env) -> None:
        env.zone.add_zone("example.com", "@ MX 10 dead.example.net.\n")
        entry_id = env.queue.enqueue("alice@example.org", ["x@example.com"], MESSAGE)
        await env.worker.drain(TIMEOUT)
        entry = env.queue.get(entry_id)
        assert entry is not None
        assert entry.attempts == 1
        assert "dead.example.net" in entry.last_error
        assert entry.recipients == ("x@example.com",)
        assert env.local == []

    run(tmp_path, accounts, tls, scenario, retry_schedule=(60.0,))


def test_no_retry_quirk_drops_the_message_silently(
    tmp_path: Path, accounts: AccountStore, tls: TLSMaterial
) -> None:
    async def scenario(env: Env) -> None:
        sink = env.sinks["127.0.0.5"]
        sink.script_rcpt(["451 4.3.0 Try again later"])
        env.queue.enqueue("alice@example.org", ["bob@example.net"], MESSAGE)
        await sink.wait_for_connections(1, TIMEOUT)
        await env.worker.drain(TIMEOUT)
        assert env.queue.entries() == []
        assert sink.messages == [] and env.local == []

    run(tmp_path, accounts, tls, scenario, quirks=frozenset({"mta_no_retry"}))


def test_expired_message_is_bounced(
    tmp_path: Path, accounts: AccountStore, tls: TLSMaterial
) -> None:
    async def scenario(env: Env) -> None:
        env.sinks["127.0.0.5"].script_rcpt(["451 4.3.0 Try again later"])
        env.queue.enqueue("alice@example.org", ["bob@example.net"], MESSAGE)
        await env.wait_local(1)
        mail_from, recipient, data = env.local[0]
        assert (mail_from, recipient) == ("", "alice@example.org")
        _, blocks = dsn_fields(data)
        assert str(blocks[1]["Action"]) == "failed"
        assert str(blocks[1]["Status"]) == "4.3.0"
        await env.worker.drain(TIMEOUT)
        assert env.queue.entries() == []

    run(tmp_path, accounts, tls, scenario, max_queue_lifetime=0.0)


# -- bounces ----------------------------------------------------------------------------------


def test_bounce_after_550_has_a_null_sender(
    tmp_path: Path, accounts: AccountStore, tls: TLSMaterial
) -> None:
    async def scenario(env: Env) -> None:
        env.sinks["127.0.0.5"].script_rcpt(["550 5.1.1 No such user here"])
        env.queue.enqueue("alice@example.org", ["nobody@example.net"], MESSAGE)
        await env.wait_local(1)
        mail_from, recipient, data = env.local[0]
        assert mail_from == ""  # RFC 5321 §4.5.5
        assert recipient == "alice@example.org"
        message, blocks = dsn_fields(data)
        assert message["To"].addresses[0].addr_spec == "alice@example.org"
        assert str(blocks[0]["Reporting-MTA"]) == "dns; mail.example.org"
        assert str(blocks[1]["Final-Recipient"]) == "rfc822; nobody@example.net"
        assert str(blocks[1]["Status"]) == "5.1.1"
        assert "550" in str(blocks[1]["Diagnostic-Code"])
        await env.worker.drain(TIMEOUT)
        assert env.queue.entries() == []
        assert env.sinks["127.0.0.5"].messages == []

    run(tmp_path, accounts, tls, scenario)


def test_bounce_after_550_to_data(
    tmp_path: Path, accounts: AccountStore, tls: TLSMaterial
) -> None:
    async def scenario(env: Env) -> None:
        env.sinks["127.0.0.5"].script_data(["554 5.7.1 Spam refused"])
        env.queue.enqueue("alice@example.org", ["bob@example.net", "carol@example.net"], MESSAGE)
        await env.wait_local(1)
        _, blocks = dsn_fields(env.local[0][2])
        recipients = sorted(str(b["Final-Recipient"]) for b in blocks[1:])
        assert recipients == ["rfc822; bob@example.net", "rfc822; carol@example.net"]
        assert {str(b["Status"]) for b in blocks[1:]} == {"5.7.1"}

    run(tmp_path, accounts, tls, scenario)


def test_no_bounce_for_a_null_sender_message(
    tmp_path: Path, accounts: AccountStore, tls: TLSMaterial
) -> None:
    async def scenario(env: Env) -> None:
        sink = env.sinks["127.0.0.5"]
        sink.script_rcpt(["550 5.1.1 No such user here"])
        env.queue.enqueue("", ["nobody@example.net"], MESSAGE)
        await sink.wait_for_connections(1, TIMEOUT)
        await env.worker.drain(TIMEOUT)
        assert env.queue.entries() == []
        assert env.local == []

    run(tmp_path, accounts, tls, scenario)


def test_no_bounce_quirk_drops_silently(
    tmp_path: Path, accounts: AccountStore, tls: TLSMaterial
) -> None:
    async def scenario(env: Env) -> None:
        sink = env.sinks["127.0.0.5"]
        sink.script_rcpt(["550 5.1.1 No such user here"])
        env.queue.enqueue("alice@example.org", ["nobody@example.net"], MESSAGE)
        await sink.wait_for_connections(1, TIMEOUT)
        await env.worker.drain(TIMEOUT)
        assert env.queue.entries() == []
        assert env.local == []

    run(tmp_path, accounts, tls, scenario, quirks=frozenset({"mta_no_bounce"}))


def test_bounce_with_sender_quirk(
    tmp_path: Path, accounts: AccountStore, tls: TLSMaterial
) -> None:
    async def scenario(env: Env) -> None:
        env.sinks["127.0.0.5"].script_rcpt(["550 5.1.1 No such user here"])
        env.queue.enqueue("alice@example.org", ["nobody@example.net"], MESSAGE)
        await env.wait_local(1)
        assert env.local[0][0] == "MAILER-DAEMON@example.org"

    run(tmp_path, accounts, tls, scenario, quirks=frozenset({"mta_bounce_with_sender"}))


def test_bounce_to_a_remote_sender_goes_out_with_null_mail_from(
    tmp_path: Path, accounts: AccountStore, tls: TLSMaterial
) -> None:
    async def scenario(env: Env) -> None:
        env.zone.add_zone("example.com", "@ MX 10 mx3.example.net.\n")
        env.sinks["127.0.0.5"].script_rcpt(["550 5.1.1 No such user here"])
        env.queue.enqueue("frank@example.com", ["nobody@example.net"], MESSAGE)
        bounce = await env.sinks["127.0.0.7"].wait_for_message(TIMEOUT)
        assert bounce.mail_from == ""
        assert bounce.recipients == ("frank@example.com",)
        dsn_fields(bounce.data)

    run(tmp_path, accounts, tls, scenario)


def test_no_dot_stuffing_quirk_corrupts_leading_dots(
    tmp_path: Path, accounts: AccountStore, tls: TLSMaterial
) -> None:
    async def scenario(env: Env) -> None:
        env.queue.enqueue("alice@example.org", ["bob@example.net"], MESSAGE)
        message = await env.sinks["127.0.0.5"].wait_for_message(TIMEOUT)
        assert message.data != MESSAGE
        assert b"\r\na line starting with a dot\r\n.two dots\r\n" in message.data

    run(tmp_path, accounts, tls, scenario, quirks=frozenset({"mta_no_dot_stuffing"}))


# -- DSN --------------------------------------------------------------------------------------


def test_build_dsn_is_a_well_formed_rfc3464_report() -> None:
    arrival = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    data = build_dsn(
        reporting_mta="mail.example.org",
        original_from="alice@example.org",
        failed=[
            ("bob@example.net", "5.1.1", "550 5.1.1 No such user\nsecond line"),
            ("carol@example.net", "5.2.2", "552 5.2.2 Mailbox full"),
        ],
        original_message=MESSAGE,
        arrival=arrival,
        domain="example.org",
    )
    assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF only
    message = parse(data)
    assert isinstance(message, EmailMessage)
    assert not message.defects
    assert message["From"].addresses[0].addr_spec == "MAILER-DAEMON@example.org"
    assert message["To"].addresses[0].addr_spec == "alice@example.org"
    assert message["Subject"]
    assert message["Date"]
    assert str(message["Message-ID"]).endswith("@example.org>")
    assert message["Auto-Submitted"] == "auto-replied"
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "delivery-status"
    parts = message.get_payload()
    assert isinstance(parts, list)
    assert [p.get_content_type() for p in parts] == [
        "text/plain",
        "message/delivery-status",
        "text/rfc822-headers",
    ]
    blocks = parts[1].get_payload()
    assert str(blocks[0]["Reporting-MTA"]) == "dns; mail.example.org"
    assert str(blocks[0]["Arrival-Date"]) == "Wed, 01 May 2024 12:00:00 +0000"
    assert [str(b["Final-Recipient"]) for b in blocks[1:]] == [
        "rfc822; bob@example.net",
        "rfc822; carol@example.net",
    ]
    assert [str(b["Action"]) for b in blocks[1:]] == ["failed", "failed"]
    assert [str(b["Status"]) for b in blocks[1:]] == ["5.1.1", "5.2.2"]
    assert str(blocks[1]["Diagnostic-Code"]) == "smtp; 550 5.1.1 No such user second line"
    headers = parts[2].get_payload(decode=True)
    assert isinstance(headers, bytes)
    assert b"Message-ID: <1@example.org>" in headers
    assert b"line one" not in headers


def test_build_dsn_refuses_a_null_sender() -> None:
    with pytest.raises(ValueError):
        build_dsn(
            reporting_mta="mail.example.org",
            original_from="",
            failed=[("bob@example.net", "5.1.1", "550")],
            original_message=MESSAGE,
            arrival=datetime.now(UTC),
            domain="example.org",
        )


# -- the session cache (reference_agents/session_cache.py) ----------------------------------
# A host that took a message gets the next one over the same connection, probed with RSET; a
# connection the host has closed, an expired one and a failed transaction each get a fresh one.

SINK = "127.0.0.5"
TLS_NAMES = {SINK: ["mx1.example.net"]}


async def _until(condition: Callable[[], bool]) -> None:
    """Poll *condition* until it holds; TimeoutError after TIMEOUT."""
    for _ in range(int(TIMEOUT / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise TimeoutError("condition not reached")


async def _send(env: Env, recipient: str = "bob@example.net") -> None:
    env.queue.enqueue("alice@example.org", [recipient], MESSAGE)
    message = await env.sinks[SINK].wait_for_message(TIMEOUT)
    assert message.data == MESSAGE
    await _until(lambda: not len(env.queue))


def test_the_next_message_to_the_same_host_reuses_the_tls_session(
    tmp_path: Path, accounts: AccountStore, tls: TLSMaterial
) -> None:
    async def scenario(env: Env) -> None:
        for _ in range(3):
            await _send(env)
        sink = env.sinks[SINK]
        assert sink.connections == 1
        assert len(sink.messages) == 3
        assert env.worker.sessions.reused == 2 and env.worker.sessions.stale == 0
        assert env.worker.sessions.idle_count() == 1

    run(tmp_path, accounts, tls, scenario, sink_tls=TLS_NAMES)


def test_cache_off_opens_a_connection_per_message(
    tmp_path: Path, accounts: AccountStore, tls: TLSMaterial
) -> None:
    async def scenario(env: Env) -> None:
        for _ in range(3):
            await _send(env)
        assert env.sinks[SINK].connections == 3
        assert env.worker.sessions.reused == 0
        assert env.worker.sessions.idle_count() == 0

    run(tmp_path, accounts, tls, scenario, sink_tls=TLS_NAMES, outbound_session_cache=0.0)


def test_a_session_the_host_closed_costs_a_fresh_connection_not_a_failure(
    tmp_path: Path, accounts: AccountStore, tls: TLSMaterial
) -> None:
    async def scenario(env: Env) -> None:
        await _send(env)
        sink = env.sinks[SINK]
        for protocol in list(sink._protocols):  # the host drops the idle connection
            assert protocol.transport is not None
            protocol.transport.close()
        await asyncio.sleep(0.1)
        await _send(env)
        assert sink.connections == 2
        assert env.worker.sessions.stale == 1 and env.worker.sessions.reused == 0
        assert len(sink.messages) == 2

    run(tmp_path, accounts, tls, scenario, sink_tls=TLS_NAMES)


def test_an_idle_session_is_closed_when_its_time_is_up(
    tmp_path: Path, accounts: AccountStore, tls: TLSMaterial
) -> None:
    async def scenario(env: Env) -> None:
        await _send(env)
        sink = env.sinks[SINK]
        assert env.worker.sessions.idle_count() == 1
        await _until(lambda: not sink._protocols)  # QUIT, then the close
        assert env.worker.sessions.idle_count() == 0
        await _send(env)
        assert sink.connections == 2 and env.worker.sessions.reused == 0

    run(tmp_path, accounts, tls, scenario, sink_tls=TLS_NAMES, outbound_session_cache=0.2)


def test_a_host_that_deferred_a_recipient_gets_a_fresh_connection(
    tmp_path: Path, accounts: AccountStore, tls: TLSMaterial
) -> None:
    async def scenario(env: Env) -> None:
        sink = env.sinks[SINK]
        sink.script_data(["451 4.3.0 try again"])
        env.queue.enqueue("alice@example.org", ["bob@example.net"], MESSAGE)
        message = await sink.wait_for_message(TIMEOUT)  # the retry (a 451 records nothing)
        assert message.data == MESSAGE
        assert sink.connections == 2 and len(sink.messages) == 1
        assert env.worker.sessions.reused == 0

    run(tmp_path, accounts, tls, scenario, sink_tls=TLS_NAMES)


def test_a_session_past_its_reuse_time_is_not_kept(
    tmp_path: Path, accounts: AccountStore, tls: TLSMaterial
) -> None:
    async def scenario(env: Env) -> None:
        env.worker.sessions.reuse_seconds = 0.0
        await _send(env)
        await _send(env)
        assert env.sinks[SINK].connections == 2
        assert env.worker.sessions.idle_count() == 0

    run(tmp_path, accounts, tls, scenario, sink_tls=TLS_NAMES)
