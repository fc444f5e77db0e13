"""Backtest metrics from alerts and signals matched to labeled scenarios.

Definitions (also in ``docs/backtest.md``):

- An alert counts once per ``alert_id`` (its latest revision). **TP** alerts are within an
  attack (``matching.py``); every other alert is a **FP**: on a benign look-alike's principal
  at any time, on a principal in no scenario, or on an attack's principal outside the attack.
  **Precision** = TP / alerts.
- **Attack recall** (alerts): an attack is *detected* when at least one alert is within it.
  **Time to detect**: the event time of the first alert version whose ``last_seen`` reached the
  attack's start, minus the start (detectors raise when evidence crosses, so ``last_seen`` is
  the event that raised it; processing delay is not included).
- **Detector recall** (signals): an expected ``(attack, detector)`` pair is *found* when a
  signal of that detector is within the attack; its time to detect is measured the same way.
- **Rates per 1,000 principal-days**: signals (distinct ids), alerts (distinct ids) and alert
  updates (versions after an alert's first), over the distinct (tenant, principal, UTC day)
  pairs of the events.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphsentry.backtest.matching import (
    DEFAULT_LATENCY,
    Labels,
    MatchedAlert,
    Scenario,
    match_findings,
)
from graphsentry.backtest.streams import latest_alerts, signals_of

OVERALL = "ALL"
FP_OUTCOMES = ("benign", "unlabeled", "outside")


@dataclass(slots=True)
class DetectorMetrics:
    """One detector's row: its signals and expected pairs, its alerts and their outcomes."""

    detector: str
    signals: int = 0
    signals_within: int = 0
    expected: int = 0
    found: int = 0
    alerts: int = 0
    tp: int = 0
    fp: int = 0
    unlabeled: int = 0
    updates: int = 0
    ttd_seconds: list[float] = field(default_factory=list)

    @property
    def fn(self) -> int:
        return self.expected - self.found

    @property
    def precision(self) -> float | None:
        return self.tp / self.alerts if self.alerts else None

    @property
    def recall(self) -> float | None:
        return self.found / self.expected if self.expected else None

    @property
    def ttd_median(self) -> float | None:
        return statistics.median(self.ttd_seconds) if self.ttd_seconds else None

    @property
    def ttd_max(self) -> float | None:
        return max(self.ttd_seconds) if self.ttd_seconds else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "detector": self.detector, "signals": self.signals,
            "signals_within_attacks": self.signals_within, "expected": self.expected,
            "found": self.found, "fn": self.fn, "recall": self.recall, "alerts": self.alerts,
            "tp": self.tp, "fp": self.fp, "unlabeled": self.unlabeled,
            "alert_updates": self.updates, "precision": self.precision,
            "ttd_median_s": self.ttd_median, "ttd_max_s": self.ttd_max,
        }


@dataclass(slots=True)
class ScenarioResult:
    scenario: Scenario
    alerts: list[MatchedAlert] = field(default_factory=list)
    signals: list[MatchedAlert] = field(default_factory=list)
    ttd: float | None = None            # attacks: first alert reaching the start
    found: dict[str, float] = field(default_factory=dict)  # detector -> signal time to detect

    @property
    def detected(self) -> bool:
        return self.scenario.is_attack and bool(self.alerts)

    @property
    def missing(self) -> list[str]:
        return [d for d in self.scenario.expected_detectors if d not in self.found]

    def to_dict(self) -> dict[str, Any]:
        s = self.scenario
        return {
            "name": s.name, "kind": s.kind, "tenant_id": s.tenant_id,
            "principal_id": s.principal_id, "app_id": s.app_id, "detected": self.detected,
            "ttd_s": self.ttd, "alerts": len(self.alerts),
            "alert_detectors": sorted({m.detector for m in self.alerts}),
            "signals": len(self.signals),
            "signal_detectors": sorted({m.detector for m in self.signals}),
            "expected": list(s.expected_detectors), "found": dict(sorted(self.found.items())),
            "missing": self.missing, "looks_like": list(s.looks_like),
        }


