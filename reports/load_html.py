"""Render the JSON results of `mailharness load` (harness/load/runner.py, ``LoadResult.to_json``)
as one self-contained HTML page: the verdict and the counts, throughput and latency over time,
a latency histogram per kind, and the violations with the transcripts of their sessions.

The charts are SVG written here by hand: no plotting library, no JavaScript, no external
resource, so the page opens anywhere, offline, years later, and a test can read the charts'
structure with an XML parser. The input is read defensively: a key that is missing, of the
wrong type, or new (a count added by a later version of the runner) is shown generically or
left out, never a crash, since a report is most wanted for the run that went wrong."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from reports.html import visible

DEFAULT_TITLE = "mailharness load report"

#: Series colours (also what the browser test looks for in a screenshot): a message accepted
#: and its submission latency share a colour, as do delivered/delivery and IMAP.
COLOURS: dict[str, str] = {
    "accepted": "#0969da", "submit": "#0969da",
    "delivered": "#1a7f37", "delivery": "#1a7f37",
    "imap": "#bc4c00",
    "errors": "#cf222e",
}
#: Colours for series this module does not know yet (new counts or latency kinds).
PALETTE = ("#8250df", "#bf3989", "#1b7c83", "#953800", "#4d2d00", "#6e7781")
#: Plot-area backgrounds, one per chart kind: pale, flat, and distinct, so that a screenshot
#: test can find where each chart's plot area is drawn.
PLOT_FILL = {"throughput": "#f3f8ff", "latency": "#fff7f0", "histogram": "#f4fbf5"}
MARKER = "#57606a"

#: The counts in the order shown; any other count follows, sorted.
COUNT_ORDER = ("accepted", "delivered", "refused", "duplicates", "refused_but_arrived",
               "errors", "violations")
#: The timeline series in the throughput chart; any other numeric key of a point follows.
RATE_ORDER = ("accepted", "delivered", "imap")
#: Keys of a timeline point that are not per-interval event counts drawn as rates.
_POINT_NOT_RATES = frozenset({"t", "latency", "errors", "violations"})
LATENCY_ORDER = ("submit", "delivery", "imap")
PERCENTILES = ("p50", "p90", "p99", "max", "mean")
_KNOWN_KEYS = frozenset({"seconds", "load_seconds", "interrupted", "counts", "rates", "latency",
                         "histograms", "timeline", "errors", "violation_counts", "violations",
                         "smtp_commands", "imap_commands"})
#: Violations whose transcripts are shown unfolded; past it they are folded (<details>).
OPEN_VIOLATIONS = 10

# Chart geometry, in SVG user units (the drawing scales to the page width).
WIDTH, HEIGHT = 960, 320
LEFT, RIGHT, TOP, BOTTOM = 68, 20, 40, 46
HIST_WIDTH, HIST_HEIGHT = 460, 260
#: Timelines up to this many points also get a dot per point (a single point is no line).
DOTS_UP_TO = 120


# --- reading the data ------------------------------------------------------------------------

def _num(value: object) -> float:
    """A finite number, or 0: JSON from another version or a hand-edited file may hold anything."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    return float(value) if math.isfinite(value) else 0.0


def _is_num(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _seq(value: object) -> Sequence[Any]:
    return value if isinstance(value, (list, tuple)) else ()


def _ordered(keys: Iterable[str], first: Sequence[str]) -> list[str]:
    """*keys* with those of *first* first (in that order), the rest sorted."""
    present = set(keys)
    return [k for k in first if k in present] + sorted(present - set(first))


def _colour(name: str, extra: dict[str, str]) -> str:
    if name in COLOURS:
        return COLOURS[name]
    if name not in extra:
        extra[name] = PALETTE[len(extra) % len(PALETTE)]
    return extra[name]


# --- formatting ------------------------------------------------------------------------------

def _e(value: object) -> str:
    """Escaped text for HTML and SVG alike, control characters shown (reports.html.visible)."""
    return escape(visible(str(value)), quote=True)


def _count(value: object) -> str:
    number = _num(value)
    return f"{int(number):,}" if number == int(number) else f"{number:,.2f}"


def _ms(seconds: float) -> str:
    ms = 1000 * seconds
    if ms == 0:
        return "0"
    if ms < 1:
        return f"{ms:.3f}"
    return f"{ms:.1f}" if ms < 1000 else f"{ms:,.0f}"


def _seconds_label(seconds: float) -> str:
    """A latency tick label: 0.1 ms, 20 ms, 1 s, 2 min."""
    if seconds < 1:
        return f"{1000 * seconds:g} ms"
    if seconds < 120:
        return f"{seconds:g} s"
    return f"{seconds / 60:g} min"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)} min {rest:.0f} s"


