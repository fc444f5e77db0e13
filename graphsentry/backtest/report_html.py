"""The backtest report: one self-contained HTML file (inline CSS and SVG, no script, no fetch).

It holds the metrics table (or, for two configurations, a side-by-side comparison first), the
per-scenario results, and per configuration a timeline: one row per labeled scenario (a bar from
start to end, attack and benign in different colours), one row per unlabeled principal that was
alerted, and a marker per alert at its ``last_seen`` (the event that made it fire) with a thin
line back to ``first_seen``. Shape and colour identify the detector; hovering a marker shows the
alert's title, id and times.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from graphsentry.backtest.matching import Labels, MatchedAlert, Scenario
from graphsentry.backtest.metrics import (
    COMPARE_COLUMNS,
    METRIC_COLUMNS,
    METRIC_HEADERS,
    BacktestMetrics,
    compare_headers,
    comparison_rows,
    duration,
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


def _scenario_table(metrics: BacktestMetrics) -> str:
    rows = []
    for result in metrics.scenarios:
        found = ", ".join(f"{d} ({duration(t)})" for d, t in sorted(result.found.items()))
        rows.append({
            "scenario": result.scenario.name, "kind": result.scenario.kind,
            "principal": result.scenario.principal_id,
            "start": _time(result.scenario.start), "end": _time(result.scenario.end),
            "alerts": result.alerts, "found (time to detect)": found or "-",
            "missing": ", ".join(result.missing) or "-",
        })
    columns = ("scenario", "kind", "principal", "start", "end", "alerts",
               "found (time to detect)", "missing")
    return _table(columns, rows, {}, numeric_from=len(columns))


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
            'stroke="#1e8449"/></svg> benign look-alike</span>')
    return f'<div class="legend">{bars}{"".join(items)}</div>'


@dataclass(frozen=True, slots=True)
class _Row:
    label: str
    scenario: Scenario | None = None
    principal: str | None = None  # for rows of unlabeled principals


def _rows(labels: Labels, matched: Sequence[MatchedAlert]) -> list[_Row]:
    """Timeline rows: the scenarios in start order, then alerted principals in no scenario."""
    rows = [_Row(f"{s.name} ({s.kind})", scenario=s)
            for s in sorted(labels.scenarios, key=lambda s: s.start)]
    strangers = sorted({str(m.alert.get("principal_id")) for m in matched
                        if m.outcome == "unlabeled"})
    rows.extend(_Row(f"unlabeled {p[:18]}", principal=p) for p in strangers[:MAX_UNLABELED_ROWS])
    return rows


def _row_index(rows: Sequence[_Row]) -> dict[object, int]:
    """Where an alert goes: its scenario's row, or its unlabeled principal's row."""
    return {(row.scenario if row.scenario is not None else row.principal): i
            for i, row in enumerate(rows)}


def _alert_row(item: MatchedAlert, index: dict[object, int]) -> int | None:
    if item.scenario is not None:
        return index.get(item.scenario)
    return index.get(str(item.alert.get("principal_id")))


def _ticks(start: float, end: float) -> tuple[float, list[float]]:
    span = max(end - start, 1.0)
    step = next((s for s in TICK_STEPS if span / s <= 12), TICK_STEPS[-1])
    first = (start // step + 1) * step
    return step, [first + i * step for i in range(int((end - first) // step) + 1)]


def timeline_svg(metrics: BacktestMetrics, labels: Labels,
                 style: dict[str, tuple[str, str]]) -> str:
    """The timeline of one configuration as an inline SVG element."""
    rows = _rows(labels, metrics.matched)
    times = [t for s in labels.scenarios for t in (s.start, s.end)]
    times += [t for m in metrics.matched for t in (m.first_seen, m.last_seen)]
    if not times:
        return '<p class="note">Nothing to plot: no scenarios and no alerts.</p>'
    pad = max((max(times) - min(times)) * 0.02, 300.0)
    t0, t1 = min(times) - pad, max(times) + pad
    plot_width = WIDTH - LABEL_WIDTH - 20
    height = AXIS_HEIGHT + ROW_HEIGHT * max(len(rows), 1) + 10

    def x(t: float) -> float:
        return LABEL_WIDTH + (t - t0) / (t1 - t0) * plot_width

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
    for index, row in enumerate(rows):
        scenario = row.scenario
        top = AXIS_HEIGHT + index * ROW_HEIGHT
        if index % 2:
            parts.append(f'<rect x="0" y="{top}" width="{WIDTH}" height="{ROW_HEIGHT}" '
                         'fill="#fafafa"/>')
        parts.append(f'<text x="6" y="{top + ROW_HEIGHT / 2 + 4}">{_e(row.label)}</text>')
        if scenario is not None:
            fill, stroke = (("#f5b7b1", "#c0392b") if scenario.is_attack
                            else ("#abebc6", "#1e8449"))
            left = x(scenario.start)
            width = max(x(scenario.end) - left, 3.0)
            tip = f"{scenario.name}: {_time(scenario.start)} → {_time(scenario.end)}"
            parts.append(f'<rect x="{left:.1f}" y="{top + 5}" width="{width:.1f}" '
                         f'height="{ROW_HEIGHT - 10}" fill="{fill}" stroke="{stroke}">'
                         f'<title>{_e(tip)}</title></rect>')
    lanes = {d: i for i, d in enumerate(sorted(style))}
    row_index = _row_index(rows)
    for item in sorted(metrics.matched, key=lambda m: (m.last_seen, m.detector)):
        at = _alert_row(item, row_index)
        if at is None:
            continue
        shape, colour = style[item.detector]
        y = AXIS_HEIGHT + at * ROW_HEIGHT + 8 + (lanes[item.detector] % 3) * 5
        x0, x1 = x(item.first_seen), x(item.last_seen)
        if x1 - x0 > 2:
            parts.append(f'<line x1="{x0:.1f}" y1="{y}" x2="{x1:.1f}" y2="{y}" '
                         f'stroke="{colour}" stroke-width="1.5" opacity="0.7"/>')
        tooltip = (f"{item.alert.get('title', item.detector)} [{item.detector}, {item.outcome}]"
                   f"\nalert_id {item.alert.get('alert_id', '?')}"
                   f"\n{_time(item.first_seen)} → {_time(item.last_seen)}")
        parts.append(_marker(shape, x1, y, colour, tooltip))
    parts.append("</svg>")
    return "".join(parts)


def render_report(runs: Sequence[BacktestMetrics], labels: Labels,
                  title: str = "graphsentry backtest", notes: Sequence[str] = ()) -> str:
    """The whole report for one or two configurations (``runs``), as an HTML string."""
    style = _style(sorted({d.detector for run in runs for d in run.detectors}))
    body = [f"<h1>{_e(title)}</h1>"]
    body.extend(f'<p class="note">{_e(note)}</p>' for note in notes)
    if len(runs) == 2:
        a, b = runs
        body.append(f"<h2>Comparison: {_e(a.name)} vs {_e(b.name)}</h2>")
        body.append(_table(COMPARE_COLUMNS, comparison_rows(a, b), compare_headers(a.name, b.name)))
    for run in runs:
        body.append(f"<h2>Metrics: {_e(run.name)} ({run.events} events)</h2>")
        body.append(_table(METRIC_COLUMNS, metric_rows(run), METRIC_HEADERS))
        body.append(f"<h2>Scenarios: {_e(run.name)}</h2>")
        body.append(_scenario_table(run))
        body.append(f"<h2>Timeline: {_e(run.name)}</h2>")
        body.append(_legend(style))
        body.append(timeline_svg(run, labels, style))
    body.append('<p class="note">TP: alert on an attack scenario\'s principal within [start - 10 '
                'min, end + 2 h]. FP: alert on a benign scenario\'s principal, outside that '
                'window, or on a principal in no scenario (unlabeled). Time to detect: earliest '
                'last_seen of a matching alert minus the scenario start (event time).</p>')
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")
