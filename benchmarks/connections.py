"""Memory per idle connection of the reference agents, and whether it comes back.

    python benchmarks/connections.py [--connections 1000]

Starts `mailharness serve` in a process of its own and reads its resident memory (VmRSS of
/proc/PID/status) before, while N connections are open, and after they closed:

- "no TLS hello": N TCP connections to IMAPS that never send a ClientHello (held until the
  server's handshake timeout or until closed);
- "idle TLS": N IMAPS connections that finished the handshake and read the greeting, then say
  nothing (held below the pre-authentication timeout);

and prints kB per connection for each, and the memory left after they closed. The numbers are
the whole process's, so they include Python's own allocator keeping freed memory for reuse.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.served import ServeProcess  # noqa: E402
from harness.targets import Target  # noqa: E402


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def settle(pid: int, seconds: float = 2.0) -> int:
    time.sleep(seconds)
    return rss_kib(pid)


def measure(pid: int, target: Target, count: int, handshake: bool) -> tuple[int, int, int]:
    """(rss before, rss with *count* connections open, rss after closing them), in KiB."""
    endpoint = target.receiver.imaps
    assert endpoint is not None
    context = target.client_ssl_context()
    before = settle(pid)
    held: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection((endpoint.host, endpoint.port), timeout=30)
            if handshake:
                tls = context.wrap_socket(sock, server_hostname=endpoint.host)
                tls.recv(4096)  # the greeting
                held.append(tls)
            else:
                held.append(sock)
        during = settle(pid)
    finally:
        for sock in held:
            sock.close()
    after = settle(pid, 4.0)
    return before, during, after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.connections + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.connections + 1000), hard))
    work = Path(tempfile.mkdtemp(prefix="mailharness-connections-"))
    served = ServeProcess(work, f"[limits]\nmax_connections = {args.connections + 100}\n"
                                f"max_connections_per_address = {args.connections + 100}\n")
    try:
        target = served.start()
        assert served.process is not None
        for label, handshake in (("no TLS hello", False), ("idle TLS", True)):
            before, during, after = measure(served.process.pid, target, args.connections,
                                            handshake)
            print(f"{label}: {args.connections} connections: RSS {before / 1024:.1f} MiB before, "
                  f"{during / 1024:.1f} MiB with them open "
                  f"({(during - before) / args.connections:.1f} KiB each), "
                  f"{after / 1024:.1f} MiB after they closed", flush=True)
    finally:
        served.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
