"""Alerts told as a story: per principal, its incidents, risk alerts and detector alerts, each
with the signals it rests on as evidence, in time order. Plain text at most ``width`` columns;
ANSI bold and colour only when asked (the CLI asks when stdout is a terminal).

Input: alert dicts in the shape of ``schemas/graph_alert.avsc`` — every version of an alert may
be given, the latest (highest revision) is told — and optionally signal dicts
(``schemas/graph_signal.avsc``; their final versions give each signal's key evidence). Times are
datetimes, ISO strings or epoch numbers. One time per alert: its first evidence (``first_seen``),
as in the alert list (:func:`graphsentry.alerts.format_alert`).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from graphsentry.alerts import latest_versions
from graphsentry.backtest.matching import to_epoch
from graphsentry.backtest.metrics import duration

Alert = Mapping[str, Any]
KIND_ORDER = {"incident": 0, "risk": 1, "detector": 2}
KIND_HEADING = {"incident": "INCIDENT", "risk": "RISK", "detector": "ALERT"}
MAX_NUMBERS = 8
MAX_LIST = 3
MAX_WORDS = 4
MAX_TEXT = 80
_SEVERITY_COLOUR = {"critical": "35", "high": "31", "medium": "33", "low": "36"}
_LIST_KEYS = (("source_ips", "source IPs"), ("user_agents", "user agents"))


def _when(value: Any) -> str:
    return datetime.fromtimestamp(to_epoch(value), UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _time_of(item: Alert, name: str) -> float:
    try:
        return to_epoch(item.get(name))
    except ValueError:
        return 0.0


def evidence_of(item: Alert) -> dict[str, Any]:
    """The evidence as a dict, whichever shape the alert or signal carries it in."""
    evidence = item.get("evidence")
    if isinstance(evidence, str):
        evidence = {"evidence_json": evidence}
    if not isinstance(evidence, Mapping):
        return {}
    full: dict[str, Any] = {}
    raw = evidence.get("evidence_json")
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError:
            parsed = {}
        if isinstance(parsed, dict):
            full.update(parsed)
    for key, value in evidence.items():
        if key != "evidence_json" and value not in (None, [], {}):
            full.setdefault(key, value)
    return full


def _number(value: Any) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


def _numeric_phrase(key: str, value: Any) -> str:
    if key.endswith("_seconds"):
        return f"{key.removesuffix('_seconds').replace('_', ' ')} {duration(float(value))}"
    return f"{key.replace('_', ' ')} {_number(value)}"


def key_evidence(item: Alert) -> list[str]:
    """Short ``name value`` phrases: numbers, then short texts, then source IPs and user agents."""
    evidence = evidence_of(item)
    distinct = {f"distinct {k}": v["count"] for k, v in evidence.items()
                if isinstance(v, Mapping) and isinstance(v.get("count"), int)
                and k not in ("source_ips", "user_agents", "templates") and v["count"]}
    numbers = {**(evidence.get("counts") or {}), **distinct,
               **{k: v for k, v in evidence.items()
                  if isinstance(v, int | float) and not isinstance(v, bool)}}
    phrases = [_numeric_phrase(k, v) for k, v in sorted(numbers.items())]
    words = [f"{k.replace('_', ' ')} {v}" for k, v in sorted(evidence.items())
             if isinstance(v, str) and len(v) <= MAX_TEXT
             and k != "evidence_json" and not k.endswith("id")]
    phrases = phrases[:MAX_NUMBERS] + words[:MAX_WORDS]
    for key, label in _LIST_KEYS:
        values = evidence.get(key)
        if isinstance(values, Mapping):
            values = values.get("sample")
        if isinstance(values, list | tuple) and values:
            shown = ", ".join(str(v) for v in list(values)[:MAX_LIST])
            more = f" (+{len(values) - MAX_LIST})" if len(values) > MAX_LIST else ""
            phrases.append(f"{label} {shown}{more}")
    return phrases


class _Writer:
    def __init__(self, width: int, colour: bool) -> None:
        self.width = width
        self.colour = colour
        self.lines: list[str] = []

    def style(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour else text

    def line(self, text: str = "") -> None:
        self.lines.append(text)

    def wrapped(self, text: str, indent: int) -> None:
        pad = " " * indent
        self.lines.extend(textwrap.wrap(text, self.width, initial_indent=pad,
                                        subsequent_indent=pad, break_on_hyphens=False) or [""])

    def field(self, name: str, value: str, indent: int = 2) -> None:
        self.wrapped(f"{name:<10} {value}", indent)


def _app(alert: Alert) -> str:
    name = alert.get("app_display_name")
    apps = [str(a) for a in alert.get("app_ids") or [alert.get("app_id")]]
    first = f"{name} ({apps[0]})" if name else apps[0]
    return first + (f" and {len(apps) - 1} more app(s)" if len(apps) > 1 else "")


def _tell_alert(out: _Writer, alert: Alert, signals: Mapping[str, Alert]) -> None:
    kind = str(alert.get("kind") or "detector")
    severity = str(alert.get("severity", "?"))
    heading = (f"{KIND_HEADING.get(kind, 'ALERT')} {_when(alert.get('first_seen'))}  "
               f"{alert.get('title', '')} [{severity}, risk {alert.get('risk_score', '-')}]")
    for text in textwrap.wrap(heading, out.width, subsequent_indent=" " * 6,
                              break_on_hyphens=False):  # wrapped, never cut: severity last
        out.line(out.style(text, "1;" + _SEVERITY_COLOUR.get(severity, "0"))
                 if out.colour else text)
    first, last = _time_of(alert, "first_seen"), _time_of(alert, "last_seen")
    out.field("span", f"{_when(first)} -> {_when(last)} ({duration(last - first)})")
    if alert.get("stages"):
        out.field("stages", " -> ".join(str(s) for s in alert["stages"]))
    status = alert.get("status") or "open"
    out.field("alert", f"{alert.get('alert_id')} rev {alert.get('revision', 1)}, {status}"
                       f"{', final' if alert.get('final') else ''}")
    every = alert.get("signals") or []
    refs = sorted(finest(every),
                  key=lambda r: (_time_of(r, "first_seen"), str(r.get("signal_id"))))
    if not refs:  # an alert without signal references: its own evidence
        phrases = key_evidence(alert)
        if phrases:
            out.wrapped("; ".join(phrases), 4)
    for ref in refs:
        signal = signals.get(str(ref.get("signal_id")), ref)
        head = (f"{_when(ref.get('first_seen'))}  {ref.get('stage') or '-'}: "
                f"{ref.get('detector')} — {signal.get('title') or ref.get('title') or ''} "
                f"[{ref.get('severity')}, risk {ref.get('risk_score')}]")
        out.wrapped(head, 4)
        phrases = key_evidence(signal) if signal is not ref else []
        if phrases:
            out.wrapped("; ".join(phrases), 8)
    if len(every) > len(refs):
        out.wrapped(f"(and {len(every) - len(refs)} signal(s) of the same detectors over "
                    f"longer windows)", 4)
    out.line()


def finest(refs: list[Alert]) -> list[Alert]:
    """Per detector, its signals of the shortest window among ``refs`` (the same behaviour
    over a day starts at the day's first event, not when it crossed)."""
    def length(ref: Alert) -> float:
        return _time_of(ref, "window_end") - _time_of(ref, "window_start")

    shortest: dict[str, float] = {}
    for ref in refs:
        detector = str(ref.get("detector"))
        shortest[detector] = min(shortest.get(detector, float("inf")), length(ref))
    return [r for r in refs if length(r) == shortest[str(r.get("detector"))]]


def render_story(alerts: Iterable[Alert], *, width: int = 100, colour: bool = False,
                 signals: Iterable[Alert] = ()) -> str:
    """The alerts (latest versions), grouped by principal, incidents first (empty: a note)."""
    latest = latest_versions(alerts)
    if not latest:
        return "No alerts.\n"
    by_signal = {str(s.get("signal_id")): s for s in latest_versions(signals, "signal_id")}
    out = _Writer(width, colour)
    groups: dict[tuple[str, str], list[Alert]] = {}
    for alert in latest:
        groups.setdefault((str(alert.get("tenant_id")), str(alert.get("principal_id"))),
                          []).append(alert)
    ordered = sorted(groups.values(), key=lambda g: min(_time_of(a, "first_seen") for a in g))
    for group in ordered:
        group.sort(key=lambda a: (KIND_ORDER.get(str(a.get("kind")), 3),
                                  _time_of(a, "first_seen"), str(a.get("alert_id"))))
        head = group[0]
        title = (f"principal {head.get('principal_id')} ({head.get('identity_type')}) via "
                 f"{_app(head)} — {len(group)} alert(s)")
        out.line(out.style("=" * min(width, 100), "1"))
        out.wrapped(title, 0)
        out.line()
        for alert in group:
            _tell_alert(out, alert, by_signal)
    return "\n".join(out.lines).rstrip("\n") + "\n"
