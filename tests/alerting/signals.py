"""Signals for alert-layer tests: one factory, override what the case is about."""

from __future__ import annotations

from typing import Any

from detectors import catalog
from detectors.base import Signal, SignalContext, Who
from graphsentry.alerting.book import AlertBook, AlertLayer
from graphsentry.alerting.exceptions import ExceptionSet
from graphsentry.alerting.policy import AlertPolicy
from tests.detectors.factory import APP, SP, T0, TENANT

WHO = Who(TENANT, SP, "app_only", APP, None, SP)
ESTABLISHED = SignalContext(learning=False)


def signal(detector: str = "app_credential_added", *, start: float = T0,
           length: float = 3600.0, severity: str | None = None, fidelity: str | None = None,
           final: bool = True, dedup: str = "", who: Who = WHO,
           context: SignalContext = ESTABLISHED, evidence: dict[str, Any] | None = None,
           first: float | None = None, last: float | None = None, count: int = 1,
           title: str | None = None) -> Signal:
    """A signal of ``detector`` (its meta's severity and fidelity unless given)."""
    meta = catalog.meta_of(detector)
    return Signal(detector, who, start, start + length,
                  start + 1 if first is None else first, start + 2 if last is None else last,
                  dict(evidence or {}), severity or meta.severity, fidelity or meta.fidelity,
                  final, context, title, dedup, count)


def layer(policy: AlertPolicy | None = None,
          exceptions: ExceptionSet | None = None) -> AlertLayer:
    metas = {d: catalog.meta_of(d) for d in catalog.DETECTOR_IDS}
    return AlertLayer(policy or AlertPolicy(), metas, exceptions)


def book(who: Who = WHO) -> AlertBook:
    return AlertBook(who.tenant_id, who.principal_id, who.identity_type, who.user_id,
                     who.service_principal_id)


class Desk:
    """One principal's book and the alert layer: feed signals, keep every alert version."""

    def __init__(self, policy: AlertPolicy | None = None,
                 exceptions: ExceptionSet | None = None) -> None:
        self.layer = layer(policy, exceptions)
        self.book = book()
        self.records: list[dict[str, Any]] = []
        self.versions: list[dict[str, Any]] = []

    def feed(self, *signals: Signal) -> list[dict[str, Any]]:
        """The alert versions the signals produced."""
        out = []
        for s in signals:
            record, alerts = self.layer.on_signal(self.book, s, None, True)
            self.records.append(record)
            out.extend(alerts)
        self.versions.extend(out)
        return out

    def last(self) -> dict[str, dict[str, Any]]:
        latest: dict[str, dict[str, Any]] = {}
        for version in self.versions:
            latest[version["alert_id"]] = version
        return latest

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [a for a in self.last().values() if a["kind"] == kind]
