"""The recorded byte stream under both clients: connect to an IP, TLS, send, upgrade, close."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from dataclasses import dataclass

from harness.clients.transcript import Transcript

READ_CHUNK = 64 * 1024
CLOSE_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class ErrorKinds:
    """The exception classes one client raises, so both clients share the I/O code."""

    connect: type[Exception]
    closed: type[Exception]
    timeout: type[Exception]
    tls: type[Exception]


def check_ip(host: str, client: str) -> None:
    """Clients connect to IP address literals only: nothing resolves a name through the system."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"{client} connects to IP address literals only, not {host!r} "
            "(resolve names through harness.dns)"
        ) from None


async def open_stream(
    host: str, port: int, *, implicit_tls: bool, ssl_context: ssl.SSLContext | None,
    server_hostname: str | None, timeout: float, transcript: Transcript, errors: ErrorKinds,
    local_address: str | None = None,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect (TLS from the first byte when *implicit_tls*, with *ssl_context* or the system
    defaults; from *local_address* when given, else the one the kernel picks), noting
    everything in *transcript*."""
    tls: ssl.SSLContext | None = None
    if implicit_tls:
        tls = ssl_context if ssl_context is not None else ssl.create_default_context()
    source = f" from {local_address}" if local_address else ""
    transcript.note(f"connecting to {host}:{port}{source}{' (implicit TLS)' if tls else ''}")
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                host, port, ssl=tls, server_hostname=server_hostname if tls is not None else None,
                limit=READ_CHUNK,
                local_addr=(local_address, 0) if local_address else None,
            )
    except TimeoutError:
        transcript.note(f"timeout after {timeout}s while connecting")
        raise errors.timeout(f"connecting to {host}:{port} timed out after {timeout}s") from None
    except ssl.SSLError as exc:
        transcript.note(f"TLS handshake failed: {exc}")
        raise errors.tls(f"TLS handshake with {host}:{port} failed: {exc}") from exc
    except OSError as exc:
        transcript.note(f"connection failed: {exc}")
        raise errors.connect(f"cannot connect to {host}:{port}: {exc}") from exc
    if tls is not None:
        note_tls(writer, transcript)
    return reader, writer


def note_tls(writer: asyncio.StreamWriter, transcript: Transcript) -> None:
    ssl_object = writer.get_extra_info("ssl_object")
    if isinstance(ssl_object, ssl.SSLObject):
        cipher = ssl_object.cipher()
        transcript.note(f"TLS started: {ssl_object.version()} {cipher[0] if cipher else ''}".rstrip())
    else:
        transcript.note("TLS started")


async def send_recorded(
    writer: asyncio.StreamWriter, data: bytes, *, timeout: float, transcript: Transcript,
    errors: ErrorKinds, wire: bytes | None = None,
) -> None:
    """Write exactly *data*, recorded in the transcript, and wait until it is sent. *wire*:
    the octets that go out for it instead (*data* compressed), the transcript keeping *data*."""
    transcript.client(data)
    try:
        writer.write(data if wire is None else wire)
        if writer.transport.get_write_buffer_size() == 0:
            # Everything went to the kernel: the transport cannot be paused, so drain() does
            # not wait (it still raises for a lost connection), and no timer need be armed.
            await writer.drain()
        else:
            async with asyncio.timeout(timeout):
                await writer.drain()
    except TimeoutError:
        transcript.note(f"timeout after {timeout}s while sending")
        raise errors.timeout(f"sending timed out after {timeout}s") from None
    except OSError as exc:
        transcript.note(f"connection lost while sending: {exc}")
        raise errors.closed(f"connection lost while sending: {exc}") from exc


async def upgrade_tls(
    writer: asyncio.StreamWriter, context: ssl.SSLContext, *, server_hostname: str | None,
    timeout: float, transcript: Transcript, errors: ErrorKinds,
) -> None:
    """Negotiate TLS on an open connection (after STARTTLS was accepted)."""
    try:
        async with asyncio.timeout(timeout):
            await writer.start_tls(context, server_hostname=server_hostname)
    except TimeoutError:
        transcript.note(f"timeout after {timeout}s in the TLS handshake")
        raise errors.timeout(f"TLS handshake timed out after {timeout}s") from None
    except ssl.SSLError as exc:
        transcript.note(f"TLS handshake failed: {exc}")
        raise errors.tls(f"TLS handshake failed: {exc}") from exc
    except OSError as exc:
        transcript.note(f"connection lost in the TLS handshake: {exc}")
        raise errors.closed(f"connection lost in the TLS handshake: {exc}") from exc
    note_tls(writer, transcript)


async def close_stream(writer: asyncio.StreamWriter, transcript: Transcript) -> None:
    """Close and wait until the transport is gone (abort if the peer does not finish)."""
    transcript.note("connection closed by client")
    writer.close()
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await writer.wait_closed()
    except TimeoutError:
        writer.transport.abort()
    except (OSError, ssl.SSLError):
        pass  # the peer reset the connection or broke TLS shutdown; it is closed either way
