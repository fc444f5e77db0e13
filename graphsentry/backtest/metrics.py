"""Backtest metrics per detector and overall, from alerts matched to labeled scenarios.

Definitions (also in ``docs/backtest.md``):

- **TP** alerts: alerts matching an attack scenario (``matching.py``), whatever the detector;
  **FP** alerts: on a benign scenario's principal, on an attack principal outside the slack, or
  unlabeled (on a principal in no scenario). Precision = TP / (TP + FP) over alerts.
- **FN**: expected (scenario, detector) pairs of attack scenarios with no TP alert of that
  detector. Recall = found pairs / expected pairs; the overall recall is over all attack
  scenarios' expected detectors.
- **Time to detect** of a found (scenario, detector) pair: the earliest ``last_seen`` of its TP
  alerts minus the scenario start, in event time. Detectors fire as soon as a threshold is
  crossed, so ``last_seen`` is the event time of the event that made the alert fire.
- **Alerts per million events**: alerts per 1,000,000 events processed.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphsentry.backtest.matching import Labels, MatchedAlert, Scenario, match_alerts

OVERALL = "ALL"


@dataclass(slots=True)
class DetectorMetrics:
    detector: str
    alerts: int = 0
    tp: int = 0
    fp: int = 0
    unlabeled: int = 0
    expected: int = 0
    found: int = 0
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

    def per_million(self, events: int) -> float | None:
        return self.alerts * 1_000_000 / events if events else None

    def to_dict(self, events: int) -> dict[str, Any]:
        return {
            "detector": self.detector, "alerts": self.alerts, "tp": self.tp, "fp": self.fp,
            "unlabeled": self.unlabeled, "fn": self.fn, "expected": self.expected,
            "found": self.found, "precision": self.precision, "recall": self.recall,
            "ttd_median_s": self.ttd_median, "ttd_max_s": self.ttd_max,
            "alerts_per_million_events": self.per_million(events),
        }


@dataclass(slots=True)
class ScenarioResult:
    scenario: Scenario
    alerts: int = 0
    found: dict[str, float] = field(default_factory=dict)  # detector -> time to detect (s)

    @property
    def missing(self) -> list[str]:
        return [d for d in self.scenario.expected_detectors if d not in self.found]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.scenario.name, "kind": self.scenario.kind,
            "principal_id": self.scenario.principal_id, "app_id": self.scenario.app_id,
            "alerts": self.alerts, "expected": list(self.scenario.expected_detectors),
            "found": dict(sorted(self.found.items())), "missing": self.missing,
        }


@dataclass(slots=True)
class BacktestMetrics:
    name: str
    events: int
    detectors: list[DetectorMetrics]
    overall: DetectorMetrics
    scenarios: list[ScenarioResult]
    matched: list[MatchedAlert]

    def detector(self, name: str) -> DetectorMetrics | None:
        return next((d for d in self.detectors if d.detector == name), None)

    @property
    def benign_alerted(self) -> list[str]:
        return [r.scenario.name for r in self.scenarios
                if not r.scenario.is_attack and r.alerts]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "events": self.events,
            "overall": self.overall.to_dict(self.events),
            "detectors": [d.to_dict(self.events) for d in self.detectors],
            "scenarios": [r.to_dict() for r in self.scenarios],
            "benign_alerted": self.benign_alerted,
        }


def compute_metrics(alerts: Iterable[Mapping[str, Any]], labels: Labels, events: int,
                    name: str = "default") -> BacktestMetrics:
    matched = match_alerts(alerts, labels)
    rows: dict[str, DetectorMetrics] = {}
    results = {s: ScenarioResult(s) for s in labels.scenarios}

    def row(detector: str) -> DetectorMetrics:
        return rows.setdefault(detector, DetectorMetrics(detector))

    for item in matched:
        metrics = row(item.detector)
        metrics.alerts += 1
        if item.outcome == "tp":
            metrics.tp += 1
        else:
            metrics.fp += 1
            metrics.unlabeled += item.outcome == "unlabeled"
        if item.scenario is not None and item.outcome in ("tp", "benign"):
            result = results[item.scenario]
            result.alerts += 1
            if item.outcome == "tp":
                ttd = item.last_seen - item.scenario.start
                best = result.found.get(item.detector)
                result.found[item.detector] = ttd if best is None else min(best, ttd)

    for result in results.values():
        for detector in result.scenario.expected_detectors:
            metrics = row(detector)
            metrics.expected += 1
            metrics.found += detector in result.found
        for detector, ttd in result.found.items():
            row(detector).ttd_seconds.append(ttd)

    detectors = sorted(rows.values(), key=lambda m: m.detector)
    overall = DetectorMetrics(OVERALL)
    for metrics in detectors:
        overall.alerts += metrics.alerts
        overall.tp += metrics.tp
        overall.fp += metrics.fp
        overall.unlabeled += metrics.unlabeled
        overall.expected += metrics.expected
        overall.found += metrics.found
        overall.ttd_seconds.extend(metrics.ttd_seconds)
    return BacktestMetrics(name, events, detectors, overall, list(results.values()), matched)


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


def _delta(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return "-"
    return f"{(b - a) * 100:+.1f}pp"


METRIC_COLUMNS = ("detector", "alerts", "tp", "fp", "unlabeled", "fn", "precision", "recall",
                  "ttd_median", "ttd_max", "per_million")
METRIC_HEADERS = {"tp": "TP", "fp": "FP", "fn": "FN", "ttd_median": "TTD med",
                  "ttd_max": "TTD max", "per_million": "alerts/M ev"}


def metric_rows(metrics: BacktestMetrics) -> list[dict[str, Any]]:
    """Display rows (detectors, then the overall row) for one configuration."""
    rows = []
    for item in [*metrics.detectors, metrics.overall]:
        per_million = item.per_million(metrics.events)
        rows.append({
            "detector": item.detector, "alerts": item.alerts, "tp": item.tp, "fp": item.fp,
            "unlabeled": item.unlabeled, "fn": item.fn, "precision": percent(item.precision),
            "recall": percent(item.recall), "ttd_median": duration(item.ttd_median),
            "ttd_max": duration(item.ttd_max),
            "per_million": "-" if per_million is None else f"{per_million:.1f}",
        })
    return rows


COMPARE_COLUMNS = ("detector", "alerts_a", "alerts_b", "precision_a", "precision_b",
                   "d_precision", "recall_a", "recall_b", "d_recall", "ttd_a", "ttd_b")


def comparison_rows(a: BacktestMetrics, b: BacktestMetrics) -> list[dict[str, Any]]:
    """Side-by-side rows of two configurations over the union of their detectors."""
    names = sorted({d.detector for d in a.detectors} | {d.detector for d in b.detectors})
    empty = DetectorMetrics("")
    rows = []
    pairs = [(a.detector(n) or empty, b.detector(n) or empty, n) for n in names]
    pairs.append((a.overall, b.overall, OVERALL))
    for left, right, detector in pairs:
        rows.append({
            "detector": detector, "alerts_a": left.alerts, "alerts_b": right.alerts,
            "precision_a": percent(left.precision), "precision_b": percent(right.precision),
            "d_precision": _delta(left.precision, right.precision),
            "recall_a": percent(left.recall), "recall_b": percent(right.recall),
            "d_recall": _delta(left.recall, right.recall),
            "ttd_a": duration(left.ttd_median), "ttd_b": duration(right.ttd_median),
        })
    return rows


def compare_headers(a: str, b: str) -> dict[str, str]:
    return {"alerts_a": f"alerts {a}", "alerts_b": f"alerts {b}", "precision_a": f"P {a}",
            "precision_b": f"P {b}", "d_precision": "ΔP", "recall_a": f"R {a}",
            "recall_b": f"R {b}", "d_recall": "ΔR", "ttd_a": f"TTD {a}", "ttd_b": f"TTD {b}"}


def summary_lines(metrics: BacktestMetrics) -> list[str]:
    """Three lines: recall on attacks, false positives on benign look-alikes, precision."""
    overall = metrics.overall
    attacks = [r for r in metrics.scenarios if r.scenario.is_attack]
    benign = [r for r in metrics.scenarios if not r.scenario.is_attack]
    missing = sorted({f"{r.scenario.name}:{d}" for r in attacks for d in r.missing})
    benign_alerts = [m for m in metrics.matched if m.outcome == "benign"]
    during = sum(1 for m in benign_alerts
                 if m.scenario is not None and m.scenario.overlaps(m.first_seen, m.last_seen))
    return [
        f"recall: {overall.found}/{overall.expected} expected detections on {len(attacks)} "
        f"attack scenario(s) ({percent(overall.recall)}), median time to detect "
        f"{duration(overall.ttd_median)}" + (f"; missed {', '.join(missing)}" if missing else ""),
        f"false positives: {len(benign_alerts)} alert(s) on {len(metrics.benign_alerted)} of "
        f"{len(benign)} benign scenario(s) ({during} during the scenario, "
        f"{len(benign_alerts) - during} at other times), {overall.unlabeled} unlabeled alert(s)",
        f"precision: {percent(overall.precision)} ({overall.tp} of {overall.alerts} alerts on "
        f"attack scenarios), {metrics.events} events",
    ]

