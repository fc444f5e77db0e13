"""Display rows of backtest metrics, shared by the terminal tables and the HTML report."""

from __future__ import annotations

from typing import Any

from graphsentry.backtest.metrics import (
    OVERALL,
    BacktestMetrics,
    DetectorMetrics,
    duration,
    percent,
    rate,
)

METRIC_COLUMNS = ("detector", "signals", "within", "expected", "found", "recall", "alerts",
                  "tp", "fp", "unlabeled", "updates", "precision", "ttd_median", "ttd_max")
METRIC_HEADERS = {"within": "signals in attacks", "found": "found", "tp": "TP", "fp": "FP",
                  "updates": "alert updates", "recall": "signal recall",
                  "ttd_median": "TTD med", "ttd_max": "TTD max"}
ATTACK_COLUMNS = ("scenario", "principal", "detected", "ttd", "alerts", "alert_detectors",
                  "found", "missing")
ATTACK_HEADERS = {"ttd": "TTD", "alert_detectors": "alerted by",
                  "found": "expected signals found (TTD)", "missing": "missing"}
BENIGN_COLUMNS = ("scenario", "principal", "alerts", "alert_detectors", "signals", "looks_like")
BENIGN_HEADERS = {"alert_detectors": "alerted by", "looks_like": "looks like"}
COMPARE_COLUMNS = ("detector", "alerts_a", "alerts_b", "precision_a", "precision_b",
                   "d_precision", "recall_a", "recall_b", "d_recall", "ttd_a", "ttd_b")


def metric_rows(metrics: BacktestMetrics) -> list[dict[str, Any]]:
    """One row per detector, then the overall row."""
    rows = []
    for item in [*metrics.detectors, metrics.overall]:
        rows.append({
            "detector": item.detector, "signals": item.signals, "within": item.signals_within,
            "expected": item.expected, "found": item.found, "recall": percent(item.recall),
            "alerts": item.alerts, "tp": item.tp, "fp": item.fp, "unlabeled": item.unlabeled,
            "updates": item.updates, "precision": percent(item.precision),
            "ttd_median": duration(item.ttd_median), "ttd_max": duration(item.ttd_max),
        })
    return rows


def attack_rows(metrics: BacktestMetrics) -> list[dict[str, Any]]:
    return [{
        "scenario": r.scenario.name, "principal": r.scenario.principal_id[:13],
        "detected": "yes" if r.detected else "NO", "ttd": duration(r.ttd),
        "alerts": len(r.alerts),
        "alert_detectors": ", ".join(sorted({m.detector for m in r.alerts})) or "-",
        "found": ", ".join(f"{d} ({duration(t)})" for d, t in sorted(r.found.items())
                           if d in r.scenario.expected_detectors) or "-",
        "missing": ", ".join(r.missing) or "-",
    } for r in metrics.attacks]


def benign_rows(metrics: BacktestMetrics) -> list[dict[str, Any]]:
    return [{
        "scenario": r.scenario.name, "principal": r.scenario.principal_id[:13],
        "alerts": len(r.alerts),
        "alert_detectors": ", ".join(sorted({m.detector for m in r.alerts})) or "-",
        "signals": len(r.signals), "looks_like": ", ".join(r.scenario.looks_like) or "-",
    } for r in metrics.benign_results]


def _delta(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return "-"
    return f"{(b - a) * 100:+.1f}pp"


def comparison_rows(a: BacktestMetrics, b: BacktestMetrics) -> list[dict[str, Any]]:
    """Side-by-side rows of two configurations over the union of their detectors."""
    names = sorted({d.detector for d in a.detectors} | {d.detector for d in b.detectors})
    empty = DetectorMetrics("")
    pairs = [(a.detector(n) or empty, b.detector(n) or empty, n) for n in names]
    pairs.append((a.overall, b.overall, OVERALL))
    return [{
        "detector": detector, "alerts_a": left.alerts, "alerts_b": right.alerts,
        "precision_a": percent(left.precision), "precision_b": percent(right.precision),
        "d_precision": _delta(left.precision, right.precision),
        "recall_a": percent(left.recall), "recall_b": percent(right.recall),
        "d_recall": _delta(left.recall, right.recall),
        "ttd_a": duration(left.ttd_median), "ttd_b": duration(right.ttd_median),
    } for left, right, detector in pairs]


def compare_headers(a: str, b: str) -> dict[str, str]:
    return {"alerts_a": f"alerts {a}", "alerts_b": f"alerts {b}", "precision_a": f"P {a}",
            "precision_b": f"P {b}", "d_precision": "ΔP", "recall_a": f"signal R {a}",
            "recall_b": f"signal R {b}", "d_recall": "ΔR", "ttd_a": f"TTD {a}",
            "ttd_b": f"TTD {b}"}


def rate_line(metrics: BacktestMetrics) -> str:
    rates = metrics.rates()
    return (f"signals {rate(rates['signals'])}, alerts {rate(rates['alerts'])}, alert updates "
            f"{rate(rates['alert_updates'])} per 1,000 principal-days "
            f"({metrics.principal_days or 'unknown'} principal-days)")
