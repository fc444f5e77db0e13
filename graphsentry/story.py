"""Alerts told as a story: each ``attack_chain`` incident with its stages in time order (the
chained stage alerts and the principal's later alerts), then the other alerts grouped by
principal. Plain text at most ``width`` columns; ANSI bold and colour
only when asked (the CLI asks when stdout is a terminal).

Alerts are dicts in the shape of ``schemas/graph_alert.avsc`` (times as datetimes, ISO strings or
epoch numbers); the evidence may be the ``Evidence`` record or a plain dict.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from graphsentry.backtest.matching import to_epoch
from graphsentry.backtest.metrics import duration

Alert = Mapping[str, Any]
CHAIN_DETECTOR = "attack_chain"
MAX_NUMBERS = 8
MAX_LIST = 3
MAX_WORDS = 4
MAX_TEXT = 80
LOOKBACK_SECONDS = 3600.0
_SEVERITY_COLOUR = {"critical": "35", "high": "31", "medium": "33", "low": "36"}
_LIST_KEYS = (("source_ips", "source IPs"), ("user_agents", "user agents"))


def _when(value: Any) -> str:
    return datetime.fromtimestamp(to_epoch(value), UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _time_of(alert: Alert, name: str) -> float:
    try:
        return to_epoch(alert.get(name))
    except ValueError:
        return 0.0


def evidence_of(alert: Alert) -> dict[str, Any]:
    """The detector's evidence as a dict, whichever shape the alert carries it in."""
    evidence = alert.get("evidence")
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


def related_ids(alert: Alert) -> list[str]:
    evidence = alert.get("evidence")
    ids = evidence.get("related_alert_ids") if isinstance(evidence, Mapping) else None
    if not ids:
        ids = evidence_of(alert).get("related_alert_ids") or []
    return [str(i) for i in ids]


def _number(value: Any) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


def _numeric_phrase(key: str, value: Any) -> str:
    if key.endswith("_seconds"):
        return f"{key.removesuffix('_seconds').replace('_', ' ')} {duration(float(value))}"
    return f"{key.replace('_', ' ')} {_number(value)}"


def key_evidence(alert: Alert) -> list[str]:
    """Short ``name value`` phrases: numbers, then short texts, then source IPs and user agents."""
    evidence = evidence_of(alert)
    distinct = {f"distinct {k}": v["count"] for k, v in evidence.items()
                if isinstance(v, Mapping) and isinstance(v.get("count"), int)
                and k not in ("source_ips", "user_agents") and v["count"]}
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

    def alert_entry(self, alert: Alert, indent: int) -> None:
        severity = str(alert.get("severity", "?"))
        head = (f"{_when(alert.get('last_seen'))}  {alert.get('detector', '?')}: "
                f"{alert.get('title', '')} [{severity}]")
        if self.colour:
            code = _SEVERITY_COLOUR.get(severity, "0")
            self.line(" " * indent + self.style(head[: self.width - indent], code))
        else:
            self.wrapped(head, indent)
        evidence = key_evidence(alert)
        if evidence:
            self.wrapped("; ".join(evidence), indent + 4)


def _app(alert: Alert) -> str:
    name = alert.get("app_display_name")
    return f"{name} ({alert.get('app_id')})" if name else str(alert.get("app_id"))


