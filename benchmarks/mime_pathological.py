"""Cost of the message-structure code on pathological messages: time and peak memory of
ENVELOPE, BODYSTRUCTURE and BODY[1] for 10,000 parts, a 1 MB header line, and nesting 1,000
deep (cut at mime.MAX_DEPTH).

    python benchmarks/mime_pathological.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.protocol.imap.commands import Section  # noqa: E402
from harness.protocol.imap.mime import bodystructure, envelope, section_bytes, split_message  # noqa: E402


def messages() -> dict[str, bytes]:
    parts = b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i for i in range(10_000))
    return {
        "10,000 parts": b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + parts + b"--b--\r\n",
        "1 MB header line": b"Subject: " + b"x" * 1_000_000 + b"\r\nFrom: a@b.test\r\n\r\nbody\r\n",
        "nesting 1,000 deep": b"".join(b"Content-Type: message/rfc822\r\n\r\n" for _ in range(1000)) + b"x\r\n",
    }


def _answer(data: bytes) -> None:
    envelope(split_message(data)[0])
    bodystructure(data)
    section_bytes(data, Section(part=(1,)))


def measure(data: bytes) -> tuple[float, float]:
    """Seconds (untraced) and peak traced MiB (a second, traced run) of one answer."""
    start = time.perf_counter()
    _answer(data)
    elapsed = time.perf_counter() - start
    tracemalloc.start()
    _answer(data)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed, peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for name, data in messages().items():
        runs = [measure(data) for _ in range(args.repeat)]
        best = min(t for t, _ in runs)
        peak = max(m for _, m in runs)
        print(f"{name:<20} {len(data) / 2**20:6.2f} MiB message: best {best * 1000:8.1f} ms "
              f"(ENVELOPE + BODYSTRUCTURE + BODY[1]), peak {peak:6.1f} MiB traced")


if __name__ == "__main__":
    main()