def _tick(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 or value == int(value) else f"{value:g}"


def _f(value: float) -> str:
    """A coordinate: one decimal is finer than any screen at this size."""
    return f"{value:.1f}"


def nice_ticks(high: float, count: int = 5) -> list[float]:
    """Ticks from 0 to at least *high* at a step of 1, 2 or 5 times a power of ten, about
    *count* of them; 0 to 1 when *high* is not positive."""
    if high <= 0:
        return [0.0, 0.5, 1.0]
    raw = high / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    n = math.ceil(high / step - 1e-9)
    return [round(i * step, 10) for i in range(n + 1)]


def log_ticks(low: float, high: float) -> list[float]:
    """Decades covering *low* to *high* (both positive); with 1, 2 and 5 times each decade when
    the range is two decades or less."""
    lo = math.floor(math.log10(low) + 1e-9)
    hi = max(math.ceil(math.log10(high) - 1e-9), lo + 1)
    steps = (1, 2, 5) if hi - lo <= 2 else (1,)
    ticks = [m * 10.0 ** e for e in range(lo, hi) for m in steps]
    return [*ticks, 10.0 ** hi]


# --- SVG -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scale:
    """Maps data values on [lo, hi] (linear, or logarithmic) to pixels on [start, end]."""

    lo: float
    hi: float
    start: float
    end: float
    log: bool = False

    def __call__(self, value: float) -> float:
        if self.log:
            value, lo, hi = (math.log10(max(value, self.lo)), math.log10(self.lo),
                             math.log10(self.hi))
        else:
            lo, hi = self.lo, self.hi
        share = (value - lo) / (hi - lo) if hi > lo else 0.0
        return self.start + share * (self.end - self.start)


@dataclass
class Series:
    """One line of a chart: its name (a count or a latency kind and percentile), what the
    legend says, its colour and dash, and its points in data units, split where data is
    missing."""

    name: str
    label: str
    colour: str
    dash: str = ""
    #: Stroke width: the first throughput series is wider, so that a line drawn over it (as
    #: delivered over accepted when mail arrives at once) leaves it visible at the edges.
    width: float = 2.5
    segments: list[list[tuple[float, float]]] = field(default_factory=list)

    def points(self) -> list[tuple[float, float]]:
        return [p for segment in self.segments for p in segment]


def _svg_open(chart_id: str, title: str, description: str, width: int, height: int) -> list[str]:
    return [f'<svg id="{_e(chart_id)}" class="chart" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" aria-label="{_e(title)}: '
            f'{_e(description)}">',
            f"<title>{_e(title)}</title>", f"<desc>{_e(description)}</desc>"]


def no_data_chart(chart_id: str, title: str, why: str = "no data", *, width: int = WIDTH,
                  height: int = HEIGHT) -> str:
    """A chart frame saying there is nothing to draw: the page keeps its shape and ids."""
    parts = _svg_open(chart_id, title, why, width, height)
    parts += [f'<rect class="frame" x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" '
              f'fill="#f6f8fa" stroke="#d1d9e0"/>',
              f'<text class="no-data" x="{width / 2:g}" y="{height / 2:g}" '
              f'text-anchor="middle">{_e(why)}</text>', "</svg>"]
    return "\n".join(parts)


def _legend(series: Sequence[Series], x: float, y: float) -> list[str]:
    parts = ['<g class="legend">']
    for s in series:
        dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        parts += [f'<g class="legend-item" data-series="{_e(s.name)}">',
                  f'<line x1="{_f(x)}" y1="{_f(y)}" x2="{_f(x + 22)}" y2="{_f(y)}" '
                  f'stroke="{s.colour}" stroke-width="3"{dash}/>',
                  f'<text x="{_f(x + 28)}" y="{_f(y + 4)}">{_e(s.label)}</text>', "</g>"]
        x += 44 + 8 * len(s.label)
    parts.append("</g>")
    return parts


def _line_chart(chart_id: str, kind: str, title: str, description: str, series: Sequence[Series],
                xs: Scale, ys: Scale, *, y_ticks: Sequence[float], y_label: str,
                tick_label: Any = _tick, load_end: float | None = None,
                marks: Sequence[tuple[float, str]] = ()) -> str:
    """Axes, grid, one <path> per series (``M``/``L`` commands, a new ``M`` after a gap), a dot
    per point on short timelines, a dashed marker where the load phase ends, and *marks*
    (red ticks under the plot, e.g. intervals with violations)."""
    parts = _svg_open(chart_id, title, description, WIDTH, HEIGHT)
    x0, x1, y0, y1 = LEFT, WIDTH - RIGHT, HEIGHT - BOTTOM, TOP
    parts.append(f'<rect class="plot" x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" '
                 f'fill="{PLOT_FILL[kind]}"/>')
    parts.append('<g class="axis y-axis">')
    for value in y_ticks:
        y = ys(value)
        parts += [f'<line class="grid" x1="{x0}" y1="{_f(y)}" x2="{x1}" y2="{_f(y)}" '
                  f'stroke="#d8dee4" stroke-width="1"/>',
                  f'<text class="tick" x="{x0 - 6}" y="{_f(y + 4)}" text-anchor="end">'
                  f"{_e(tick_label(value))}</text>"]
    parts.append(f'<text class="axis-label" transform="translate(14 {(y0 + y1) / 2:g}) '
                 f'rotate(-90)" text-anchor="middle">{_e(y_label)}</text></g>')
    parts.append('<g class="axis x-axis">')
    parts.append(f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="{MARKER}"/>')
    for value in nice_ticks(xs.hi, 8):
        if value > xs.hi + 1e-9:
            continue
        x = xs(value)
        parts += [f'<line x1="{_f(x)}" y1="{y0}" x2="{_f(x)}" y2="{y0 + 5}" stroke="{MARKER}"/>',
                  f'<text class="tick" x="{_f(x)}" y="{y0 + 18}" text-anchor="middle">'
                  f"{_e(_tick(value))}</text>"]
    parts.append(f'<text class="axis-label" x="{(x0 + x1) / 2:g}" y="{HEIGHT - 8}" '
                 f'text-anchor="middle">seconds since the start</text></g>')
    if load_end is not None and 0 < load_end <= xs.hi:
        x = xs(load_end)
        parts += ['<g class="load-end">',
                  f"<title>the load phase ends at {load_end:.1f} s; readers only after it</title>",
                  f'<line x1="{_f(x)}" y1="{y1}" x2="{_f(x)}" y2="{y0}" stroke="{MARKER}" '
                  f'stroke-width="1.5" stroke-dasharray="6 4"/>',
                  (f'<text x="{_f(x + 4)}" y="{y1 + 14}">load ends</text>' if x + 70 < x1
                   else f'<text x="{_f(x - 4)}" y="{y1 + 14}" text-anchor="end">load ends</text>'),
                  "</g>"]
    for at, what in marks:
        x = xs(at)
        parts += ['<g class="mark">', f"<title>{_e(what)}</title>",
                  f'<path d="M{_f(x)} {y0 - 1} l-5 -9 h10 z" fill="{COLOURS["errors"]}"/>', "</g>"]
    for s in series:
        commands = []
        for segment in s.segments:
            for i, (vx, vy) in enumerate(segment):
                commands.append(f"{'L' if i else 'M'}{_f(xs(vx))} {_f(ys(vy))}")
        dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        parts.append(f'<g class="series" data-series="{_e(s.name)}">')
        parts.append(f"<title>{_e(s.label)}</title>")
        parts.append(f'<path class="line" d="{" ".join(commands)}" fill="none" '
                     f'stroke="{s.colour}" stroke-width="{s.width:g}" '
                     f'stroke-linejoin="round"{dash}/>')
        if len(s.points()) <= DOTS_UP_TO and s.name != "errors":
            radius = s.width / 2 + 1.5
            parts += [f'<circle class="dot" cx="{_f(xs(vx))}" cy="{_f(ys(vy))}" '
                      f'r="{radius:g}" fill="{s.colour}"/>' for vx, vy in s.points()]
        parts.append("</g>")
    parts += _legend(series, x0, 18)
    parts.append("</svg>")
    return "\n".join(parts)


# --- the charts ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Timeline:
    interval: float
    points: tuple[Mapping[str, Any], ...]
    load_end: float
    end: float

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Timeline:
        timeline = _map(data.get("timeline"))
        interval = _num(timeline.get("interval")) or 1.0
        points = tuple(_map(p) for p in _seq(timeline.get("points")) if isinstance(p, Mapping))
        load_end = _num(data.get("load_seconds")) or _num(data.get("seconds"))
        last = max((_num(p.get("t")) for p in points), default=0.0) + interval if points else 0.0
        return cls(interval, points, load_end, max(last, load_end, 1.0))

    def x(self, point: Mapping[str, Any]) -> float:
        """Where a point is drawn: the middle of its interval."""
        return _num(point.get("t")) + self.interval / 2


def throughput_chart(data: Mapping[str, Any], extra: dict[str, str]) -> str:
    """Per-second rates of the timeline's counts: accepted, delivered, IMAP commands (and any
    other count a point has; errors only when there were some)."""
    chart_id, title = "chart-throughput", "Throughput over time"
    tl = Timeline.of(data)
    if not tl.points:
        return no_data_chart(chart_id, title, "no data: the results have no timeline")
    names = _ordered({k for p in tl.points for k, v in p.items()
                      if k not in _POINT_NOT_RATES and _is_num(v)} | set(RATE_ORDER), RATE_ORDER)
    if any(_num(p.get("errors")) for p in tl.points):
        names.append("errors")
    series: list[Series] = []
    for name in names:
        label = "IMAP commands/s" if name == "imap" else f"{name.replace('_', ' ')}/s"
        s = Series(name, label, _colour(name, extra), "5 3" if name == "errors" else "",
                   4.5 if not series else 2.5)
        s.segments.append([(tl.x(p), _num(p.get(name)) / tl.interval) for p in tl.points])
        series.append(s)
    top = max((y for s in series for _, y in s.points()), default=0.0)
    y_ticks = nice_ticks(top)
    xs = Scale(0.0, tl.end, LEFT, WIDTH - RIGHT)
    ys = Scale(0.0, y_ticks[-1], HEIGHT - BOTTOM, TOP)
    marks = [(tl.x(p), f"{_count(p.get('violations'))} violation(s) at {_num(p.get('t')):g} s")
             for p in tl.points if _num(p.get("violations"))]
    description = (f"events per second in {tl.interval:g} s intervals, {len(tl.points)} points; "
                   f"the load phase ends at {tl.load_end:.1f} s")
    return _line_chart(chart_id, "throughput", title, description, series, xs, ys,
                       y_ticks=y_ticks, y_label="per second", load_end=tl.load_end, marks=marks)


def latency_chart(data: Mapping[str, Any], extra: dict[str, str]) -> str:
    """p50 (solid) and p99 (dashed) of each latency kind per interval, on a logarithmic axis;
    an interval without a measurement of a kind is a gap in its line."""
    chart_id, title = "chart-latency", "Latency over time"
    tl = Timeline.of(data)
    kinds = _ordered({k for p in tl.points for k in _map(p.get("latency"))}, LATENCY_ORDER)
    series: list[Series] = []
    for kind in kinds:
        for pct, dash in (("p50", ""), ("p99", "6 3")):
            s = Series(f"{kind}-{pct}", f"{kind} {pct}", _colour(kind, extra), dash)
            segment: list[tuple[float, float]] = []
            for p in tl.points:
                summary = _map(_map(p.get("latency")).get(kind))
                value = _num(summary.get(pct))
                if _num(summary.get("count")) and value > 0:
                    segment.append((tl.x(p), value))
                elif segment:
                    s.segments.append(segment)
                    segment = []
            if segment:
                s.segments.append(segment)
            if s.segments:
                series.append(s)
    values = [y for s in series for _, y in s.points()]
    if not values:
        return no_data_chart(chart_id, title, "no data: no latency was measured")
    y_ticks = log_ticks(min(values), max(values))
    xs = Scale(0.0, tl.end, LEFT, WIDTH - RIGHT)
    ys = Scale(y_ticks[0], y_ticks[-1], HEIGHT - BOTTOM, TOP, log=True)
    description = (f"p50 (solid) and p99 (dashed) per {tl.interval:g} s interval of "
                   f"{', '.join(kinds)}, logarithmic axis")
    return _line_chart(chart_id, "latency", title, description, series, xs, ys,
                       y_ticks=y_ticks, y_label="latency (log scale)", tick_label=_seconds_label,
                       load_end=tl.load_end)


def histogram_chart(kind: str, histogram: Mapping[str, Any], extra: dict[str, str]) -> str | None:
    """One bar per non-empty bucket, on a logarithmic latency axis (bucket *i* spans
    ``base * growth ** i`` to ``base * growth ** (i + 1)`` seconds), with p50 and p99 marked;
    None when the kind has no measurement."""
    base, growth = _num(histogram.get("base")), _num(histogram.get("growth"))
    counts = [_num(n) for n in _seq(histogram.get("counts"))]
    if base <= 0 or growth <= 1 or not any(counts):
        return None
    bars = [(base * growth ** i, base * growth ** (i + 1), n) for i, n in enumerate(counts) if n > 0]
    x_ticks = log_ticks(bars[0][0], bars[-1][1])
    y_ticks = nice_ticks(max(n for _, _, n in bars), 4)
    left, right, top, bottom = 56, 26, 30, 42
    x0, x1, y0, y1 = left, HIST_WIDTH - right, HIST_HEIGHT - bottom, top
    xs = Scale(x_ticks[0], x_ticks[-1], x0, x1, log=True)
    ys = Scale(0.0, y_ticks[-1], y0, y1)
    colour = _colour(kind, extra)
    total = int(sum(counts))
    title = f"{kind} latency histogram"
    parts = _svg_open(f"chart-histogram-{kind}", title,
                      f"{total:,} measurements in {len(bars)} logarithmic buckets",
                      HIST_WIDTH, HIST_HEIGHT)
    parts.append(f'<rect class="plot" x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" '
                 f'fill="{PLOT_FILL["histogram"]}"/>')
    parts.append(f'<text class="chart-title" x="{x0}" y="18">{_e(kind)}: '
                 f"{total:,} measurements</text>")
    parts.append('<g class="axis y-axis">')
    for value in y_ticks:
        y = ys(value)
        parts += [f'<line class="grid" x1="{x0}" y1="{_f(y)}" x2="{x1}" y2="{_f(y)}" '
                  f'stroke="#d8dee4"/>',
                  f'<text class="tick" x="{x0 - 6}" y="{_f(y + 4)}" text-anchor="end">'
                  f"{_e(_tick(value))}</text>"]
    parts.append(f'<text class="axis-label" transform="translate(14 {(y0 + y1) / 2:g}) '
                 'rotate(-90)" text-anchor="middle">count</text></g>')
    parts.append('<g class="axis x-axis">')
    parts.append(f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="{MARKER}"/>')
    for value in x_ticks:
        x = xs(value)
        parts += [f'<line x1="{_f(x)}" y1="{y0}" x2="{_f(x)}" y2="{y0 + 5}" stroke="{MARKER}"/>',
                  f'<text class="tick" x="{_f(x)}" y="{y0 + 18}" text-anchor="middle">'
                  f"{_e(_seconds_label(value))}</text>"]
    parts.append(f'<text class="axis-label" x="{(x0 + x1) / 2:g}" y="{HIST_HEIGHT - 6}" '
                 'text-anchor="middle">latency (log scale)</text></g>')
    parts.append('<g class="bars">')
    for lower, upper, n in bars:
        xa, xb, y = xs(lower), xs(upper), ys(n)
        parts += [f'<rect class="bar" x="{_f(xa)}" y="{_f(y)}" width="{max(xb - xa, 1.0):.2f}" '
                  f'height="{_f(y0 - y)}" fill="{colour}">',
                  f"<title>{_ms(lower)}-{_ms(upper)} ms: {int(n):,}</title></rect>"]
    parts.append("</g>")
    for pct, label_y in (("p50", y1 + 12), ("p99", y1 + 26)):
        value = _num(histogram.get(pct))
        if value > 0:
            x = xs(min(max(value, x_ticks[0]), x_ticks[-1]))
            parts += [f'<g class="percentile" data-percentile="{pct}">',
                      f'<line x1="{_f(x)}" y1="{y1}" x2="{_f(x)}" y2="{y0}" stroke="{MARKER}" '
                      'stroke-dasharray="4 3"/>',
                      f'<text x="{_f(x + 3)}" y="{label_y}">{pct} {_ms(value)} ms</text>', "</g>"]
    parts.append("</svg>")
    return "\n".join(parts)


def histogram_charts(data: Mapping[str, Any], extra: dict[str, str]) -> tuple[list[str], list[str]]:
    """The histogram charts of the kinds with data, and the kinds without."""
    histograms = _map(data.get("histograms"))
    charts, empty = [], []
    for kind in _ordered(histograms, LATENCY_ORDER):
        chart = histogram_chart(kind, _map(histograms[kind]), extra)
        if chart is None:
            empty.append(kind)
        else:
            charts.append(chart)
    return charts, empty


# --- tables and the page ---------------------------------------------------------------------

_NUM = ' class="num"'


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], *, numeric_from: int = 1,
           css: str = "") -> str:
    """A table of already-escaped cells; columns from *numeric_from* on align right."""
    cls = f' class="{css}"' if css else ""
    out = [f"<table{cls}><thead><tr>"]
    out += [f'<th{_NUM if i >= numeric_from else ""}>{_e(h)}</th>'
            for i, h in enumerate(head)]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f'<td{_NUM if i >= numeric_from else ""}>{c}</td>'
                                    for i, c in enumerate(row)) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _empty(text: str) -> str:
    return f'<p class="muted">{_e(text)}</p>'


