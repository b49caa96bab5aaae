"""DNS for tests: an authoritative zone server (UDP+TCP, RFC 2136 UPDATE), resolver settings, MX lookup."""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import logging
import random
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import dns.asyncquery
import dns.asyncresolver
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.resolver
import dns.rrset
import dns.update
import dns.zone
from dns.rdtypes.ANY.MX import MX
from dns.rdtypes.ANY.SOA import SOA

from harness.protocol.smtp.grammar import ip_literal

log = logging.getLogger(__name__)

_IN = dns.rdataclass.IN
#: Answers over UDP without EDNS0 are limited to 512 octets (RFC 1035 §4.2.1).
_UDP_CLASSIC_LIMIT = 512
#: The EDNS0 payload size this server advertises and honours at most.
_OUR_UDP_PAYLOAD = 1232
#: TTL of records added without one.
_DEFAULT_TTL = 60
#: How many CNAME links one answer follows inside our zones.
_MAX_CNAME_CHAIN = 8
#: Types that cannot be added through UPDATE (RFC 2136 §3.4.1.2).
_META_TYPES = frozenset(
    {
        dns.rdatatype.ANY,
        dns.rdatatype.AXFR,
        dns.rdatatype.IXFR,
        dns.rdatatype.MAILA,
        dns.rdatatype.MAILB,
        dns.rdatatype.OPT,
        dns.rdatatype.TSIG,
    }
)


class DNSError(Exception):
    """A DNS lookup failed. ``domain`` is the name looked up, ``reason`` says why."""

    def __init__(self, domain: str, reason: str) -> None:
        super().__init__(f"{domain}: {reason}")
        self.domain = domain
        self.reason = reason


class PermanentDNSError(DNSError):
    """The answer is final: the name does not exist, has a null MX, or no usable host."""


class TemporaryDNSError(DNSError):
    """The lookup may succeed later (timeout, SERVFAIL, refused); the message stays queued."""


class DNSUpdateError(Exception):
    """An RFC 2136 UPDATE was refused or could not be sent. ``rcode`` is the answer, if any."""

    def __init__(self, message: str, rcode: int | None = None) -> None:
        super().__init__(message)
        self.rcode = rcode


def _absolute(name: str) -> dns.name.Name:
    """Every name given to this module is absolute, with or without the trailing dot."""
    return dns.name.from_text(name, origin=dns.name.root)


# --------------------------------------------------------------------------------------------
# The zone server
# --------------------------------------------------------------------------------------------


class _Transport(enum.Enum):
    UDP = "udp"
    TCP = "tcp"


