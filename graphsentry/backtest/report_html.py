"""The backtest report: one self-contained HTML file (inline CSS and SVG, no script, no fetch).

It holds the summary (precision counts alerts, never signals), the attack and look-alike
tables, the per-detector table (or, for two configurations, a side-by-side comparison first),
and per configuration a timeline with one row per principal: the principals of the labeled
scenarios (bars from start to end, attack and benign in different colours), then unlabeled
principals that were alerted. Each row shows the principal's *signals* as thin ticks and its
*alerts* as markers at ``last_seen`` with a line back to ``first_seen``; shape and colour
identify the detector, and hovering shows the id, revision, outcome and times.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from graphsentry.backtest.matching import Labels, MatchedAlert, Scenario
from graphsentry.backtest.metrics import BacktestMetrics, summary_lines
from graphsentry.backtest.views import (
    ATTACK_COLUMNS,
    ATTACK_HEADERS,
    BENIGN_COLUMNS,
    BENIGN_HEADERS,
    COMPARE_COLUMNS,
    METRIC_COLUMNS,
    METRIC_HEADERS,
    attack_rows,
    benign_rows,
    compare_headers,
    comparison_rows,
    metric_rows,
)

WIDTH = 1300
LABEL_WIDTH = 260
ROW_HEIGHT = 26
AXIS_HEIGHT = 36
MAX_UNLABELED_ROWS = 25
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#17becf", "#bcbd22", "#7f7f7f")
SHAPES = ("circle", "square", "triangle", "diamond", "down", "cross", "star")
TICK_STEPS = (900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400)

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222}
h1{font-size:22px}h2{font-size:18px;margin-top:28px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #ccc;padding:3px 8px}th{background:#f2f2f2}
td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.total td{font-weight:600;background:#fafafa}
.legend span{display:inline-block;margin-right:14px;font-size:13px}
.note{color:#555;font-size:13px}
svg text{font-size:11px;fill:#333}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _table(columns: Sequence[str], rows: Sequence[dict[str, Any]],
           headers: dict[str, str], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{_e(headers.get(c, c))}</th>" for c in columns)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="n">{_e(row.get(c, ""))}</td>' if i >= numeric_from
            else f"<td>{_e(row.get(c, ''))}</td>" for i, c in enumerate(columns))
        total = ' class="total"' if row.get("detector") == "ALL" else ""
        body.append(f"<tr{total}>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _marker(shape: str, x: float, y: float, colour: str, tooltip: str) -> str:
    r = 5.0
    fill = f'fill="{colour}" stroke="#222" stroke-width="0.6"'
    if shape == "circle":
        body = f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" {fill}>'
        end = "</circle>"
    elif shape == "square":
        body = f'<rect x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r}" height="{2 * r}" {fill}>'
        end = "</rect>"
    else:
        points = {
            "triangle": [(0, -r - 1), (r + 1, r), (-r - 1, r)],
            "down": [(0, r + 1), (r + 1, -r), (-r - 1, -r)],
            "diamond": [(0, -r - 1), (r + 1, 0), (0, r + 1), (-r - 1, 0)],
            "cross": [(-2, -r), (2, -r), (2, -2), (r, -2), (r, 2), (2, 2), (2, r), (-2, r),
                      (-2, 2), (-r, 2), (-r, -2), (-2, -2)],
            "star": [(0, -r - 2), (2, -2), (r + 2, -1), (3, 2), (4, r + 2), (0, 4), (-4, r + 2),
                     (-3, 2), (-r - 2, -1), (-2, -2)],
        }[shape]
        text = " ".join(f"{x + dx:.1f},{y + dy:.1f}" for dx, dy in points)
        body = f'<polygon points="{text}" {fill}>'
        end = "</polygon>"
    return f"{body}<title>{_e(tooltip)}</title>{end}"


def _style(detectors: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Detector → (shape, colour), stable for a given set of detector names."""
    return {d: (SHAPES[i % len(SHAPES)], COLOURS[i % len(COLOURS)])
            for i, d in enumerate(sorted(detectors))}


def _legend(style: dict[str, tuple[str, str]]) -> str:
    items = []
    for detector, (shape, colour) in style.items():
        icon = _marker(shape, 9, 9, colour, detector)
        items.append(f'<span><svg width="18" height="18">{icon}</svg> {_e(detector)}</span>')
    bars = ('<span><svg width="26" height="12"><rect width="26" height="12" fill="#f5b7b1" '
            'stroke="#c0392b"/></svg> attack scenario</span>'
            '<span><svg width="26" height="12"><rect width="26" height="12" fill="#abebc6" '
            'stroke="#1e8449"/></svg> benign look-alike</span>'
            '<span><svg width="10" height="14"><line x1="5" y1="2" x2="5" y2="12" '
            'stroke="#555" stroke-width="1.5"/></svg> signal (tick, detector colour)</span>')
    return f'<div class="legend">{bars}{"".join(items)}</div>'


