"""The load report as a browser draws it: a real short run against the embedded agents, its
report rendered by headless Chromium, and the screenshot read back (a PNG decoder of the
standard library's zlib and struct) to prove that the charts are drawn, not blank: each chart's
plot area is found by its own background tint, and the series colours must be inside it. The
DOM Chromium builds must have the charts' ids.

Needs /usr/bin/chromium (Debian's chromium package; .ci/run installs it), skipped without."""

from __future__ import annotations

import io
import re
import struct
import subprocess
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.load.runner import LoadOptions, run_load
from mailharness.embedded import embedded_target
from reports.load_html import COLOURS, MARKER, PLOT_FILL, write_load_report

CHROMIUM = Path("/usr/bin/chromium")
WINDOW = (1280, 2400)
#: A series pixel: within this of the colour in every channel (edges are blended, cores not).
TOLERANCE = 40
#: Pixels whose channels differ less than this are grey (text, axes, tints): not a series.
GREY_SPREAD = 40

pytestmark = pytest.mark.timeout(300)


# --- PNG --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Image:
    width: int
    height: int
    #: RGB, 3 octets a pixel, rows top to bottom (alpha dropped).
    rgb: bytes

    def row(self, y: int) -> bytes:
        return self.rgb[3 * self.width * y:3 * self.width * (y + 1)]


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _unfilter(kind: int, line: bytearray, prev: bytes, bpp: int) -> None:
    """Undo one scanline's filter in place (PNG spec §9.2: None, Sub, Up, Average, Paeth)."""
    n = len(line)
    if kind == 0:
        return
    if kind == 1:
        for i in range(bpp, n):
            line[i] = (line[i] + line[i - bpp]) & 0xFF
    elif kind == 2:
        # Octet-wise addition mod 256 of the whole row at once, on two big integers.
        low = int.from_bytes(b"\x7f" * n, "big")
        high = int.from_bytes(b"\x80" * n, "big")
        a, b = int.from_bytes(line, "big"), int.from_bytes(prev, "big")
        line[:] = (((a & low) + (b & low)) ^ ((a ^ b) & high)).to_bytes(n, "big")
    elif kind == 3:
        for i in range(n):
            left = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
    elif kind == 4:
        for i in range(n):
            if i >= bpp:
                line[i] = (line[i] + _paeth(line[i - bpp], prev[i], prev[i - bpp])) & 0xFF
            else:
                line[i] = (line[i] + prev[i]) & 0xFF
    else:
        raise ValueError(f"PNG filter type {kind}")


def decode_png(data: bytes) -> Image:
    """An 8-bit RGB or RGBA, non-interlaced PNG (what Chromium's screenshots are)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, []
    header: tuple[int, ...] = ()
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    stride = width * bpp
    raw = zlib.decompress(b"".join(idat))
    assert len(raw) == height * (stride + 1)
    rgb = bytearray()
    prev = bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        line = bytearray(raw[start + 1:start + 1 + stride])
        _unfilter(raw[start], line, prev, bpp)
        prev = bytes(line)
        if bpp == 4:
            del line[3::4]
        rgb += line
    return Image(width, height, bytes(rgb))


# --- what the screenshot shows ----------------------------------------------------------------

def _rgb(colour: str) -> tuple[int, int, int]:
    value = int(colour.lstrip("#"), 16)
    return value >> 16, (value >> 8) & 0xFF, value & 0xFF


@dataclass
class Box:
    left: int
    top: int
    right: int
    bottom: int

    def __contains__(self, point: tuple[int, int]) -> bool:
        x, y = point
        return self.left <= x <= self.right and self.top <= y <= self.bottom

    @property
    def width(self) -> int:
        return self.right - self.left


@dataclass
class Survey:
    """One pass over the screenshot: where each plot-area tint is, and every coloured pixel."""

    tints: dict[str, Box]
    coloured: list[tuple[int, int, tuple[int, int, int]]]

    def near(self, colour: str, box: Box) -> list[tuple[int, int]]:
        r, g, b = _rgb(colour)
        return [(x, y) for x, y, (pr, pg, pb) in self.coloured if (x, y) in box
                and abs(pr - r) <= TOLERANCE and abs(pg - g) <= TOLERANCE
                and abs(pb - b) <= TOLERANCE]


def survey(image: Image) -> Survey:
    tints = {_rgb(colour): name for name, colour in PLOT_FILL.items()}
    boxes: dict[str, Box] = {}
    coloured = []
    for y in range(image.height):
        row = image.row(y)
        for x, pixel in enumerate(zip(row[0::3], row[1::3], row[2::3], strict=True)):
            name = tints.get(pixel)
            if name is not None:
                box = boxes.get(name)
                if box is None:
                    boxes[name] = Box(x, y, x, y)
                else:
                    box.left, box.right = min(box.left, x), max(box.right, x)
                    box.bottom = y
            elif max(pixel) - min(pixel) >= GREY_SPREAD:
                coloured.append((x, y, pixel))
    return Survey(boxes, coloured)


def marker_pixels(image: Image, box: Box, x: int) -> int:
    """Pixels of the load-end marker in the columns around *x*, in *box*'s rows: its grey, or
    that grey blended with the plot's light tint where the 1.5-unit line falls across two pixel
    columns (at the plot's right edge it always does): a grey (channels within GREY_SPREAD of
    one another) darker than the tint and the grid. The columns may pass the box's right edge by
    a few pixels, where a load that ends with the last interval puts the marker."""
    r, g, b = _rgb(MARKER)
    found = 0
    for y in range(box.top, box.bottom + 1):
        row = image.row(y)
        for column in range(max(x - 3, box.left), min(x + 3, image.width - 1) + 1):
            pixel = row[3 * column:3 * column + 3]
            grey = max(pixel) - min(pixel) < GREY_SPREAD
            found += grey and all(c - 10 <= p <= 160 for p, c in zip(pixel, (r, g, b), strict=True))
    return found


# --- the run and the browser ------------------------------------------------------------------

@dataclass(frozen=True)
class Rendered:
    data: dict[str, Any]
    report: Path
    work: Path


def chromium(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium with its own profile and nothing in the background that would go
    out to the network."""
    return subprocess.run(
        [str(CHROMIUM), "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--force-device-scale-factor=1",
         f"--user-data-dir={work / 'chromium-profile'}", *args],
        capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rendered]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (Debian's chromium package; .ci/run installs "
                    "it): the report cannot be rendered in a browser here")
    work = tmp_path_factory.mktemp("load-report")
    with embedded_target(prefix="mailharness-load-report-") as target:
        result = run_load(target, LoadOptions(duration=6, max_messages=30, senders=2),
                          out=io.StringIO())
    assert result.ok, result.summary()
    data = result.to_json()
    report = work / "load.html"
    write_load_report(report, data)
    yield Rendered(data, report, work)


