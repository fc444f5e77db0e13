"""A principal's alert book: its recent signals and alerts, and the stages that turn one
signal into alert updates (see the package docstring).

**One alert per principal and horizon bucket.** A principal has at most one alert per bucket
of ``horizon_seconds`` (aligned to the epoch; default a UTC day): it is raised by the first
high-fidelity signal starting in the bucket (kind ``detector``), and it grows as evidence
arrives — into a risk alert (kind ``risk``) once some signal starting in the bucket has, over
the trailing horizon, signals of ``min_detectors`` detectors with a risk total at or above
the threshold, and into an incident (kind ``incident``, detector ``attack_chain``) once they
span ``min_stages`` attack stages. An attack therefore reaches the analyst as one alert that
is updated (same ``alert_id``, a higher ``revision``), not one alert per detector.

**Determinism.** Every alert is a function of the set of signals it rests on, and that set
is a function of the principal's signals: the high-fidelity signals starting in the bucket,
plus — when a risk alert or incident is due — every signal from one horizon before the
earliest crossing signal to the end of the bucket. Signals never disappear and their risk
only grows (provisional → final), so these sets only grow as signals arrive, in any order;
the ``revision`` of an alert is the number of its signals plus the number of them that are
final. The last revision is therefore the same for every arrival order, worker count or
replay, and so is its body.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from detectors.base import SEVERITIES, AppInfo, DetectorMeta, Signal, higher
from graphsentry.alerting import risk as risk_model
from graphsentry.alerting.exceptions import ExceptionSet
from graphsentry.alerting.policy import AlertPolicy
from graphsentry.alerting.render import (
    enrichment_record,
    evidence_record,
    signal_record,
    to_datetime,
)

DAY = 86_400.0
CHAIN, RISK = "attack_chain", "principal_risk"
CHAIN_META = DetectorMeta(
    id=CHAIN, title="Attack chain across stages",
    description="One principal's signals span several attack stages (initial access, "
                "discovery, collection, exfiltration, persistence, ...) within the horizon.",
    severity="critical", tactics=(), techniques=(), stage=None, fidelity="high",
    false_positives=("Red-team exercises", "Administrators doing bulk migrations"),
    references=("https://attack.mitre.org/tactics/TA0010/",))
RISK_META = DetectorMeta(
    id=RISK, title="Principal risk above threshold",
    description="One principal's signals within the horizon add up to a risk at or above the "
                "threshold.",
    severity="high", tactics=(), techniques=(), stage=None, fidelity="medium")


def finest(members: list[Entry]) -> list[Entry]:
    """Per detector, its signals of the shortest window length among the members: the same
    behaviour seen over a day starts at the day's first event, possibly hours of ordinary work
    before the ten minutes that crossed, so the finest scale says when it began."""
    shortest: dict[str, float] = {}
    for e in members:
        length = e.end - e.start
        if length < shortest.get(e.detector, float("inf")):
            shortest[e.detector] = length
    return [e for e in members if e.end - e.start == shortest[e.detector]]


def stage_order(members: list[Entry], metas: list[DetectorMeta]) -> list[str]:
    """The members' stages in the order they began: in the order of first appearance among
    the :func:`finest` signals, taken as they happened (first seen, window start, id) — a day
    window's first event may be the principal's ordinary work hours before the attack; the
    10-minute window that crossed says when the stage began."""
    stage = {e.signal_id: m.stage for e, m in zip(members, metas, strict=True)}
    ordered = sorted(finest(members), key=lambda e: (e.first_seen, e.start, e.signal_id))
    return list(dict.fromkeys(s for e in ordered if (s := stage[e.signal_id])))


def single(values: set[int]) -> int | None:
    """The one value of ``values``, or None when there are none or several."""
    return next(iter(values)) if len(values) == 1 else None


def alert_id(*parts: str | float) -> str:
    """Deterministic alert id: a hash of what identifies the alert."""
    text = "|".join(["alert", *(f"{p:.0f}" if isinstance(p, float) else p for p in parts)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass(slots=True)
class Entry:
    """What the book keeps of one signal (its latest emission)."""

    signal_id: str
    detector: str
    app_id: str
    start: float
    end: float
    first_seen: float
    last_seen: float
    severity: str
    fidelity: str
    risk: int
    final: bool
    count: int
    title: str | None
    suppressed: tuple[str, ...]
    evidence: dict[str, Any] | None
    """Kept for signals that can lead a detector alert (promotable fidelity) only."""
    asns: tuple[int, ...] = ()
    """Autonomous systems of the signal's events (``SignalContext.asns``)."""