@dataclass(slots=True)
class _Row:
    label: str
    key: tuple[str, str]
    scenarios: list[Scenario]


def _rows(labels: Labels, metrics: BacktestMetrics) -> list[_Row]:
    """Timeline rows: principals of the scenarios in start order, then alerted principals in
    no scenario (at most ``MAX_UNLABELED_ROWS``)."""
    rows: dict[tuple[str, str], _Row] = {}
    for scenario in sorted(labels.scenarios, key=lambda s: s.start):
        row = rows.get(scenario.key)
        if row is None:
            rows[scenario.key] = _Row(f"{scenario.name} ({scenario.kind})", scenario.key,
                                      [scenario])
        else:
            row.scenarios.append(scenario)
            row.label += f" + {scenario.name}"
    strangers = sorted({m.finding.key for m in metrics.matched if m.outcome == "unlabeled"})
    for key in strangers[:MAX_UNLABELED_ROWS]:
        rows[key] = _Row(f"unlabeled {key[1][:18]}", key, [])
    return list(rows.values())


def _ticks(start: float, end: float) -> tuple[float, list[float]]:
    span = max(end - start, 1.0)
    step = next((s for s in TICK_STEPS if span / s <= 12), TICK_STEPS[-1])
    first = (start // step + 1) * step
    return step, [first + i * step for i in range(int((end - first) // step) + 1)]


def _bar(scenario: Scenario, top: float, x: Any) -> str:
    fill, stroke = ("#f5b7b1", "#c0392b") if scenario.is_attack else ("#abebc6", "#1e8449")
    left = x(scenario.start)
    width = max(x(scenario.end) - left, 3.0)
    tip = f"{scenario.name}: {_time(scenario.start)} → {_time(scenario.end)}"
    return (f'<rect x="{left:.1f}" y="{top + 5}" width="{width:.1f}" height="{ROW_HEIGHT - 10}" '
            f'fill="{fill}" stroke="{stroke}"><title>{_e(tip)}</title></rect>')


def _signal_tick(item: MatchedAlert, top: float, x: Any, colour: str) -> str:
    at = x(item.last_seen)
    tip = (f"signal {item.detector} [{item.outcome}] {item.finding.id}\n"
           f"{_time(item.first_seen)} → {_time(item.last_seen)}")
    return (f'<line x1="{at:.1f}" y1="{top + ROW_HEIGHT - 7}" x2="{at:.1f}" '
            f'y2="{top + ROW_HEIGHT - 1}" stroke="{colour}" stroke-width="1.5">'
            f'<title>{_e(tip)}</title></line>')


def timeline_svg(metrics: BacktestMetrics, labels: Labels,
                 style: dict[str, tuple[str, str]]) -> str:
    """The timeline of one configuration as an inline SVG element."""
    rows = _rows(labels, metrics)
    times = [t for s in labels.scenarios for t in (s.start, s.end)]
    times += [t for m in metrics.matched for t in (m.first_seen, m.last_seen)]
    if not times:
        return '<p class="note">Nothing to plot: no scenarios and no alerts.</p>'
    pad = max((max(times) - min(times)) * 0.02, 300.0)
    t0, t1 = min(times) - pad, max(times) + pad
    plot_width = WIDTH - LABEL_WIDTH - 20
    height = AXIS_HEIGHT + ROW_HEIGHT * max(len(rows), 1) + 10

    def x(t: float) -> float:
        return LABEL_WIDTH + (min(max(t, t0), t1) - t0) / (t1 - t0) * plot_width

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
             f'viewBox="0 0 {WIDTH} {height}" role="img">']
    step, ticks = _ticks(t0, t1)
    fmt = "%m-%d %H:%M" if step < 86400 else "%Y-%m-%d"
    for tick in ticks:
        parts.append(f'<line x1="{x(tick):.1f}" y1="{AXIS_HEIGHT - 6}" x2="{x(tick):.1f}" '
                     f'y2="{height - 6}" stroke="#e3e3e3"/>')
        label = datetime.fromtimestamp(tick, UTC).strftime(fmt)
        parts.append(f'<text x="{x(tick):.1f}" y="{AXIS_HEIGHT - 12}" '
                     f'text-anchor="middle">{label}</text>')
    index = {row.key: i for i, row in enumerate(rows)}
    for i, row in enumerate(rows):
        top = AXIS_HEIGHT + i * ROW_HEIGHT
        if i % 2:
            parts.append(f'<rect x="0" y="{top}" width="{WIDTH}" height="{ROW_HEIGHT}" '
                         'fill="#fafafa"/>')
        parts.append(f'<text x="6" y="{top + ROW_HEIGHT / 2 + 4}">{_e(row.label[:44])}</text>')
        parts.extend(_bar(scenario, top, x) for scenario in row.scenarios)
    for item in sorted(metrics.matched_signals, key=lambda m: (m.last_seen, m.detector)):
        at = index.get(item.finding.key)
        if at is not None:
            colour = style[item.detector][1]
            parts.append(_signal_tick(item, AXIS_HEIGHT + at * ROW_HEIGHT, x, colour))
    lanes = {d: i for i, d in enumerate(sorted(style))}
    for item in sorted(metrics.matched, key=lambda m: (m.last_seen, m.detector)):
        at = index.get(item.finding.key)
        if at is None:
            continue
        shape, colour = style[item.detector]
        y = AXIS_HEIGHT + at * ROW_HEIGHT + 7 + (lanes[item.detector] % 3) * 4
        x0, x1 = x(item.first_seen), x(item.last_seen)
        if x1 - x0 > 2:
            parts.append(f'<line x1="{x0:.1f}" y1="{y}" x2="{x1:.1f}" y2="{y}" '
                         f'stroke="{colour}" stroke-width="1.5" opacity="0.7"/>')
        finding = item.finding
        tooltip = (f"{finding.raw.get('title', item.detector)} [{item.detector}, {finding.kind}, "
                   f"{item.outcome}]\nalert_id {finding.id} revision {finding.revision}"
                   f"\n{_time(item.first_seen)} → {_time(item.last_seen)}")
        parts.append(_marker(shape, x1, y, colour, tooltip))
    parts.append("</svg>")
    return "".join(parts)


def render_report(runs: Sequence[BacktestMetrics], labels: Labels,
                  title: str = "graphsentry backtest", notes: Sequence[str] = ()) -> str:
    """The whole report for one or two configurations (``runs``), as an HTML string."""
    style = _style(sorted({m.detector for run in runs
                           for m in [*run.matched, *run.matched_signals]}
                          | {d.detector for run in runs for d in run.detectors}))
    body = [f"<h1>{_e(title)}</h1>"]
    body.extend(f'<p class="note">{_e(note)}</p>' for note in notes)
    if len(runs) == 2:
        a, b = runs
        body.append(f"<h2>Comparison: {_e(a.name)} vs {_e(b.name)}</h2>")
        body.append(_table(COMPARE_COLUMNS, comparison_rows(a, b), compare_headers(a.name, b.name)))
    for run in runs:
        body.append(f"<h2>Summary: {_e(run.name)} ({run.events} events)</h2>")
        body.append("<ul>" + "".join(f"<li>{_e(line)}</li>" for line in summary_lines(run))
                    + "</ul>")
        body.append(f"<h2>Attacks: {_e(run.name)}</h2>")
        body.append(_table(ATTACK_COLUMNS, attack_rows(run), ATTACK_HEADERS,
                           numeric_from=len(ATTACK_COLUMNS)))
        body.append(f"<h2>Benign look-alikes: {_e(run.name)}</h2>")
        body.append(_table(BENIGN_COLUMNS, benign_rows(run), BENIGN_HEADERS,
                           numeric_from=len(BENIGN_COLUMNS)))
        body.append(f"<h2>Detectors: {_e(run.name)}</h2>")
        body.append(_table(METRIC_COLUMNS, metric_rows(run), METRIC_HEADERS))
        body.append(f"<h2>Timeline: {_e(run.name)}</h2>")
        body.append(_legend(style))
        body.append(timeline_svg(run, labels, style))
    body.append('<p class="note">An alert counts once (its latest revision). TP: an alert on an '
                "attack's principal within [start, end + detection latency]. FP: every other "
                "alert: on a benign look-alike's principal at any time, on a principal in no "
                "scenario, or on an attack's principal outside the attack. Precision counts "
                "alerts, not signals. Signal recall: expected (attack, detector) pairs with a "
                "signal of that detector within the attack. Time to detect: the first alert or "
                "signal version reaching the attack, minus its start (event time). Thin ticks "
                "are signals, markers are alerts.</p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")
