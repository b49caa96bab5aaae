"""Tests for harness.dns: the zone server over UDP and TCP, UPDATE, and MX resolution."""

from __future__ import annotations

import asyncio
import random
import socket
import struct
from collections.abc import Awaitable, Callable

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.resolver
import pytest

from harness.dns import (
    DNSUpdateError,
    MXHost,
    PermanentDNSError,
    TemporaryDNSError,
    ZoneServer,
    make_resolver,
    resolve_mx,
    send_update,
)

ZONE = """
@        300 IN MX 10 mx1
@        300 IN MX 20 mx2.example.net.
@        300 IN TXT "v=spf1 -all"
mx1      300 IN A 127.0.0.5
mx2      300 IN A 127.0.0.6
mx2      300 IN AAAA ::1
alias    300 IN CNAME mx1
deep.ent 300 IN A 127.0.0.9
"""


def run_with_server(test: Callable[[ZoneServer], Awaitable[None]]) -> None:
    async def main() -> None:
        async with ZoneServer("127.0.0.1") as server:
            server.add_zone("example.net", ZONE)
            server.add_zone("example.org")
            await test(server)

    asyncio.run(main())


def test_answers_mx_a_aaaa_txt_over_udp_and_tcp() -> None:
    async def check(server: ZoneServer) -> None:
        resolver = make_resolver("127.0.0.1", server.port)
        for tcp in (False, True):
            mx = await resolver.resolve("example.net", "MX", tcp=tcp)
            assert sorted((r.preference, r.exchange.to_text()) for r in mx) == [
                (10, "mx1.example.net."),
                (20, "mx2.example.net."),
            ]
            assert mx.response.flags & dns.flags.AA
            assert not mx.response.flags & dns.flags.RA
            a = await resolver.resolve("mx1.example.net", "A", tcp=tcp)
            assert [r.to_text() for r in a] == ["127.0.0.5"]
            aaaa = await resolver.resolve("mx2.example.net", "AAAA", tcp=tcp)
            assert [r.to_text() for r in aaaa] == ["::1"]
            txt = await resolver.resolve("example.net", "TXT", tcp=tcp)
            assert [r.to_text() for r in txt] == ['"v=spf1 -all"']
            cname = await resolver.resolve("alias.example.net", "A", tcp=tcp)
            assert [r.to_text() for r in cname] == ["127.0.0.5"]
        assert server.zones() == ["example.net.", "example.org."]

    run_with_server(check)


def test_negative_answers() -> None:
    async def check(server: ZoneServer) -> None:
        host = "127.0.0.1"
        # NXDOMAIN inside a zone, with the SOA in the authority section.
        query = dns.message.make_query("nope.example.net", "A")
        response = await dns.asyncquery.udp(query, host, port=server.port, timeout=2)
        assert response.rcode() == dns.rcode.NXDOMAIN
        assert response.flags & dns.flags.AA
        assert response.authority[0].rdtype == dns.rdatatype.SOA
        # NODATA: the name exists, the type does not.
        query = dns.message.make_query("mx1.example.net", "AAAA")
        response = await dns.asyncquery.udp(query, host, port=server.port, timeout=2)
        assert response.rcode() == dns.rcode.NOERROR
        assert not response.answer
        assert response.authority[0].rdtype == dns.rdatatype.SOA
        # An empty non-terminal is NODATA, not NXDOMAIN.
        query = dns.message.make_query("ent.example.net", "A")
        response = await dns.asyncquery.udp(query, host, port=server.port, timeout=2)
        assert response.rcode() == dns.rcode.NOERROR
        # Outside every zone: REFUSED, no recursion.
        query = dns.message.make_query("example.com", "A")
        response = await dns.asyncquery.tcp(query, host, port=server.port, timeout=2)
        assert response.rcode() == dns.rcode.REFUSED
        resolver = make_resolver(host, server.port)
        with pytest.raises(dns.resolver.NXDOMAIN):
            await resolver.resolve("nope.example.net", "A")

    run_with_server(check)