@dataclass(slots=True)
class BacktestMetrics:
    name: str
    events: int
    principal_days: int | None
    detectors: list[DetectorMetrics]
    overall: DetectorMetrics
    scenarios: list[ScenarioResult]
    matched: list[MatchedAlert]          # alerts, latest revision each
    matched_signals: list[MatchedAlert]
    emissions: int                       # alert versions received

    def detector(self, name: str) -> DetectorMetrics | None:
        return next((d for d in self.detectors if d.detector == name), None)

    @property
    def attacks(self) -> list[ScenarioResult]:
        return [r for r in self.scenarios if r.scenario.is_attack]

    @property
    def benign_results(self) -> list[ScenarioResult]:
        return [r for r in self.scenarios if not r.scenario.is_attack]

    @property
    def attack_recall(self) -> float | None:
        attacks = self.attacks
        return sum(r.detected for r in attacks) / len(attacks) if attacks else None

    @property
    def attack_ttds(self) -> list[float]:
        return [r.ttd for r in self.attacks if r.ttd is not None]

    @property
    def benign_alerted(self) -> list[str]:
        return [r.scenario.name for r in self.benign_results if r.alerts]

    def outcome_count(self, outcome: str) -> int:
        return sum(1 for m in self.matched if m.outcome == outcome)

    def per_thousand(self, count: int) -> float | None:
        return count * 1000 / self.principal_days if self.principal_days else None

    def rates(self) -> dict[str, float | None]:
        """Signals, alerts and alert updates per 1,000 principal-days."""
        return {"signals": self.per_thousand(len(self.matched_signals)),
                "alerts": self.per_thousand(len(self.matched)),
                "alert_updates": self.per_thousand(self.emissions - len(self.matched))}

    def to_dict(self) -> dict[str, Any]:
        overall = self.overall.to_dict()
        overall.update({"recall": self.attack_recall, "signal_recall": self.overall.recall,
                        "attacks": len(self.attacks),
                        "attacks_detected": sum(r.detected for r in self.attacks),
                        "ttd_median_s": (statistics.median(self.attack_ttds)
                                         if self.attack_ttds else None),
                        "fp_by_outcome": {o: self.outcome_count(o) for o in FP_OUTCOMES}})
        return {
            "name": self.name, "events": self.events, "principal_days": self.principal_days,
            "per_1000_principal_days": self.rates(), "alert_versions": self.emissions,
            "overall": overall, "detectors": [d.to_dict() for d in self.detectors],
            "scenarios": [r.to_dict() for r in self.scenarios],
            "benign_alerted": self.benign_alerted,
        }