def latency_table(data: Mapping[str, Any]) -> str:
    latency = _map(data.get("latency"))
    if not latency:
        return _empty("No latency measured.")
    rows = []
    for kind in _ordered(latency, LATENCY_ORDER):
        summary = _map(latency[kind])
        rows.append([_e(kind), _count(summary.get("count")),
                     *(_ms(_num(summary.get(p))) for p in PERCENTILES)])
    return _table(["kind", "count", *(f"{p} (ms)" for p in PERCENTILES)], rows)


def by_name_table(table: Mapping[str, Any], what: str) -> str:
    """Latency percentiles per submission step or IMAP command, the most frequent first."""
    if not table:
        return _empty(f"No {what} measured.")
    names = sorted(table, key=lambda n: (-_num(_map(table[n]).get("count")), n))
    rows = [[_e(name), _count(_map(table[name]).get("count")),
             *(_ms(_num(_map(table[name]).get(p))) for p in PERCENTILES)] for name in names]
    return _table([what, "count", *(f"{p} (ms)" for p in PERCENTILES)], rows)


def _counter_table(counter: Mapping[str, Any], what: str, empty: str) -> str:
    if not counter:
        return _empty(empty)
    rows = [[_e(k), _count(counter[k])] for k in sorted(counter, key=lambda k: (-_num(counter[k]), k))]
    return _table([what, "count"], rows)


