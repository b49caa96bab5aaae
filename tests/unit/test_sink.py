"""Tests for harness.sink: the scriptable SMTP peer."""

from __future__ import annotations

import asyncio

import pytest

from harness.clients.smtp import SMTPClient
from harness.sink import SinkMessage, SinkServer


def test_accepts_and_records_exact_bytes() -> None:
    async def main() -> None:
        async with SinkServer("127.0.0.1", hostname="mx.example.test") as sink:
            async with await SMTPClient.connect("127.0.0.1", sink.port, timeout=5) as client:
                assert client.greeting.code == 220
                assert "mx.example.test" in client.greeting.text
                await client.ehlo("sender.example")
                assert (await client.mail("")).code == 250
                assert (await client.rcpt("a@example.test")).code == 250
                assert (await client.rcpt("b@example.test")).code == 250
                body = b"Subject: hi\r\n\r\n.leading dot\r\nbare\nline\r\n"
                assert (await client.data(body)).code == 250
            message = await sink.wait_for_message(5)
            assert message == SinkMessage(
                mail_from="",
                recipients=("a@example.test", "b@example.test"),
                data=b"Subject: hi\r\n\r\n.leading dot\r\nbare\r\nline\r\n",
                peer="127.0.0.1",
                helo="sender.example",
            )
            assert sink.connections == 1
            assert sink.messages == [message]

    asyncio.run(main())


def test_scripted_replies_are_consumed_one_per_command() -> None:
    async def main() -> None:
        async with SinkServer("127.0.0.1") as sink:
            sink.script_mail(["451 4.3.0 Try again later"])
            sink.script_rcpt(["550 5.1.1 No such user", "250 2.1.5 fine"])
            sink.script_data(["452 4.3.1 Out of space"])
            async with await SMTPClient.connect("127.0.0.1", sink.port, timeout=5) as client:
                await client.ehlo()
                mail = await client.mail("s@example.test")
                assert (mail.code, str(mail.enhanced)) == (451, "4.3.0")
                assert (await client.mail("s@example.test")).code == 250
                assert (await client.rcpt("gone@example.test")).code == 550
                assert (await client.rcpt("a@example.test")).code == 250
                assert (await client.rcpt("b@example.test")).code == 250  # script empty: accept
                assert (await client.data(b"one\r\n")).code == 452
                # The refused transaction left nothing behind; the next one is accepted.
                assert (await client.mail("s@example.test")).code == 250
                assert (await client.rcpt("a@example.test")).code == 250
                assert (await client.data(b"two\r\n")).code == 250
            message = await sink.wait_for_message(5)
            assert message.recipients == ("a@example.test",)
            assert message.data == b"two\r\n"
            with pytest.raises(TimeoutError):
                await sink.wait_for_message(0.05)

    asyncio.run(main())


def test_wait_for_connections_and_stop_closes_open_sessions() -> None:
    async def main() -> None:
        sink = SinkServer("127.0.0.1")
        await sink.start()
        clients = [await SMTPClient.connect("127.0.0.1", sink.port, timeout=5) for _ in range(3)]
        await sink.wait_for_connections(3, timeout=5)
        with pytest.raises(TimeoutError):
            await sink.wait_for_connections(4, timeout=0.05)
        await sink.stop()
        for client in clients:
            await client.close()

    asyncio.run(main())


def test_without_smtputf8_utf8_addresses_are_recorded_and_refused() -> None:
    async def main() -> None:
        async with SinkServer("127.0.0.1", offer_smtputf8=False) as sink:
            async with await SMTPClient.connect("127.0.0.1", sink.port, timeout=5) as client:
                await client.ehlo()
                assert "SMTPUTF8" not in client.extensions
                assert (await client.mail("s@example.test", ["SMTPUTF8"])).code == 553
                assert (await client.mail("s@example.test")).code == 250
                refused = await client.rcpt("jörg@example.test")
                assert (refused.code, str(refused.enhanced)) == (553, "5.6.7")
                assert (await client.rcpt("a@example.test")).code == 250
            assert sink.smtputf8_violations == ["MAIL FROM:<s@example.test> SMTPUTF8",
                                                "RCPT TO:<jörg@example.test>"]
        async with SinkServer("127.0.0.1") as offered:
            async with await SMTPClient.connect("127.0.0.1", offered.port, timeout=5) as client:
                await client.ehlo()
                assert "SMTPUTF8" in client.extensions
                assert (await client.mail("jörg@example.test", ["SMTPUTF8"])).code == 250
            assert offered.smtputf8_violations == []

    asyncio.run(main())