@dataclass(slots=True)
class AlertState:
    kind: str
    """``detector``, ``risk`` or ``incident``."""
    detector: str
    bucket: float
    period: float
    members: set[str] = field(default_factory=set)
    correlated: bool = False
    """A risk alert or incident is due (the members hold the correlated signals)."""
    emitted: tuple[int, str, str] = (0, "", "")
    """(revision, status, detector) of the last emission."""


@dataclass(slots=True)
class AlertBook:
    """One principal's signals and alerts (plain data: pickles with the engine state)."""

    tenant_id: str
    principal_id: str
    identity_type: str
    user_id: str | None = None
    service_principal_id: str | None = None
    entries: dict[str, Entry] = field(default_factory=dict)
    alerts: dict[str, AlertState] = field(default_factory=dict)
    apps: dict[str, tuple[str | None, bool | None, str | None]] = field(default_factory=dict)
    """app id → (display name, first party, owner tenant), for the alert bodies."""
    available: bool = True


class AlertLayer:
    """The stages, configured once and applied to any principal's book."""

    def __init__(self, policy: AlertPolicy, metas: Mapping[str, DetectorMeta],
                 exceptions: ExceptionSet | None = None) -> None:
        self.policy = policy
        self.metas = dict(metas)
        self.metas.setdefault(CHAIN, CHAIN_META)
        self.metas.setdefault(RISK, RISK_META)
        self.exceptions = exceptions or ExceptionSet()
        self.created: set[str] = set()
        """Ids of alerts whose first version the last ``on_signal`` emitted (for counters)."""
        self.regraded: list[tuple[str, str]] = []
        """(detector before, detector now) of the alerts the last ``on_signal`` moved from one
        detector to another (a detector alert grown into a risk alert or incident)."""

    # -- stage 1-3: one signal in, the signal record and the alert updates out -----------

    def on_signal(self, book: AlertBook, signal: Signal, app: AppInfo | None,
                  available: bool, extra_exceptions: tuple[str, ...] = ()
                  ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        meta = self.metas[signal.detector]
        suppressed = tuple(sorted({*self.exceptions.covering(signal), *extra_exceptions}))
        score = risk_model.score(signal, self.policy.risk)
        record = signal_record(signal, meta, score, suppressed, app, available)
        book.available = available
        if app is not None:
            book.apps[app.app_id] = (app.display_name, app.first_party, app.owner_tenant_id)
        entry = self._entry(signal, score, suppressed)
        known = book.entries.get(entry.signal_id)
        if known is not None and known.final and not entry.final:
            return record, []  # a provisional repeat of a final signal changes nothing
        book.entries[entry.signal_id] = entry
        self._bound(book)
        return record, self._update(book, entry)

    def _entry(self, signal: Signal, score: int, suppressed: tuple[str, ...]) -> Entry:
        promotable = signal.fidelity == self.policy.promote_fidelity
        return Entry(signal.signal_id, signal.detector, signal.who.app_id, signal.window_start,
                     signal.window_end, signal.first_seen, signal.last_seen, signal.severity,
                     signal.fidelity, score, signal.final, signal.count, signal.title,
                     suppressed, dict(signal.evidence) if promotable else None,
                     signal.context.asns)

    def _update(self, book: AlertBook, entry: Entry) -> list[dict[str, Any]]:
        horizon = self.policy.horizon_seconds
        first = (entry.start // horizon) * horizon
        out = []
        # the entry's own bucket, and the next one (whose correlation reaches one horizon back)
        for bucket in (first, first + horizon):
            promoted = self._promoted(book, bucket)
            correlated = self._correlated(book, bucket)
            if not promoted and correlated is None:
                continue
            aid = alert_id(book.tenant_id, book.principal_id, "principal", bucket)
            state = book.alerts.get(aid)
            if state is None:
                state = book.alerts[aid] = AlertState("detector", entry.detector, bucket,
                                                      horizon)
            state.members = promoted | (correlated or set())
            state.correlated = correlated is not None
            body = self._emit(book, aid, state)
            if body is not None:
                out.append(body)
        return out

    def _promoted(self, book: AlertBook, bucket: float) -> set[str]:
        """The high-fidelity signals starting in ``bucket`` (suppressed ones included: they
        are shown, marked, and a bucket of suppressed ones only is a suppressed alert)."""
        end, fidelity = bucket + self.policy.horizon_seconds, self.policy.promote_fidelity
        return {e.signal_id for e in book.entries.values()
                if e.fidelity == fidelity and bucket <= e.start < end}

    def _correlated(self, book: AlertBook, bucket: float) -> set[str] | None:
        """The signals of the risk alert or incident of ``bucket``, or None when none is due."""
        horizon = self.policy.horizon_seconds
        end = bucket + horizon
        ranked = sorted((e for e in book.entries.values() if not e.suppressed),
                        key=lambda e: (e.start, e.signal_id))
        # Every window below lies within these; crossing is monotone (more stages, detectors
        # or risk never un-cross), so when they do not cross, no window does.
        if not self._crosses([e for e in ranked if bucket - horizon <= e.start < end]):
            return None
        for i, trigger in enumerate(ranked):
            if trigger.start < bucket:
                continue
            if trigger.start >= end:
                break
            window = [e for e in ranked[:i + 1] if e.start >= trigger.start - horizon]
            if self._crosses(window):
                since = trigger.start - horizon
                return {e.signal_id for e in ranked if since <= e.start < end}
        return None

    def _crosses(self, entries: list[Entry]) -> bool:
        policy = self.policy
        if len({self._stage(e) for e in entries} - {None}) >= policy.min_stages:
            return True
        return (len({e.detector for e in entries}) >= policy.min_detectors
                and self.risk_total(entries) >= policy.risk_threshold)

    def risk_total(self, entries: list[Entry]) -> int:
        """Sum over attack stages (tactics) of each stage's highest signal risk: risk
        accumulates across distinct tactics, and repeats of one behaviour, or several
        detectors seeing the same stage, count once."""
        best: dict[str, int] = {}
        for e in entries:
            stage = self.metas[e.detector].stage or e.detector
            if e.risk > best.get(stage, 0):
                best[stage] = e.risk
        return sum(best.values())

    def _stage(self, entry: Entry) -> str | None:
        return self.metas[entry.detector].stage

    # -- stage 4: lifecycle ----------------------------------------------------------------

    def _emit(self, book: AlertBook, aid: str, state: AlertState) -> dict[str, Any] | None:
        members = sorted((book.entries[s] for s in state.members if s in book.entries),
                         key=lambda e: (e.first_seen, e.start, e.signal_id))  # as it happened
        if not members:
            return None
        revision = sum(2 if e.final else 1 for e in members)
        active = [e for e in members if not e.suppressed]
        status = "open" if active else "suppressed"
        shown = active or members
        if state.correlated:
            stages = {self._stage(e) for e in shown} - {None}
            state.kind = "incident" if len(stages) >= self.policy.min_stages else "risk"
            state.detector = CHAIN if state.kind == "incident" else RISK
        else:
            state.kind = "detector"
            state.detector = shown[0].detector
        if (revision, status, state.detector) == state.emitted:
            return None
        if state.emitted[0] == 0:
            self.created.add(aid)
        elif state.detector != state.emitted[2]:
            self.regraded.append((state.emitted[2], state.detector))
        state.emitted = (revision, status, state.detector)
        return self.render(book, aid, state, shown, revision, status, members)

    def render(self, book: AlertBook, aid: str, state: AlertState, members: list[Entry],
               revision: int, status: str, every: list[Entry] | None = None
               ) -> dict[str, Any]:
        """The ``GraphAlert`` dict of one alert version: ``members`` are the signals it shows
        (the unsuppressed ones, when there are any), ``every`` all it rests on (default
        ``members``: counts, ``suppressed_by``)."""
        every = members if every is None else every
        lead = members[0]
        meta = self.metas[state.detector]
        member_metas = [self.metas[e.detector] for e in members]
        stages = stage_order(members, member_metas)
        severity = "low"
        for e in members:
            severity = higher(e.severity, severity)
        total = self.risk_total(members)
        detectors = sorted({e.detector for e in members})
        if state.kind == "detector":
            title = lead.title or meta.title
            if len(detectors) > 1:
                title = f"{title} (and {', '.join(d for d in detectors if d != lead.detector)})"
            evidence = dict(lead.evidence or {}, signals=len(members))
            if len(detectors) > 1:
                evidence["detectors"] = detectors
            risk_score = max(e.risk for e in members)
            promoted = ["high_fidelity"]
        else:
            if state.kind == "incident":
                severity = "critical"
                title = f"Attack chain: {' -> '.join(stages)} ({len(members)} signals)"
                promoted = ["attack_chain"]
            else:
                severity = higher(severity, "high")
                title = f"Risky activity: {', '.join(detectors)} (risk {total})"
                promoted = ["risk_threshold"]
            risk_score = min(100, total)
            evidence = {
                "stage_order": stages,
                "stages": {s: sorted(e.signal_id for e, m in zip(members, member_metas,
                                                                strict=True) if m.stage == s)
                           for s in stages},
                "detectors": sorted({e.detector for e in members}),
                "risk_by_detector": {d: max(e.risk for e in members if e.detector == d)
                                     for d in sorted({e.detector for e in members})},
                "risk_by_stage": {s: max(e.risk for e, m in zip(members, member_metas,
                                                                 strict=True) if m.stage == s)
                                  for s in stages},
                "risk_total": total,
            }
        app_ids = sorted({e.app_id for e in members})
        name, first_party, owner = book.apps.get(lead.app_id, (None, None, None))
        app = AppInfo(lead.app_id, name, owner, bool(first_party)) if first_party is not None \
            else None
        tactics = sorted({t for m in member_metas for t in m.tactics})
        techniques = sorted({t for m in member_metas for t in m.techniques})
        return {
            "alert_id": aid,
            "revision": revision,
            "kind": state.kind,
            "status": status,
            "detector": state.detector,
            "title": title,
            "severity": severity if severity in SEVERITIES else "high",
            "risk_score": risk_score,
            "tactic": tactics,
            "technique": techniques,
            "stage": meta.stage if state.kind == "detector" else None,
            "stages": stages,
            "tenant_id": book.tenant_id,
            "app_id": lead.app_id,
            "app_ids": app_ids,
            "app_display_name": name,
            "identity_type": book.identity_type,
            "principal_id": book.principal_id,
            "service_principal_id": book.service_principal_id,
            "user_id": book.user_id,
            "first_seen": to_datetime(min(e.first_seen for e in finest(members))),
            "last_seen": to_datetime(max(e.last_seen for e in finest(members))),
            "window_start": to_datetime(state.bucket),
            "window_end": to_datetime(state.bucket + state.period),
            "signal_count": len(members),
            "event_count": sum(e.count for e in members),
            "final": all(e.final for e in every),
            "promoted_by": promoted,
            "suppressed_by": sorted({x for e in every for x in e.suppressed}),
            "signals": [{
                "signal_id": e.signal_id, "detector": e.detector,
                "stage": self.metas[e.detector].stage, "app_id": e.app_id,
                "window_start": to_datetime(e.start), "window_end": to_datetime(e.end),
                "first_seen": to_datetime(e.first_seen), "last_seen": to_datetime(e.last_seen),
                "severity": e.severity, "fidelity": e.fidelity, "risk_score": e.risk,
                "final": e.final, "title": e.title,
            } for e in members],
            "evidence": evidence_record(evidence),
            "enrichment": enrichment_record(app, book.available,
                                            single({a for e in members for a in e.asns})),
        }

    # -- bounds -----------------------------------------------------------------------------

    def _bound(self, book: AlertBook) -> None:
        cap = self.policy.max_signals_per_principal
        if len(book.entries) > cap:
            oldest = sorted(book.entries.values(), key=lambda e: (e.start, e.signal_id))
            for e in oldest[:len(book.entries) - cap]:
                del book.entries[e.signal_id]

    def expire(self, book: AlertBook, watermark: float) -> bool:
        """Forget signals and alerts nothing can change any more (their buckets ended more
        than a horizon and a day before ``watermark``); True when the book is empty."""
        horizon = self.policy.horizon_seconds
        keep_from = watermark - 2 * horizon - DAY
        for sid in [s for s, e in book.entries.items() if e.start < keep_from]:
            del book.entries[sid]
        for aid in [a for a, st in book.alerts.items()
                    if st.bucket + st.period < watermark - horizon - DAY]:
            del book.alerts[aid]
        return not book.entries and not book.alerts
