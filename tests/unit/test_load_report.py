"""The HTML report of `mailharness load` (reports/load_html.py), from results shaped as
``LoadResult.to_json`` writes them: each chart's SVG read back with ElementTree (a point per
timeline point, the legend, the load-end marker, a bar per non-empty bucket), the tables, the
escaping of what servers said, and a page for empty or malformed results instead of a crash."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from reports.load_html import (
    COLOURS,
    log_ticks,
    nice_ticks,
    render_load_report,
    write_load_report,
)

KINDS = ("submit", "delivery", "imap")
INTERVAL = 2.0
N_POINTS = 12
LOAD_END = 18.0
#: Points (by index) without a delivery latency: a gap in the delivery lines.
NO_DELIVERY = {0, 5, 11}


def _summary(p50: float, count: int = 10) -> dict[str, float]:
    return {"count": count, "p50": p50, "p90": 2 * p50, "p99": 4 * p50, "max": 8 * p50,
            "mean": 1.5 * p50}


def _histogram(counts: list[int], p50: float) -> dict[str, Any]:
    return {"base": 1e-4, "growth": 1.1, "counts": counts, **_summary(p50, sum(counts))}


def results() -> dict[str, Any]:
    """A run of 24 s in 2 s intervals, the load phase ending at 18 s, two violations kept (of
    three) with transcripts holding markup and an escape character."""
    points = []
    for i in range(N_POINTS):
        load = i * INTERVAL < LOAD_END
        latency = {"submit": _summary(0.004 + 0.0001 * i), "imap": _summary(0.0015)}
        if i not in NO_DELIVERY:
            latency["delivery"] = _summary(0.25 + 0.01 * i)
        if not load:
            del latency["submit"]
        points.append({"t": i * INTERVAL, "accepted": 40 + i if load else 0,
                       "delivered": 38 + i if i not in NO_DELIVERY else 0, "imap": 120,
                       "errors": 1 if i == 3 else 0, "violations": 2 if i == 7 else 0,
                       "latency": latency})
    transcript = ["   0.001 S: 220 <mx.example> ready & waiting",
                  "   0.002 C: EHLO client\x1b[31m", "   0.003 S: 250 OK"]
    violation = {"requirement": "HANDOFF-RESPONSIBILITY", "token": "tok<1>&",
                 "detail": "accepted for <b>bob</b> & never arrived", "at": 14.25,
                 "sessions": ["submit 0", "imap reader 1"],
                 "transcripts": {"submit 0": transcript, "imap reader 1": ["   0.010 C: a1 NOOP"]}}
    return {
        "seconds": LOAD_END, "load_seconds": LOAD_END, "interrupted": False,
        "counts": {"accepted": 400, "refused": 1, "delivered": 397, "duplicates": 0,
                   "refused_but_arrived": 0, "errors": 1, "violations": 3, "moves": 17},
        "rates": {"accepted_per_second": 22.2},
        "latency": {k: _summary(p) for k, p in zip(KINDS, (0.004, 0.3, 0.0015), strict=True)},
        "histograms": {
            "submit": _histogram([0, 0, 3, 0, 5, 9, 0, 0, 1], 0.004),  # 4 non-empty buckets
            "delivery": _histogram([0] * 50 + [2, 4, 4, 1], 0.3),  # 4
            "imap": _histogram([7, 0, 2], 0.0015),  # 2
        },
        "timeline": {"interval": INTERVAL, "points": points},
        "errors": {"submission: timed out": 1},
        "violation_counts": {"HANDOFF-RESPONSIBILITY": 3},
        "violations": [violation, {**violation, "token": "tok2"}],
        "managers": {"stores": 5},
    }


def svgs(page: str) -> dict[str, ET.Element]:
    """Every <svg>…</svg> of the page, parsed as XML (which also proves it well-formed), by id."""
    found = {}
    for block in re.findall(r"<svg\b.*?</svg>", page, flags=re.DOTALL):
        element = ET.fromstring(block)
        found[element.attrib["id"]] = element
    return found


def coordinates(path: ET.Element) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in
            re.findall(r"[ML](-?[\d.]+) (-?[\d.]+)", path.attrib["d"])]


def series(svg: ET.Element) -> dict[str, ET.Element]:
    return {g.attrib["data-series"]: g for g in svg.iter("g")
            if g.attrib.get("class") == "series"}


def legend(svg: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for g in svg.iter("g") if g.attrib.get("class") == "legend"
            for t in g.iter("text")]


class _Balance(HTMLParser):
    """Every element closed in order (void elements aside): a page a browser need not repair."""

    VOID = frozenset({"meta", "br", "hr", "img", "input", "link", "line", "rect", "path",
                      "circle"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


def assert_balanced(page: str) -> None:
    checker = _Balance()
    checker.feed(page)
    checker.close()
    assert not checker.problems and not checker.stack, (checker.problems, checker.stack)


def test_the_page_is_self_contained_and_well_formed() -> None:
    page = render_load_report(results())
    assert page.startswith("<!DOCTYPE html>")
    for outside in ("http://", "https://", "<script", "<link", "src=", "@import", "url("):
        assert outside not in page, outside
    assert_balanced(page)
    charts = svgs(page)
    assert {"chart-throughput", "chart-latency", "chart-histogram-submit",
            "chart-histogram-delivery", "chart-histogram-imap"} == set(charts)
    for svg in charts.values():
        assert svg.find("title") is not None and svg.attrib["aria-label"]
        assert svg.attrib["role"] == "img"


def test_the_throughput_chart_has_a_point_per_interval_a_legend_and_the_load_end() -> None:
    chart = svgs(render_load_report(results()))["chart-throughput"]
    lines = series(chart)
    assert list(lines) == ["accepted", "delivered", "imap", "errors"]  # errors: there was one
    for name, group in lines.items():
        path = group.find("path")
        assert path is not None
        points = coordinates(path)
        assert len(points) == N_POINTS, name
        assert path.attrib["d"].count("M") == 1
        assert path.attrib["stroke"] == COLOURS[name]
        xs = [x for x, _ in points]
        assert xs == sorted(xs)
    dots = list(lines["accepted"].iter("circle"))
    assert len(dots) == N_POINTS
    # Rates are per second: 120 IMAP commands in a 2 s interval is 60/s, on a 0-60 or more axis.
    ticks = [float(t.text or "0") for g in chart.iter("g") if "y-axis" in g.attrib.get("class", "")
             for t in g.iter("text") if t.attrib.get("class") == "tick"]
    assert 60 <= max(ticks) < 120
    labels = legend(chart)
    assert labels == ["accepted/s", "delivered/s", "IMAP commands/s", "errors/s"]
    marker = [g for g in chart.iter("g") if g.attrib.get("class") == "load-end"]
    assert len(marker) == 1 and marker[0].find("line") is not None
    line = marker[0].find("line")
    assert line is not None and line.attrib["x1"] == line.attrib["x2"]
    # The marker sits at 18 s of a 24 s axis.
    plot = next(r for r in chart.iter("rect") if r.attrib.get("class") == "plot")
    left, width = float(plot.attrib["x"]), float(plot.attrib["width"])
    assert float(line.attrib["x1"]) == pytest.approx(left + width * LOAD_END / 24, abs=0.2)
    marks = [g for g in chart.iter("g") if g.attrib.get("class") == "mark"]
    assert len(marks) == 1  # the interval with violations


def test_the_latency_chart_draws_p50_and_p99_with_gaps_where_nothing_was_measured() -> None:
    chart = svgs(render_load_report(results()))["chart-latency"]
    lines = series(chart)
    assert set(lines) == {f"{k}-{p}" for k in KINDS for p in ("p50", "p99")}
    for name, group in lines.items():
        path = group.find("path")
        assert path is not None
        kind = name.rsplit("-", 1)[0]
        expected = {"submit": 9, "imap": N_POINTS, "delivery": N_POINTS - len(NO_DELIVERY)}[kind]
        assert len(coordinates(path)) == expected, name
        assert path.attrib["stroke"] == COLOURS[kind]
        assert ("stroke-dasharray" in path.attrib) == name.endswith("p99")
    delivery = lines["delivery-p50"].find("path")
    assert delivery is not None
    assert delivery.attrib["d"].count("M") == 2  # points 1-4 and 6-10
    assert legend(chart) == [f"{k} {p}" for k in KINDS for p in ("p50", "p99")]
    assert any(g.attrib.get("class") == "load-end" for g in chart.iter("g"))
    text = " ".join(chart.itertext())
    assert "log scale" in text and "ms" in text
    # Higher latency is higher on the chart: delivery's p50 above submission's.
    submit = lines["submit-p50"].find("path")
    assert submit is not None
    assert coordinates(delivery)[0][1] < coordinates(submit)[0][1]


@pytest.mark.parametrize(("kind", "bars"), [("submit", 4), ("delivery", 4), ("imap", 2)])
def test_a_histogram_has_a_bar_per_non_empty_bucket(kind: str, bars: int) -> None:
    chart = svgs(render_load_report(results()))[f"chart-histogram-{kind}"]
    drawn = [r for r in chart.iter("rect") if r.attrib.get("class") == "bar"]
    assert len(drawn) == bars
    assert all(r.attrib["fill"] == COLOURS[kind] for r in drawn)
    xs = [float(r.attrib["x"]) for r in drawn]
    assert xs == sorted(xs) and all(float(r.attrib["height"]) > 0 for r in drawn)
    assert "log scale" in " ".join(chart.itertext())


def test_the_tables_and_the_violations_escape_what_servers_said() -> None:
    page = render_load_report(results())
    assert "<b>bob</b>" not in page and "&lt;b&gt;bob&lt;/b&gt; &amp; never arrived" in page
    assert "tok&lt;1&gt;&amp;" in page
    pres = re.findall(r"<pre>(.*?)</pre>", page, flags=re.DOTALL)
    assert len(pres) == 4  # two violations, two sessions each
    assert "220 &lt;mx.example&gt; ready &amp; waiting" in pres[0]
    assert "\x1b" not in page and "EHLO client\\x1b[31m" in pres[0]
    assert "submit 0, imap reader 1" in page
    assert "2 of 3 violations are kept in full" in page
    assert "3 invariant violations" in page
    assert "submission: timed out" in page and "HANDOFF-RESPONSIBILITY" in page
    # The latency table in milliseconds: submission p50 4 ms, p99 16 ms.
    row = re.search(r"<tr><td>submit</td>(.*?)</tr>", page)
    assert row is not None
    cells = re.findall(r">([^<]*)</td>", row.group(1))
    assert cells[:5] == ["10", "4.0", "8.0", "16.0", "32.0"]
    # Counts and top-level figures this version does not know are shown, not dropped.
    assert "moves 17" in page and "managers.stores" in page


def test_a_clean_run_says_no_invariant_violated() -> None:
    data = results()
    data["counts"]["violations"] = 0
    data["violation_counts"], data["violations"] = {}, []
    page = render_load_report(data, title="nightly <load>")
    assert "no invariant violated" in page and "v-pass" in page
    assert "<title>nightly &lt;load&gt;</title>" in page


@pytest.mark.parametrize("data", [
    {},
    {"seconds": 0.0, "load_seconds": 0.0, "interrupted": True,
     "counts": dict.fromkeys(("accepted", "refused", "delivered", "duplicates",
                              "refused_but_arrived", "errors", "violations"), 0),
     "rates": {"accepted_per_second": 0.0},
     "latency": {k: _summary(0.0, 0) for k in KINDS},
     "histograms": {k: {"base": 1e-4, "growth": 1.1, "counts": [], **_summary(0.0, 0)}
                    for k in KINDS},
     "timeline": {"interval": 1.0, "points": []}, "errors": {}, "violation_counts": {},
     "violations": []},
], ids=["nothing", "zero"])
def test_empty_results_give_a_page_of_no_data_charts(data: dict[str, Any]) -> None:
    page = render_load_report(data)
    assert_balanced(page)
    charts = svgs(page)
    assert {"chart-throughput", "chart-latency", "chart-histogram"} == set(charts)
    for svg in charts.values():
        assert "no data" in " ".join(svg.itertext())
        assert not [g for g in svg.iter("g") if g.attrib.get("class") == "series"]
    assert "No invariant violated." in page


def test_a_timeline_without_latency_still_draws_the_rates() -> None:
    data = {"load_seconds": 1.0,
            "timeline": {"interval": 1.0, "points": [{"t": 0.0, "accepted": 3, "delivered": 0,
                                                      "imap": 0, "latency": {}}]}}
    charts = svgs(render_load_report(data))
    path = series(charts["chart-throughput"])["accepted"].find("path")
    assert path is not None and len(coordinates(path)) == 1
    assert "no data" in " ".join(charts["chart-latency"].itertext())


def test_malformed_results_do_not_crash_the_report() -> None:
    data: dict[str, Any] = {
        "seconds": "long", "counts": "many", "rates": [1], "latency": {"submit": None},
        "histograms": {"submit": {"base": 0, "counts": "x"}, "imap": {"counts": [1]}},
        "timeline": {"interval": 0, "points": [1, None, {"t": "a", "accepted": True,
                                                         "latency": {"imap": "x"}}]},
        "errors": {"x": None}, "violation_counts": [], "violations": [None, {"transcripts": "x"}],
    }
    page = render_load_report(data)
    assert_balanced(page)
    assert set(svgs(page)) >= {"chart-throughput", "chart-latency"}


def test_write_load_report_makes_the_directory(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "load.html"
    write_load_report(path, results())
    assert path.read_text(encoding="utf-8") == render_load_report(results())


def test_axis_ticks() -> None:
    assert nice_ticks(0) == [0.0, 0.5, 1.0]
    assert nice_ticks(42) == [0, 10, 20, 30, 40, 50]
    assert nice_ticks(0.7) == [0, 0.2, 0.4, 0.6, 0.8]
    assert log_ticks(0.003, 0.4) == [0.001, 0.01, 0.1, 1.0]
    assert log_ticks(0.0015, 0.004) == pytest.approx([0.001, 0.002, 0.005, 0.01])


def test_latencies_per_step_and_per_command_are_tables_of_their_own() -> None:
    data = results()
    summary = {"count": 7, "p50": 0.002, "p90": 0.003, "p99": 0.004, "max": 0.005, "mean": 0.002}
    data["smtp_commands"] = {"AUTH": {**summary, "count": 2}, "transaction": summary}
    data["imap_commands"] = {"UID FETCH": summary, "NOOP": {**summary, "count": 1}}
    page = render_load_report(data)
    assert_balanced(page)
    step = page.index("Submission by step")
    command = page.index("IMAP by command")
    other = page.find('id="other"')
    assert step < command and (other < 0 or command < other)
    # the most frequent first, in milliseconds; not in "Other figures" as raw JSON
    assert page.index(">transaction<", step) < page.index(">AUTH<", step)
    assert page.index(">UID FETCH<", command) < page.index(">NOOP<", command)
    assert "imap_commands" not in page and '{"count"' not in page
    assert "No IMAP command measured." not in page
    assert "No command measured." in render_load_report(results())