def compute_metrics(alerts: Iterable[Mapping[str, Any]], labels: Labels, events: int,
                    name: str = "default", *,
                    signals: Iterable[Mapping[str, Any]] | None = None,
                    principal_days: int | None = None,
                    latency: float = DEFAULT_LATENCY) -> BacktestMetrics:
    """Score ``alerts`` (every version, either shape) and ``signals`` (None: the alerts)."""
    folded = latest_alerts(alerts)
    matched = match_findings(folded, labels, latency)
    matched_signals = match_findings(signals_of(signals, folded), labels, latency)
    rows: dict[str, DetectorMetrics] = {}
    results = {s: ScenarioResult(s) for s in labels.scenarios}

    def row(detector: str) -> DetectorMetrics:
        return rows.setdefault(detector, DetectorMetrics(detector))

    for item in matched:
        metrics = row(item.detector)
        metrics.alerts += 1
        metrics.updates += item.finding.updates
        if item.outcome == "tp":
            metrics.tp += 1
        else:
            metrics.fp += 1
            metrics.unlabeled += item.outcome == "unlabeled"
        if item.scenario is not None and item.outcome in ("tp", "benign"):
            result = results[item.scenario]
            result.alerts.append(item)
            raised = item.finding.raised_after(item.scenario.start)
            if item.outcome == "tp" and raised is not None:
                ttd = raised - item.scenario.start
                result.ttd = ttd if result.ttd is None else min(result.ttd, ttd)
    for item in matched_signals:
        metrics = row(item.detector)
        metrics.signals += 1
        if item.scenario is None or item.outcome not in ("tp", "benign"):
            continue
        result = results[item.scenario]
        result.signals.append(item)
        metrics.signals_within += item.outcome == "tp"
        raised = item.finding.raised_after(item.scenario.start)
        if item.outcome == "tp" and raised is not None:
            best = result.found.get(item.detector)
            ttd = raised - item.scenario.start
            result.found[item.detector] = ttd if best is None else min(best, ttd)
    for result in results.values():
        for detector in result.scenario.expected_detectors:
            metrics = row(detector)
            metrics.expected += 1
            metrics.found += detector in result.found
        for detector, ttd in result.found.items():
            if detector in result.scenario.expected_detectors:
                row(detector).ttd_seconds.append(ttd)

    detectors = sorted(rows.values(), key=lambda m: m.detector)
    overall = DetectorMetrics(OVERALL)
    for metrics in detectors:
        for attr in ("signals", "signals_within", "expected", "found", "alerts", "tp", "fp",
                     "unlabeled", "updates"):
            setattr(overall, attr, getattr(overall, attr) + getattr(metrics, attr))
        overall.ttd_seconds.extend(metrics.ttd_seconds)
    emissions = sum(len(m.finding.emissions) for m in matched)
    days = principal_days if principal_days is not None else labels.principal_days
    return BacktestMetrics(name, events, days, detectors, overall, list(results.values()),
                           matched, matched_signals, emissions)


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def duration(seconds: float | None) -> str:
    """Compact duration: ``45s``, ``12m``, ``3h05m``, ``-2m``."""
    if seconds is None:
        return "-"
    sign = "-" if seconds < 0 else ""
    total = round(abs(seconds))
    if total < 60:
        return f"{sign}{total}s"
    if total < 3600:
        return f"{sign}{total // 60}m{total % 60:02d}s"
    return f"{sign}{total // 3600}h{(total % 3600) // 60:02d}m"


def rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def summary_lines(metrics: BacktestMetrics) -> list[str]:
    """The figures that matter, in four lines: attacks, detectors, false positives, rates."""
    attacks = metrics.attacks
    detected = sum(r.detected for r in attacks)
    undetected = [r.scenario.name for r in attacks if not r.detected]
    missing = sorted(f"{r.scenario.name}:{d}" for r in attacks for d in r.missing)
    ttds = metrics.attack_ttds
    overall = metrics.overall
    benign = metrics.benign_results
    rates = metrics.rates()
    return [
        f"attacks detected (an alert within the attack): {detected}/{len(attacks)} "
        f"({percent(metrics.attack_recall)}), median time to detect "
        f"{duration(statistics.median(ttds) if ttds else None)}"
        + (f"; missed {', '.join(undetected)}" if undetected else ""),
        f"expected detector signals: {overall.found}/{overall.expected} "
        f"({percent(overall.recall)})" + (f"; missing {', '.join(missing)}" if missing else ""),
        f"precision: {percent(overall.precision)} ({overall.tp} of {overall.alerts} alerts within "
        f"attacks); false positives: {metrics.outcome_count('benign')} on "
        f"{len(metrics.benign_alerted)} of {len(benign)} benign look-alikes (any time), "
        f"{metrics.outcome_count('unlabeled')} on unlabeled principals, "
        f"{metrics.outcome_count('outside')} on attack principals outside their attack",
        f"per 1,000 principal-days ({metrics.principal_days or '-'}): signals "
        f"{rate(rates['signals'])}, alerts {rate(rates['alerts'])}, alert updates "
        f"{rate(rates['alert_updates'])}; {metrics.events} events",
    ]
