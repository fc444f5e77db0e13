"""The two outputs a backtest scores, read in either shape the detection emits.

*Alerts* (what an analyst triages) arrive as dicts with ``alert_id``, ``revision`` (an int
that grows with each update), ``detector``, ``kind`` (``detector`` | ``risk`` | ``incident``),
``tenant_id``, ``principal_id``, ``app_id``, ``severity``, ``first_seen``, ``last_seen`` and
``signals`` (``[{signal_id, detector, first_seen, last_seen}]``); the same ``alert_id`` comes
once per revision. Today's alerts have no ``revision``, ``kind`` or ``signals``: a missing
revision is 1 and a missing kind is ``detector``. *Signals* (every detector finding) have
``signal_id``, ``detector``, ``tenant_id``, ``principal_id``, ``app_id``, ``first_seen``,
``last_seen`` and ``severity``; without a separate signal stream, today's alerts are the signals.

Times may be datetimes, ISO-8601 strings or epoch numbers (s, ms or µs). A record without an
id, a detector or a time raises :class:`GraphsentryError` naming the record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphsentry.errors import GraphsentryError

KINDS = ("detector", "risk", "incident")


def to_epoch(value: Any) -> float:
    """Seconds since the epoch from a datetime, an ISO-8601 string or a number (s, ms or µs)."""
    from datetime import UTC, datetime

    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.timestamp()
    if isinstance(value, str):
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        if abs(number) > 1e14:  # Avro timestamp-micros
            return number / 1e6
        if abs(number) > 1e11:  # milliseconds
            return number / 1e3
        return number
    raise ValueError(f"not a time: {value!r}")


def _time(record: Mapping[str, Any], *names: str) -> float:
    for name in names:
        value = record.get(name)
        if value not in (None, ""):
            try:
                return to_epoch(value)
            except ValueError as exc:
                raise GraphsentryError(f"{_describe(record)}: {name}: {exc}") from None
    raise GraphsentryError(f"{_describe(record)}: no {' or '.join(names)}")


def _describe(record: Mapping[str, Any]) -> str:
    ident = record.get("alert_id") or record.get("signal_id") or "?"
    return f"{record.get('detector', '?')} {ident}"


@dataclass(slots=True)
class Emission:
    """One version of an alert or signal as it arrived: its revision and activity span."""

    revision: int
    first_seen: float
    last_seen: float


@dataclass(slots=True)
class Finding:
    """An alert (its latest revision) or a signal, with every version that arrived."""

    id: str
    detector: str
    kind: str
    tenant_id: str
    principal_id: str
    app_id: str
    severity: str
    first_seen: float
    last_seen: float
    revision: int
    emissions: list[Emission] = field(default_factory=list)
    signal_refs: list[dict[str, Any]] = field(default_factory=list)
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        """(tenant, principal): a delegated user is one person across apps."""
        return (self.tenant_id, self.principal_id)

    @property
    def updates(self) -> int:
        """Versions after the first that arrived (revisions that updated the alert)."""
        return len(self.emissions) - 1

    def raised_after(self, start: float) -> float | None:
        """Event time of the first version whose evidence reached ``start`` or later."""
        times = [e.last_seen for e in self.emissions if e.last_seen >= start]
        return min(times) if times else None


def _revision(record: Mapping[str, Any]) -> int:
    value = record.get("revision")
    if value in (None, ""):
        return 1
    try:
        return int(value)
    except (TypeError, ValueError):
        raise GraphsentryError(f"{_describe(record)}: revision {value!r} is not an int") from None


def _fold(records: Iterable[Mapping[str, Any]], id_field: str) -> list[Finding]:
    """One :class:`Finding` per id: the latest revision's fields, every emission kept."""
    found: dict[str, Finding] = {}
    for record in records:
        ident = record.get(id_field)
        if not ident or not record.get("detector"):
            raise GraphsentryError(f"{_describe(record)}: missing {id_field} or detector")
        revision = _revision(record)
        first = _time(record, "first_seen", "window_start")
        last = _time(record, "last_seen", "window_end")
        emission = Emission(revision, first, last)
        current = found.get(str(ident))
        if current is not None:
            current.emissions.append(emission)
            if revision < current.revision:
                continue
        kind = str(record.get("kind") or "detector")
        if kind not in KINDS:
            raise GraphsentryError(f"{_describe(record)}: kind must be one of "
                                   f"{', '.join(KINDS)}, not {kind!r}")
        finding = Finding(
            id=str(ident), detector=str(record["detector"]), kind=kind,
            tenant_id=str(record.get("tenant_id")), principal_id=str(record.get("principal_id")),
            app_id=str(record.get("app_id")), severity=str(record.get("severity") or ""),
            first_seen=first, last_seen=last, revision=revision,
            emissions=current.emissions if current is not None else [emission],
            signal_refs=list(record.get("signals") or []), raw=record)
        found[finding.id] = finding
    for finding in found.values():
        finding.emissions.sort(key=lambda e: (e.revision, e.last_seen))
    return list(found.values())


def latest_alerts(records: Iterable[Mapping[str, Any]]) -> list[Finding]:
    """Alerts, one per ``alert_id`` (its highest revision; the last one of equal revisions)."""
    return _fold(records, "alert_id")


def fold_signals(records: Iterable[Mapping[str, Any]]) -> list[Finding]:
    """Signals, one per ``signal_id``, spanning every version that arrived."""
    findings = _fold(records, "signal_id")
    for finding in findings:
        finding.first_seen = min(e.first_seen for e in finding.emissions)
        finding.last_seen = max(e.last_seen for e in finding.emissions)
    return findings


def signals_of(signals: Iterable[Mapping[str, Any]] | None,
               alerts: list[Finding]) -> list[Finding]:
    """The signal stream when given, else today's alerts read as signals (id = alert id)."""
    if signals is not None:
        return fold_signals(signals)
    return [Finding(a.id, a.detector, a.kind, a.tenant_id, a.principal_id, a.app_id,
                    a.severity, a.first_seen, a.last_seen, a.revision, list(a.emissions),
                    [], a.raw) for a in alerts]