class ZoneServer:
    """An authoritative-only DNS server for the zones it is given; never recursive.

    Answers with AA set; NXDOMAIN for names missing from a zone, NODATA (SOA in the authority
    section) for names without the asked type, REFUSED for names outside every zone. Accepts
    RFC 2136 UPDATE from loopback addresses. UDP answers that do not fit are truncated (TC);
    the same port serves TCP."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = ip_literal(host)
        self.port = port
        self._zones: dict[dns.name.Name, dns.zone.Zone] = {}
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tcp_transports: set[asyncio.Transport] = set()

    # -- zone data --------------------------------------------------------------------------

    def add_zone(self, origin: str, text: str | None = None) -> None:
        """Add (or replace) the zone *origin*; *text* is zone-file text relative to it (TTLs
        default to 60). An SOA and an NS record are made up when the text has none."""
        name = _absolute(origin)
        zone = dns.zone.from_text(
            # A default TTL, so records may leave theirs out; a $TTL in the text overrides it.
            f"$TTL {_DEFAULT_TTL}\n{text or ''}",
            origin=name,
            relativize=False,
            check_origin=False,
            allow_include=False,
        )
        apex = zone.find_node(name, create=True)
        if apex.get_rdataset(_IN, dns.rdatatype.SOA) is None:
            soa = dns.rdata.from_text(
                _IN,
                dns.rdatatype.SOA,
                f"ns.{name} hostmaster.{name} 1 3600 600 86400 60",
            )
            apex.find_rdataset(_IN, dns.rdatatype.SOA, create=True).add(soa, 3600)
        if apex.get_rdataset(_IN, dns.rdatatype.NS) is None:
            ns = dns.rdata.from_text(_IN, dns.rdatatype.NS, f"ns.{name}")
            apex.find_rdataset(_IN, dns.rdatatype.NS, create=True).add(ns, 3600)
        self._zones[name] = zone

    def zones(self) -> list[str]:
        return sorted(origin.to_text() for origin in self._zones)

    def add_record(self, name: str, rdtype: str, value: str, ttl: int = 60) -> None:
        """Add one record; *name* is absolute and must fall inside a zone of this server.
        Names in *value* are absolute too (``"10 mx.example.net"``)."""
        owner = _absolute(name)
        zone = self._zone_for(owner)
        if zone is None:
            raise ValueError(f"{name!r} is not inside any zone of this server")
        rdata = dns.rdata.from_text(_IN, rdtype, value, origin=dns.name.root, relativize=False)
        _add_rdata(zone, owner, rdata, ttl)

    def remove_records(self, name: str, rdtype: str | None = None) -> None:
        """Remove the *rdtype* RRset of *name*, or all its records. A zone's SOA (and, when no
        type is named, its apex NS) stay: a zone without them is no zone."""
        owner = _absolute(name)
        zone = self._zone_for(owner)
        if zone is None:
            raise ValueError(f"{name!r} is not inside any zone of this server")
        if rdtype is None:
            _delete_name(zone, owner)
        else:
            _delete_rrset(zone, owner, dns.rdatatype.from_text(rdtype))

    def _zone_for(self, name: dns.name.Name) -> dns.zone.Zone | None:
        """The zone with the longest origin that contains *name*."""
        best: dns.zone.Zone | None = None
        for origin, zone in self._zones.items():
            if name.is_subdomain(origin) and (
                best is None or len(origin) > len(best.origin or dns.name.root)
            ):
                best = zone
        return best

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind UDP and TCP on the same port (a free one when the port is 0)."""
        loop = asyncio.get_running_loop()
        attempts = 20 if self.port == 0 else 1
        last_error: OSError | None = None
        for _ in range(attempts):
            udp, _protocol = await loop.create_datagram_endpoint(
                lambda: _UDPProtocol(self), local_addr=(self.host, self.port)
            )
            port = int(udp.get_extra_info("sockname")[1])
            try:
                tcp = await loop.create_server(lambda: _TCPProtocol(self), self.host, port)
            except OSError as exc:  # the TCP side of this port is taken: try another
                udp.close()
                last_error = exc
                continue
            self._udp, self._tcp, self.port = udp, tcp, port
            return
        assert last_error is not None
        raise last_error

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            server, self._tcp = self._tcp, None
            server.close()
            for transport in list(self._tcp_transports):
                transport.close()
            await server.wait_closed()

    async def __aenter__(self) -> ZoneServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- answering --------------------------------------------------------------------------

    def handle_wire(self, wire: bytes, source: str, transport: _Transport) -> bytes | None:
        """Answer one request; None means drop it. Never raises on bad input."""
        try:
            request = dns.message.from_wire(wire)
        except Exception:  # any malformed input: FORMERR when the header is readable
            return _formerr_for(wire)
        if request.flags & dns.flags.QR:
            return None  # a response sent to a server: drop it, do not answer answers
        try:
            response = dns.message.make_response(request, our_payload=_OUR_UDP_PAYLOAD)
        except dns.exception.DNSException:
            return _formerr_for(wire)
        response.flags &= ~dns.flags.RA  # never recursive
        opcode = request.opcode()
        if opcode == dns.opcode.QUERY:
            self._answer_query(request, response)
        elif opcode == dns.opcode.UPDATE:
            assert isinstance(request, dns.update.UpdateMessage)
            response.set_rcode(self._apply_update(request, source))
        else:
            response.set_rcode(dns.rcode.NOTIMP)
        if transport is _Transport.TCP:
            return response.to_wire(max_size=65535)
        limit = _UDP_CLASSIC_LIMIT
        if request.edns >= 0:
            limit = max(_UDP_CLASSIC_LIMIT, min(request.payload, _OUR_UDP_PAYLOAD))
        return response.to_wire(max_size=limit, prefer_truncation=True)

    def _answer_query(self, request: dns.message.Message, response: dns.message.Message) -> None:
        if len(request.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return
        question = request.question[0]
        qtype = question.rdtype
        if question.rdclass not in (_IN, dns.rdataclass.ANY) or qtype in (
            dns.rdatatype.AXFR,
            dns.rdatatype.IXFR,
        ):
            response.set_rcode(dns.rcode.REFUSED)
            return
        name = question.name
        zone = self._zone_for(name)
        if zone is None:
            response.set_rcode(dns.rcode.REFUSED)  # not ours, and we never recurse
            return
        response.flags |= dns.flags.AA
        for _ in range(_MAX_CNAME_CHAIN):
            node = zone.get_node(name)
            if node is None:
                if not _is_empty_non_terminal(zone, name):
                    response.set_rcode(dns.rcode.NXDOMAIN)
                _add_negative_soa(response, zone)
                return
            if qtype == dns.rdatatype.ANY:
                for rdataset in node.rdatasets:
                    _add_to_section(response, response.answer, name, rdataset)
                return
            rdataset = node.get_rdataset(_IN, qtype)
            if rdataset is not None and len(rdataset) > 0:
                _add_to_section(response, response.answer, name, rdataset)
                self._add_additional(response, rdataset)
                return
            cname = node.get_rdataset(_IN, dns.rdatatype.CNAME)
            if cname is None or len(cname) == 0:
                _add_negative_soa(response, zone)  # NODATA
                return
            _add_to_section(response, response.answer, name, cname)
            name = next(iter(cname)).target
            next_zone = self._zone_for(name)
            if next_zone is None:
                return  # the chain leaves our zones: the client follows it elsewhere
            zone = next_zone

    def _add_additional(self, response: dns.message.Message, rdataset: dns.rdataset.Rdataset) -> None:
        """Addresses of MX exchanges and NS targets we know, as a courtesy (RFC 1035 §3.3.9)."""
        if rdataset.rdtype not in (dns.rdatatype.MX, dns.rdatatype.NS):
            return
        for rdata in rdataset:
            target: dns.name.Name = rdata.exchange if isinstance(rdata, MX) else rdata.target
            zone = self._zone_for(target)
            node = zone.get_node(target) if zone is not None else None
            if node is None:
                continue
            for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                addresses = node.get_rdataset(_IN, rdtype)
                if addresses is not None and len(addresses) > 0:
                    _add_to_section(response, response.additional, target, addresses)

    # -- RFC 2136 UPDATE --------------------------------------------------------------------

    def _apply_update(self, update: dns.update.UpdateMessage, source: str) -> dns.rcode.Rcode:
        if len(update.zone) != 1 or update.zone[0].rdtype != dns.rdatatype.SOA:
            return dns.rcode.FORMERR  # RFC 2136 §3.1.1
        if not _is_loopback(source):
            return dns.rcode.REFUSED  # only tests on this machine may change the zones
        zone = self._zones.get(update.zone[0].name)
        if zone is None:
            # RFC 2136 §3.1.2: "If the ZNAME ... is not a zone for which the server is
            # authoritative ... the server MUST return an error (NOTAUTH)".
            return dns.rcode.NOTAUTH
        origin = update.zone[0].name
        rcode = _check_prerequisites(zone, origin, update.prerequisite)
        if rcode != dns.rcode.NOERROR:
            return rcode
        rcode = _prescan_updates(origin, update.update)
        if rcode != dns.rcode.NOERROR:
            return rcode
        changed = False
        for rrset in update.update:
            changed |= _apply_one(zone, origin, rrset)
        if changed:
            _bump_serial(zone, origin)
        return dns.rcode.NOERROR


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _formerr_for(wire: bytes) -> bytes | None:
    """A bare FORMERR echoing the request's id and opcode, or None when even that is unreadable."""
    if len(wire) < 12:
        return None
    request_id, flags = struct.unpack("!HH", wire[:4])
    if flags & dns.flags.QR:
        return None
    opcode_bits = flags & 0x7800
    response_flags = dns.flags.QR | opcode_bits | dns.rcode.FORMERR
    return struct.pack("!HHHHHH", request_id, response_flags, 0, 0, 0, 0)


def _is_empty_non_terminal(zone: dns.zone.Zone, name: dns.name.Name) -> bool:
    """A name with no records but with names below it exists: NODATA, not NXDOMAIN."""
    return any(owner != name and owner.is_subdomain(name) for owner in zone.nodes)


def _add_to_section(
    response: dns.message.Message,
    section: list[dns.rrset.RRset],
    name: dns.name.Name,
    rdataset: dns.rdataset.Rdataset,
) -> None:
    rrset = response.find_rrset(section, name, _IN, rdataset.rdtype, create=True)
    for rdata in rdataset:
        rrset.add(rdata, rdataset.ttl)


def _add_negative_soa(response: dns.message.Message, zone: dns.zone.Zone) -> None:
    """RFC 2308 §3: the SOA goes in the authority section, TTL = min(SOA TTL, MINIMUM)."""
    origin = zone.origin
    assert origin is not None
    soa_set = zone.find_rdataset(origin, dns.rdatatype.SOA)
    soa = next(iter(soa_set))
    assert isinstance(soa, SOA)
    rrset = response.find_rrset(response.authority, origin, _IN, dns.rdatatype.SOA, create=True)
    rrset.add(soa, min(soa_set.ttl, soa.minimum))


def _add_rdata(zone: dns.zone.Zone, owner: dns.name.Name, rdata: dns.rdata.Rdata, ttl: int) -> bool:
    """Add one record; CNAME and other data never share a name (RFC 2181 §10.1)."""
    node = zone.find_node(owner, create=True)
    has_cname = node.get_rdataset(_IN, dns.rdatatype.CNAME) is not None
    if rdata.rdtype == dns.rdatatype.CNAME:
        others = [r for r in node.rdatasets if r.rdtype != dns.rdatatype.CNAME]
        if others:
            return False
    elif has_cname:
        return False
    if rdata.rdtype == dns.rdatatype.SOA:
        if owner != zone.origin:
            return False
        node.delete_rdataset(_IN, dns.rdatatype.SOA)
    rdataset = node.find_rdataset(_IN, rdata.rdtype, create=True)
    if rdata in rdataset and rdataset.ttl == ttl:
        return False
    rdataset.add(rdata)
    rdataset.ttl = ttl  # the last added TTL wins for the whole RRset
    return True


def _delete_rrset(
    zone: dns.zone.Zone, owner: dns.name.Name, rdtype: dns.rdatatype.RdataType
) -> bool:
    node = zone.get_node(owner)
    if node is None or rdtype == dns.rdatatype.SOA:
        return False
    if owner == zone.origin and rdtype == dns.rdatatype.NS:
        return False  # RFC 2136 §3.4.2.3: apex SOA and NS are never deleted this way
    if node.get_rdataset(_IN, rdtype) is None:
        return False
    node.delete_rdataset(_IN, rdtype)
    if not node.rdatasets and owner != zone.origin:
        zone.delete_node(owner)
    return True


def _delete_name(zone: dns.zone.Zone, owner: dns.name.Name) -> bool:
    node = zone.get_node(owner)
    if node is None:
        return False
    if owner == zone.origin:
        keep = (dns.rdatatype.SOA, dns.rdatatype.NS)
        doomed = [r.rdtype for r in node.rdatasets if r.rdtype not in keep]
        for rdtype in doomed:
            node.delete_rdataset(_IN, rdtype)
        return bool(doomed)
    zone.delete_node(owner)
    return True


def _delete_rdata(zone: dns.zone.Zone, owner: dns.name.Name, rdata: dns.rdata.Rdata) -> bool:
    node = zone.get_node(owner)
    if node is None or rdata.rdtype == dns.rdatatype.SOA:
        return False
    rdataset = node.get_rdataset(_IN, rdata.rdtype)
    if rdataset is None or rdata not in rdataset:
        return False
    if owner == zone.origin and rdata.rdtype == dns.rdatatype.NS and len(rdataset) == 1:
        return False  # RFC 2136 §3.4.2.4: the last apex NS stays
    remaining = [r for r in rdataset if r != rdata]
    if remaining:
        node.replace_rdataset(dns.rdataset.from_rdata_list(rdataset.ttl, remaining))
    else:
        node.delete_rdataset(_IN, rdata.rdtype)
    if not node.rdatasets and owner != zone.origin:
        zone.delete_node(owner)
    return True


def _check_prerequisites(
    zone: dns.zone.Zone, origin: dns.name.Name, prerequisites: list[dns.rrset.RRset]
) -> dns.rcode.Rcode:
    """RFC 2136 §3.2: every prerequisite must hold, or nothing is changed."""
    value_dependent: dict[tuple[dns.name.Name, dns.rdatatype.RdataType], set[dns.rdata.Rdata]] = {}
    for rrset in prerequisites:
        if rrset.ttl != 0:
            return dns.rcode.FORMERR
        if not rrset.name.is_subdomain(origin):
            return dns.rcode.NOTZONE
        node = zone.get_node(rrset.name)
        in_use = node is not None and bool(node.rdatasets)
        exists = node is not None and node.get_rdataset(_IN, rrset.rdtype) is not None
        if rrset.deleting == dns.rdataclass.ANY:
            if len(rrset) != 0:
                return dns.rcode.FORMERR
            if rrset.rdtype == dns.rdatatype.ANY:
                if not in_use:
                    return dns.rcode.NXDOMAIN
            elif not exists:
                return dns.rcode.NXRRSET
        elif rrset.deleting == dns.rdataclass.NONE:
            if len(rrset) != 0:
                return dns.rcode.FORMERR
            if rrset.rdtype == dns.rdatatype.ANY:
                if in_use:
                    return dns.rcode.YXDOMAIN
            elif exists:
                return dns.rcode.YXRRSET
        elif rrset.deleting is None:
            value_dependent.setdefault((rrset.name, rrset.rdtype), set()).update(rrset)
        else:
            return dns.rcode.FORMERR
    for (name, rdtype), wanted in value_dependent.items():
        current = zone.get_rdataset(name, rdtype)
        if current is None or set(current) != wanted:
            return dns.rcode.NXRRSET
    return dns.rcode.NOERROR


def _prescan_updates(origin: dns.name.Name, updates: list[dns.rrset.RRset]) -> dns.rcode.Rcode:
    """RFC 2136 §3.4.1: check every update before applying any."""
    for rrset in updates:
        if not rrset.name.is_subdomain(origin):
            return dns.rcode.NOTZONE
        if rrset.deleting is None:
            if rrset.rdtype in _META_TYPES:
                return dns.rcode.FORMERR
        elif rrset.deleting == dns.rdataclass.ANY:
            if rrset.ttl != 0 or len(rrset) != 0:
                return dns.rcode.FORMERR
            if rrset.rdtype in _META_TYPES - {dns.rdatatype.ANY}:
                return dns.rcode.FORMERR
        elif rrset.deleting == dns.rdataclass.NONE:
            if rrset.ttl != 0 or rrset.rdtype in _META_TYPES:
                return dns.rcode.FORMERR
        else:
            return dns.rcode.FORMERR
    return dns.rcode.NOERROR


def _apply_one(zone: dns.zone.Zone, origin: dns.name.Name, rrset: dns.rrset.RRset) -> bool:
    """RFC 2136 §3.4.2: apply one prescanned update RR; True when the zone changed."""
    if rrset.deleting is None:
        changed = False
        for rdata in rrset:
            changed |= _add_rdata(zone, rrset.name, rdata, rrset.ttl)
        return changed
    if rrset.deleting == dns.rdataclass.ANY:
        if rrset.rdtype == dns.rdatatype.ANY:
            return _delete_name(zone, rrset.name)
        return _delete_rrset(zone, rrset.name, rrset.rdtype)
    changed = False
    for rdata in rrset:
        changed |= _delete_rdata(zone, rrset.name, rdata)
    return changed


def _bump_serial(zone: dns.zone.Zone, origin: dns.name.Name) -> None:
    """RFC 2136 §3.6: the SOA serial increases after a change."""
    soa_set = zone.find_rdataset(origin, dns.rdatatype.SOA)
    soa = next(iter(soa_set))
    assert isinstance(soa, SOA)
    bumped = soa.replace(serial=(soa.serial + 1) % 2**32)
    zone.replace_rdataset(origin, dns.rdataset.from_rdata_list(soa_set.ttl, [bumped]))


class _UDPProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: ZoneServer) -> None:
        self._server = server
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        try:
            answer = self._server.handle_wire(data, str(addr[0]), _Transport.UDP)
        except Exception:  # a bug must not stop the server answering others
            log.exception("zone server failed on a UDP request from %s", addr)
            return
        if answer is not None and self._transport is not None:
            self._transport.sendto(answer, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("zone server UDP error: %s", exc)


class _TCPProtocol(asyncio.Protocol):
    """RFC 1035 §4.2.2: each message is preceded by a two-octet length."""

    def __init__(self, server: ZoneServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._peer = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._server._tcp_transports.add(transport)
        peer = transport.get_extra_info("peername")
        self._peer = str(peer[0]) if peer else ""

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._server._tcp_transports.discard(self._transport)
            self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= 2 and self._transport is not None:
            (length,) = struct.unpack("!H", self._buffer[:2])
            if len(self._buffer) < 2 + length:
                return
            wire = bytes(self._buffer[2 : 2 + length])
            del self._buffer[: 2 + length]
            try:
                answer = self._server.handle_wire(wire, self._peer, _Transport.TCP)
            except Exception:
                log.exception("zone server failed on a TCP request from %s", self._peer)
                answer = None
            if answer is None:
                self._transport.close()
                return
            self._transport.write(struct.pack("!H", len(answer)) + answer)


# --------------------------------------------------------------------------------------------
# Client side
# --------------------------------------------------------------------------------------------


def make_resolver(host: str, port: int, *, timeout: float = 2.0) -> dns.asyncresolver.Resolver:
    """A resolver that asks exactly ``host:port`` — never the system's configuration."""
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [ip_literal(host)]
    resolver.port = port
    resolver.timeout = timeout
    resolver.lifetime = timeout
    resolver.search = []
    resolver.domain = dns.name.root
    resolver.use_search_by_default = False
    resolver.cache = None
    resolver.retry_servfail = False
    return resolver


async def send_update(
    host: str,
    port: int,
    zone: str,
    *,
    add: Sequence[tuple[str, int, str, str]] = (),
    delete: Sequence[tuple[str, str | None]] = (),
    timeout: float = 2.0,  # noqa: ASYNC109 - the timeout is part of this API
) -> int:
    """Send one RFC 2136 UPDATE over TCP: deletions first, then additions (name, ttl, type,
    value). Names are absolute. Returns the rcode (NOERROR); raises DNSUpdateError otherwise."""
    update = dns.update.UpdateMessage(_absolute(zone))
    for name, rdtype in delete:
        if rdtype is None:
            update.delete(_absolute(name))
        else:
            update.delete(_absolute(name), rdtype)
    for name, ttl, rdtype, value in add:
        rdata = dns.rdata.from_text(_IN, rdtype, value, origin=dns.name.root, relativize=False)
        update.add(_absolute(name), ttl, rdata)
    try:
        response = await dns.asyncquery.tcp(update, ip_literal(host), timeout=timeout, port=port)
    except (dns.exception.DNSException, OSError) as exc:
        raise DNSUpdateError(f"UPDATE of {zone} to {host}:{port} failed: {exc!r}") from exc
    rcode = response.rcode()
    if rcode != dns.rcode.NOERROR:
        raise DNSUpdateError(
            f"UPDATE of {zone} refused: {dns.rcode.to_text(rcode)}", rcode=int(rcode)
        )
    return int(rcode)


@dataclass(frozen=True, slots=True)
class MXHost:
    """One mail exchanger: its preference, name (no trailing dot) and addresses in order."""

    preference: int
    name: str
    addresses: tuple[str, ...]


async def _lookup_addresses(
    resolver: dns.asyncresolver.Resolver, name: dns.name.Name
) -> tuple[tuple[str, ...], str]:
    """A then AAAA addresses of *name*, and the reason of a temporary failure ("" if none)."""
    addresses: list[str] = []
    temporary = ""
    for rdtype in ("A", "AAAA"):
        try:
            answer = await resolver.resolve(name, rdtype, raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.YXDOMAIN, dns.resolver.NoAnswer):
            continue
        except dns.exception.DNSException as exc:
            temporary = f"{rdtype} lookup of {name} failed: {exc.__class__.__name__}"
            continue
        if answer.rrset is not None:
            addresses.extend(rdata.to_text() for rdata in answer.rrset)
    return tuple(addresses), temporary


async def resolve_mx(
    resolver: dns.asyncresolver.Resolver,
    domain: str,
    *,
    implicit_mx: bool = True,
    rng: random.Random | None = None,
) -> tuple[MXHost, ...] | None:
    """The hosts to deliver *domain*'s mail to, most preferred first (RFC 5321 §5.1).

    Returns None when the domain has no MX records and *implicit_mx* is False. Raises
    PermanentDNSError (NXDOMAIN, null MX, no usable host) or TemporaryDNSError."""
    name = _absolute(domain)
    try:
        answer = await resolver.resolve(name, "MX", raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN as exc:
        # RFC 5321 §5.1: "If a non-existent domain error is returned, this situation MUST be
        # reported as an error."
        raise PermanentDNSError(domain, "NXDOMAIN") from exc
    except dns.resolver.YXDOMAIN as exc:
        raise PermanentDNSError(domain, "YXDOMAIN") from exc
    except dns.exception.DNSException as exc:
        # RFC 5321 §5.1: "If a temporary error is returned, the message MUST be queued and
        # retried later".
        raise TemporaryDNSError(domain, f"MX lookup failed: {exc.__class__.__name__}") from exc

    records = [r for r in (answer.rrset or ()) if isinstance(r, MX)]
    if not records:
        if not implicit_mx:
            return None
        # RFC 5321 §5.1: "If an empty list of MXs is returned, the address is treated as if it
        # was associated with an implicit MX RR, with a preference of 0, pointing to that host."
        addresses, temporary = await _lookup_addresses(resolver, name)
        if addresses:
            return (MXHost(0, name.to_text(omit_final_dot=True), addresses),)
        if temporary:
            raise TemporaryDNSError(domain, temporary)
        raise PermanentDNSError(domain, "no MX and no address records")

    if any(r.exchange == dns.name.root for r in records):
        # RFC 7505 §3: "SMTP clients MUST NOT try to deliver to a domain that advertises a
        # null MX" (and "A domain that advertises a null MX MUST NOT advertise any other MX").
        raise PermanentDNSError(domain, "null MX")

    # RFC 5321 §5.1: "If there are multiple destinations with the same preference and there is
    # no clear reason to favor one ..., then the sender-SMTP MUST randomize them".
    (rng or random.SystemRandom()).shuffle(records)
    records.sort(key=lambda r: r.preference)  # stable: ties keep their shuffled order

    hosts: list[MXHost] = []
    temporary = ""
    for record in records:
        addresses, reason = await _lookup_addresses(resolver, record.exchange)
        temporary = temporary or reason
        if addresses:
            hosts.append(
                MXHost(record.preference, record.exchange.to_text(omit_final_dot=True), addresses)
            )
    if hosts:
        return tuple(hosts)
    if temporary:
        raise TemporaryDNSError(domain, temporary)
    # RFC 5321 §5.1: "If MX records are present, but none of them are usable, this situation
    # MUST be reported as an error."
    raise PermanentDNSError(domain, "no MX host has an address")