@pytest.fixture(scope="module")
def screenshot(rendered: Rendered) -> Image:
    png = rendered.work / "load.png"
    done = chromium(rendered.work, f"--screenshot={png}",
                    f"--window-size={WINDOW[0]},{WINDOW[1]}", rendered.report.as_uri())
    assert png.exists() and png.stat().st_size, done.stderr[-2000:]
    image = decode_png(png.read_bytes())
    assert (image.width, image.height) == WINDOW
    return image


def test_the_rendered_dom_has_every_chart(rendered: Rendered) -> None:
    done = chromium(rendered.work, "--dump-dom", rendered.report.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    ids = set(re.findall(r'<svg[^>]*\bid="([^"]+)"', done.stdout))
    assert {"chart-throughput", "chart-latency", "chart-histogram-submit",
            "chart-histogram-delivery", "chart-histogram-imap"} <= ids, ids
    assert "no invariant violated" in done.stdout


def test_the_charts_are_drawn_in_their_plot_areas(rendered: Rendered, screenshot: Image) -> None:
    seen = survey(screenshot)
    assert set(seen.tints) == set(PLOT_FILL), f"plot areas found: {sorted(seen.tints)}"
    throughput, latency, histograms = (seen.tints[k] for k in ("throughput", "latency",
                                                                "histogram"))
    assert throughput.bottom < latency.top and latency.bottom < histograms.top
    assert throughput.width > 600 and latency.width > 600

    points = rendered.data["timeline"]["points"]
    assert len(points) >= 2  # the load phase lasts at least the runner's first 1 s tick
    for name in ("accepted", "delivered", "imap"):
        pixels = seen.near(COLOURS[name], throughput)
        assert len(pixels) >= 15, f"{name}: {len(pixels)} pixels in the throughput chart"
    # A line, not a dot: delivered (drawn over accepted) runs across the intervals.
    xs = [x for x, _ in seen.near(COLOURS["delivered"], throughput)]
    assert max(xs) - min(xs) >= throughput.width * 0.8 * (len(points) - 1) / (len(points) + 1)

    for kind in ("submit", "delivery", "imap"):
        assert len(seen.near(COLOURS[kind], latency)) >= 10, f"{kind} in the latency chart"
        assert len(seen.near(COLOURS[kind], histograms)) >= 30, f"{kind} histogram bars"

    # The load-end marker, where load_seconds falls on the x axis (the chart's domain is
    # 0 to the end of the last interval).
    interval = rendered.data["timeline"]["interval"]
    end = max(points[-1]["t"] + interval, rendered.data["load_seconds"], 1.0)
    x = throughput.left + round(throughput.width * rendered.data["load_seconds"] / end)
    assert marker_pixels(screenshot, throughput, x) >= 0.3 * (throughput.bottom - throughput.top)