def _transcripts(violation: Mapping[str, Any]) -> str:
    transcripts = _map(violation.get("transcripts"))
    if not transcripts:
        return _empty("No transcript kept.")
    out = []
    for session, lines in transcripts.items():
        text = "\n".join(str(line) for line in _seq(lines)) or "(no lines)"
        out.append(f'<div class="transcript"><div class="tname">{_e(session)}</div>'
                   f"<pre>{_e(text)}</pre></div>")
    return "".join(out)


def violations_section(data: Mapping[str, Any]) -> str:
    violations = [_map(v) for v in _seq(data.get("violations")) if isinstance(v, Mapping)]
    total = int(sum(_num(n) for n in _map(data.get("violation_counts")).values()))
    if not violations:
        return _empty("No violation kept." if total else "No invariant violated.")
    out = []
    if total > len(violations):
        out.append(_empty(f"{len(violations)} of {total:,} violations are kept in full; "
                          "the others are only counted above."))
    for n, v in enumerate(violations, 1):
        sessions = [str(s) for s in _seq(v.get("sessions"))]
        opened = " open" if n <= OPEN_VIOLATIONS else ""
        out.append(
            f'<section class="violation" id="violation-{n}">'
            f'<h3><span class="badge v-fail">{_e(v.get("requirement", "?"))}</span> '
            f'<span class="mono">{_e(v.get("token", ""))}</span> '
            f'<span class="muted">at {_num(v.get("at")):.3f} s</span></h3>'
            f'<p class="detail">{_e(v.get("detail", ""))}</p>'
            f'<p class="sessions">sessions: {_e(", ".join(sessions)) if sessions else "none"}</p>'
            f"<details{opened}><summary>transcripts</summary>{_transcripts(v)}</details>"
            "</section>")
    return "".join(out)