def test_malformed_queries_get_formerr_or_nothing_and_server_survives() -> None:
    async def check(server: ZoneServer) -> None:
        loop = asyncio.get_running_loop()
        received: asyncio.Queue[bytes] = asyncio.Queue()

        class Client(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                received.put_nowait(data)

        transport, _ = await loop.create_datagram_endpoint(
            Client, remote_addr=("127.0.0.1", server.port)
        )
        try:
            transport.sendto(b"\x12")  # too short for a header: dropped
            # A header claiming one question, then garbage.
            transport.sendto(struct.pack("!HHHHHH", 0xBEEF, 0x0100, 1, 0, 0, 0) + b"\xff\xff")
            answer = await asyncio.wait_for(received.get(), 2)
            request_id, flags = struct.unpack("!HH", answer[:4])
            assert request_id == 0xBEEF
            assert flags & 0x000F == dns.rcode.FORMERR
            assert flags & dns.flags.QR
        finally:
            transport.close()
        # Still answering.
        resolver = make_resolver("127.0.0.1", server.port)
        assert len(await resolver.resolve("mx1.example.net", "A")) == 1

    run_with_server(check)


def test_large_answer_truncated_over_udp_and_complete_over_tcp() -> None:
    async def check(server: ZoneServer) -> None:
        for i in range(60):
            server.add_record("big.example.net", "TXT", f'"{"x" * 40} record {i}"')
        query = dns.message.make_query("big.example.net", "TXT", use_edns=False)
        response = await dns.asyncquery.udp(query, "127.0.0.1", port=server.port, timeout=2)
        assert response.flags & dns.flags.TC
        response = await dns.asyncquery.tcp(query, "127.0.0.1", port=server.port, timeout=2)
        assert not response.flags & dns.flags.TC
        assert len(response.answer[0]) == 60
        # The resolver falls back to TCP by itself.
        resolver = make_resolver("127.0.0.1", server.port)
        assert len(await resolver.resolve("big.example.net", "TXT")) == 60

    run_with_server(check)


def test_update_add_and_delete_then_resolve() -> None:
    async def check(server: ZoneServer) -> None:
        resolver = make_resolver("127.0.0.1", server.port)
        rcode = await send_update(
            "127.0.0.1",
            server.port,
            "example.org",
            add=[
                ("example.org", 60, "MX", "5 mx.example.org."),
                ("mx.example.org", 60, "A", "127.0.0.7"),
            ],
        )
        assert rcode == dns.rcode.NOERROR
        hosts = await resolve_mx(resolver, "example.org")
        assert hosts == (MXHost(5, "mx.example.org", ("127.0.0.7",)),)
        # Delete one RRset, then a whole name.
        await send_update("127.0.0.1", server.port, "example.org", delete=[("example.org", "MX")])
        with pytest.raises(dns.resolver.NoAnswer):
            await resolver.resolve("example.org", "MX")
        await send_update("127.0.0.1", server.port, "example.org", delete=[("mx.example.org", None)])
        with pytest.raises(dns.resolver.NXDOMAIN):
            await resolver.resolve("mx.example.org", "A")
        # The apex SOA survived, with a higher serial.
        soa = await resolver.resolve("example.org", "SOA")
        assert soa[0].serial > 1  # type: ignore[attr-defined]
        # Outside the zone, or a zone that is not ours: refused.
        with pytest.raises(DNSUpdateError) as info:
            await send_update(
                "127.0.0.1", server.port, "example.org", add=[("a.example.net", 60, "A", "127.0.0.1")]
            )
        assert info.value.rcode == dns.rcode.NOTZONE
        with pytest.raises(DNSUpdateError) as info:
            await send_update(
                "127.0.0.1", server.port, "example.com", add=[("example.com", 60, "A", "127.0.0.1")]
            )
        assert info.value.rcode == dns.rcode.NOTAUTH

    run_with_server(check)


def test_update_prerequisite_failure_changes_nothing() -> None:
    async def check(server: ZoneServer) -> None:
        import dns.update

        update = dns.update.UpdateMessage("example.net.")
        update.absent("mx1.example.net.")  # it exists: YXDOMAIN
        update.add("new.example.net.", 60, "A", "127.0.0.8")
        response = await dns.asyncquery.tcp(update, "127.0.0.1", port=server.port, timeout=2)
        assert response.rcode() == dns.rcode.YXDOMAIN
        resolver = make_resolver("127.0.0.1", server.port)
        with pytest.raises(dns.resolver.NXDOMAIN):
            await resolver.resolve("new.example.net", "A")

    run_with_server(check)


def test_update_refused_from_non_loopback_source() -> None:
    server = ZoneServer("127.0.0.1")
    server.add_zone("example.org")
    import dns.update

    from harness.dns import _Transport

    update = dns.update.UpdateMessage("example.org.")
    update.add("x.example.org.", 60, "A", "127.0.0.1")
    answer = server.handle_wire(update.to_wire(), "192.0.2.1", _Transport.TCP)
    assert answer is not None
    assert dns.message.from_wire(answer).rcode() == dns.rcode.REFUSED
    answer = server.handle_wire(update.to_wire(), "127.0.0.1", _Transport.TCP)
    assert answer is not None
    assert dns.message.from_wire(answer).rcode() == dns.rcode.NOERROR


def test_resolve_mx_order_and_randomised_ties() -> None:
    async def check(server: ZoneServer) -> None:
        resolver = make_resolver("127.0.0.1", server.port)
        hosts = await resolve_mx(resolver, "example.net")
        assert hosts == (
            MXHost(10, "mx1.example.net", ("127.0.0.5",)),
            MXHost(20, "mx2.example.net", ("127.0.0.6", "::1")),
        )
        server.add_record("example.org", "MX", "10 a.example.org")
        server.add_record("example.org", "MX", "10 b.example.org")
        server.add_record("example.org", "MX", "5 c.example.org")
        for label, address in (("a", "127.0.0.11"), ("b", "127.0.0.12"), ("c", "127.0.0.13")):
            server.add_record(f"{label}.example.org", "A", address)
        seen = set()
        rng = random.Random(7)
        for _ in range(20):
            result = await resolve_mx(resolver, "example.org", rng=rng)
            assert result is not None
            assert result[0].name == "c.example.org"
            seen.add(tuple(h.name for h in result[1:]))
        assert seen == {("a.example.org", "b.example.org"), ("b.example.org", "a.example.org")}

    run_with_server(check)


def test_resolve_mx_implicit_null_and_errors() -> None:
    async def check(server: ZoneServer) -> None:
        resolver = make_resolver("127.0.0.1", server.port)
        server.add_record("plain.example.org", "A", "127.0.0.20")
        assert await resolve_mx(resolver, "plain.example.org") == (
            MXHost(0, "plain.example.org", ("127.0.0.20",)),
        )
        assert await resolve_mx(resolver, "plain.example.org", implicit_mx=False) is None
        server.add_record("null.example.org", "MX", "0 .")
        with pytest.raises(PermanentDNSError) as info:
            await resolve_mx(resolver, "null.example.org")
        assert info.value.reason == "null MX"
        with pytest.raises(PermanentDNSError) as info:
            await resolve_mx(resolver, "missing.example.org")
        assert info.value.reason == "NXDOMAIN"
        server.add_record("noaddr.example.org", "MX", "10 nowhere.example.org")
        with pytest.raises(PermanentDNSError):
            await resolve_mx(resolver, "noaddr.example.org")
        # Outside the zones the server answers REFUSED: a temporary failure for the MTA.
        with pytest.raises(TemporaryDNSError):
            await resolve_mx(resolver, "example.com")

    run_with_server(check)


def test_resolve_mx_timeout_is_temporary() -> None:
    async def check() -> None:
        # A UDP socket that never answers, and a closed TCP port.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
            silent.bind(("127.0.0.1", 0))
            resolver = make_resolver("127.0.0.1", silent.getsockname()[1], timeout=0.2)
            with pytest.raises(TemporaryDNSError):
                await resolve_mx(resolver, "example.net")

    asyncio.run(check())


def test_make_resolver_refuses_host_names() -> None:
    with pytest.raises(ValueError):
        make_resolver("localhost", 53)
    resolver = make_resolver("127.0.0.1", 5353)
    assert resolver.nameservers == ["127.0.0.1"]
    assert resolver.port == 5353
    assert resolver.search == []
    assert resolver.cache is None