def _incident(out: _Writer, number: int, chain: Alert, stages: Sequence[Alert],
              missing: Sequence[str]) -> None:
    first = min([_time_of(chain, "first_seen"), *(_time_of(a, "first_seen") for a in stages)])
    last = max([_time_of(chain, "last_seen"), *(_time_of(a, "last_seen") for a in stages)])
    heading = f"INCIDENT {number}: {chain.get('title', 'attack chain')}"
    out.line(out.style(heading[: out.width], "1"))
    out.field("principal", f"{chain.get('principal_id')} ({chain.get('identity_type')})")
    out.field("app", _app(chain))
    out.field("tenant", str(chain.get("tenant_id")))
    out.field("span", f"{_when(first)} -> {_when(last)} ({duration(last - first)})")
    names = [_stage(a) for a in stages]
    out.field("stages", " -> ".join(dict.fromkeys(names)) or "-")
    out.field("severity", str(chain.get("severity")))
    previous = None
    for alert, stage in zip(stages, names, strict=True):
        if stage != previous:
            out.line()
            out.wrapped(f"[{stage.upper()}]", 2)
            previous = stage
        out.alert_entry(alert, 4)
    if missing:
        out.wrapped(f"(stage alerts not in the input: {', '.join(missing)})", 2)
    out.line()


def _stage(alert: Alert) -> str:
    return str(alert.get("stage") or alert.get("detector") or "other")


def _principal(alert: Alert) -> tuple[str, str, str]:
    return (str(alert.get("tenant_id")), str(alert.get("app_id")), str(alert.get("principal_id")))


def _incident_members(items: Sequence[Alert], chains: Sequence[Alert]) -> dict[int, list[Alert]]:
    """Per chain (by position): its stage alerts, plus the principal's other alerts from an hour
    before the chain's first event on (a chain fires as soon as it is complete, so later stages
    such as exfiltration or persistence come after it). Each alert joins one chain at most: the
    latest that started before it."""
    by_id = {str(a.get("alert_id")): a for a in items}
    members: dict[int, list[Alert]] = {i: [] for i in range(len(chains))}
    claimed: set[str] = set()
    for index, chain in enumerate(chains):
        for alert_id in related_ids(chain):
            if alert_id in by_id and alert_id not in claimed:
                members[index].append(by_id[alert_id])
                claimed.add(alert_id)
    claimed.update(str(c.get("alert_id")) for c in chains)
    for alert in items:
        alert_id = str(alert.get("alert_id"))
        if alert_id in claimed:
            continue
        candidates = [i for i, c in enumerate(chains) if _principal(c) == _principal(alert)
                      and _time_of(c, "first_seen") - LOOKBACK_SECONDS
                      <= _time_of(alert, "last_seen")]
        if candidates:
            best = max(candidates, key=lambda i: _time_of(chains[i], "first_seen"))
            members[best].append(alert)
            claimed.add(alert_id)
    return members


def render_story(alerts: Iterable[Alert], *, width: int = 100, colour: bool = False) -> str:
    """The incidents and other alerts as text (empty alert list: a one-line note)."""
    items = sorted(alerts, key=lambda a: (_time_of(a, "last_seen"), str(a.get("alert_id"))))
    out = _Writer(width, colour)
    if not items:
        return "No alerts.\n"
    by_id = {str(a.get("alert_id")): a for a in items}
    chains = [a for a in items if a.get("detector") == CHAIN_DETECTOR]
    members = _incident_members(items, chains)
    told = {str(c.get("alert_id")) for c in chains}
    for index, chain in enumerate(chains):
        stages = sorted(members[index],
                        key=lambda a: (_time_of(a, "last_seen"), str(a.get("detector"))))
        missing = [i for i in related_ids(chain) if i not in by_id]
        _incident(out, index + 1, chain, stages, missing)
        told.update(str(a.get("alert_id")) for a in stages)
    rest = [a for a in items if str(a.get("alert_id")) not in told]
    if rest:
        out.line(out.style("OTHER ALERTS" if chains else "ALERTS", "1"))
        groups: dict[tuple[str, str, str], list[Alert]] = {}
        for alert in rest:
            groups.setdefault(_principal(alert), []).append(alert)
        for group in groups.values():
            head = group[0]
            out.line()
            out.wrapped(f"principal {head.get('principal_id')} ({head.get('identity_type')}) "
                        f"in app {_app(head)}", 2)
            for alert in group:
                out.alert_entry(alert, 4)
    return "\n".join(out.lines).rstrip("\n") + "\n"