def _value(value: object) -> str:
    if _is_num(value):
        return _count(value)
    return _e(json.dumps(value, ensure_ascii=False, default=str)
              if not isinstance(value, str) else value)


def other_section(data: Mapping[str, Any]) -> str:
    """Whatever a later runner adds at the top level, shown as it is rather than dropped."""
    rows = []
    for key in sorted(k for k in data if k not in _KNOWN_KEYS):
        value = data[key]
        if isinstance(value, Mapping) and value:
            rows += [[_e(f"{key}.{k}"), _value(v)] for k, v in value.items()]
        else:
            rows.append([_e(key), _value(value)])
    if not rows:
        return ""
    return "<h2 id=\"other\">Other figures</h2>" + _table(["figure", "value"], rows)


def _header(data: Mapping[str, Any], title: str) -> str:
    counts = _map(data.get("counts"))
    violations = int(_num(counts.get("violations"))) or int(
        sum(_num(n) for n in _map(data.get("violation_counts")).values()))
    if violations:
        verdict, css = f"{violations:,} invariant violation{'s' if violations != 1 else ''}", "v-fail"
    elif counts:
        verdict, css = "no invariant violated", "v-pass"
    else:
        verdict, css = "no counts in these results", "v-none"
    tl = Timeline.of(data)
    load = _num(data.get("load_seconds")) or _num(data.get("seconds"))
    when = [f"load phase {_duration(load)}"] if load else []
    if tl.points:
        when.append(f"timeline to {_duration(tl.end)} in {tl.interval:g} s intervals")
    if data.get("interrupted"):
        when.append("interrupted (Ctrl-C)")
    rates = _map(data.get("rates"))
    rate_text = [f"{k.replace('_', ' ')} {_num(v):,.1f}" for k, v in sorted(rates.items())
                 if _is_num(v)]
    badges = []
    for key in _ordered((k for k, v in counts.items() if _is_num(v)), COUNT_ORDER):
        bad = key in ("errors", "violations", "duplicates", "refused_but_arrived") and _num(counts[key])
        badges.append(f'<span class="badge{" v-fail" if bad else ""}">'
                      f"{_e(key.replace('_', ' '))} {_count(counts[key])}</span>")
    return (
        '<header class="page"><div class="inner">'
        f"<h1>{_e(title)}</h1>"
        f'<div class="verdict {css}" id="verdict">{_e(verdict)}</div>'
        f'<div class="meta">{_e(" · ".join(when + [", ".join(rate_text)] if rate_text else when))}'
        "</div>"
        f'<div class="counts" id="counts">{"".join(badges)}</div>'
        '<nav class="toc"><a href="#throughput">throughput</a><a href="#latency">latency</a>'
        '<a href="#histograms">histograms</a><a href="#tables">tables</a>'
        '<a href="#violations">violations</a></nav>'
        "</div></header>")


_CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg: #ffffff; --soft: #f6f8fa;
  --pass: #1a7f37; --pass-bg: #dafbe1; --fail: #cf222e; --fail-bg: #ffebe9;
  --mono: ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas, "Liberation Mono", monospace; }
* { box-sizing: border-box; }
html { font-size: 15px; }
body { margin: 0; color: var(--fg); background: var(--bg); line-height: 1.5;
  font-family: -apple-system, BlinkMacSystemFont, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif; }
main { max-width: 1320px; margin: 0 auto; padding: 0 28px 64px; }
header.page { border-bottom: 1px solid var(--line); background: var(--soft); }
header.page .inner { max-width: 1320px; margin: 0 auto; padding: 22px 28px 18px; }
h1 { font-size: 1.6rem; margin: 0 0 4px; font-weight: 600; }
h2 { font-size: 1.25rem; margin: 36px 0 12px; padding-bottom: 6px; border-bottom: 1px solid var(--line); font-weight: 600; }
h3 { font-size: 1rem; margin: 0 0 6px; font-weight: 600; }
a { color: #0969da; text-decoration: none; }
nav.toc { margin-top: 10px; font-size: 0.9rem; }
nav.toc a { margin-right: 16px; }
.muted { color: var(--muted); }
.mono, code { font-family: var(--mono); font-size: 0.85rem; }
.verdict { display: inline-block; font-weight: 700; padding: 2px 12px; border-radius: 4px; margin: 4px 0; }
.v-pass { color: var(--pass); background: var(--pass-bg); }
.v-fail { color: var(--fail); background: var(--fail-bg); }
.v-none { color: var(--muted); background: #eff2f5; }
.meta { color: var(--muted); font-size: 0.9rem; margin: 4px 0 8px; }
.counts { display: flex; flex-wrap: wrap; gap: 6px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 0.78rem; font-weight: 600;
  white-space: nowrap; background: #eff2f5; color: var(--fg); }
.badge.v-fail { color: var(--fail); background: var(--fail-bg); }
figure { margin: 0 0 8px; }
figcaption { color: var(--muted); font-size: 0.85rem; }
svg.chart { display: block; width: 100%; max-width: 960px; height: auto; font-family: inherit; }
svg.chart text { font-size: 12px; fill: var(--muted); }
svg.chart .legend text, svg.chart .chart-title { fill: var(--fg); font-size: 13px; }
svg.chart .no-data { font-size: 16px; font-style: italic; }
.histograms { display: flex; flex-wrap: wrap; gap: 16px; }
.histograms svg.chart { max-width: 460px; flex: 1 1 380px; }
table { border-collapse: collapse; font-size: 0.9rem; margin: 4px 0 16px; min-width: 420px; }
th, td { text-align: left; vertical-align: top; padding: 4px 10px; border-bottom: 1px solid var(--line); }
th { font-size: 0.78rem; text-transform: uppercase; letter-spacing: 0.04em; color: var(--muted); }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.tables { display: flex; flex-wrap: wrap; gap: 0 40px; }
section.violation { border: 1px solid var(--line); border-left: 5px solid var(--fail); border-radius: 6px;
  padding: 10px 14px; margin: 12px 0; }
section.violation .detail { margin: 2px 0; }
section.violation .sessions { margin: 2px 0; color: var(--muted); font-size: 0.88rem; }
details summary { cursor: pointer; color: var(--muted); font-size: 0.88rem; }
.transcript { border: 1px solid var(--line); border-radius: 6px; margin: 8px 0; overflow: hidden; }
.transcript .tname { background: var(--soft); padding: 4px 12px; font-weight: 600; font-size: 0.85rem;
  border-bottom: 1px solid var(--line); font-family: var(--mono); }
pre { font-family: var(--mono); font-size: 0.8rem; margin: 0; padding: 8px 12px; overflow-x: auto;
  white-space: pre-wrap; word-break: break-word; }
"""


def render_load_report(data: dict[str, Any], *, title: str = DEFAULT_TITLE) -> str:
    """The whole report as one HTML page: inline CSS and SVG, no script, no external resource."""
    data = dict(_map(data))
    extra: dict[str, str] = {}
    histograms, no_histogram = histogram_charts(data, extra)
    tl = Timeline.of(data)
    body = [
        '<h2 id="throughput">Throughput over time</h2>',
        f"<figure>{throughput_chart(data, extra)}<figcaption>Events per second in each "
        f"{tl.interval:g} s interval, drawn at its middle; the dashed line is where the load phase "
        "ends and only the readers go on (the last interval may be cut short). Red triangles: "
        "intervals with violations.</figcaption></figure>",
        '<h2 id="latency">Latency over time</h2>',
        f"<figure>{latency_chart(data, extra)}<figcaption>Submission (MAIL to the reply after "
        "the data), delivery (250 to found over IMAP) and IMAP command latency per interval: "
        "p50 solid, p99 dashed, logarithmic axis. Percentiles are bucket edges, within 10 %."
        "</figcaption></figure>",
        '<h2 id="histograms">Latency histograms</h2>',
        '<div class="histograms">' + ("".join(histograms) or no_data_chart(
            "chart-histogram", "Latency histograms", "no data: no latency was measured",
            width=HIST_WIDTH, height=HIST_HEIGHT)) + "</div>",
    ]
    if no_histogram and histograms:
        body.append(_empty(f"No measurement of: {', '.join(no_histogram)}."))
    body += [
        '<h2 id="tables">Figures</h2><div class="tables">',
        f"<div><h3>Latency percentiles</h3>{latency_table(data)}</div>",
        f"<div><h3>Errors by kind</h3>"
        f"{_counter_table(_map(data.get('errors')), 'kind', 'No errors.')}</div>",
        f"<div><h3>Violations by requirement</h3>"
        f"{_counter_table(_map(data.get('violation_counts')), 'requirement', 'No violations.')}"
        "</div></div>",
        '<div class="tables">',
        f"<div><h3>Submission by step</h3>"
        f"{by_name_table(_map(data.get('smtp_commands')), 'step')}</div>",
        f"<div><h3>IMAP by command</h3>"
        f"{by_name_table(_map(data.get('imap_commands')), 'command')}</div></div>",
        other_section(data),
        '<h2 id="violations">Violations</h2>',
        violations_section(data),
    ]
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="generator" content="mailharness">', f"<title>{_e(title)}</title>",
        f"<style>{_CSS}</style>", "</head>", "<body>", _header(data, title), "<main>",
        *body, "</main>", "</body>", "</html>", ""])


def write_load_report(path: Path, data: dict[str, Any]) -> None:
    """Write the report as UTF-8 (anything unencodable shown as a backslash escape), making
    the file's directory if it is not there yet."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_load_report(data), encoding="utf-8", errors="backslashreplace")
