"""Backtesting: detection over labeled data, alerts and signals matched to scenarios, metrics
and reports.

``detect_records`` is the embedded run shared by ``graphsentry backtest`` and ``graphsentry
demo``: the same dataflow as the deployment, in this process, with a progress line.
``detect_with_signals`` also collects the signal stream when the detection emits one.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from graphsentry.progress import Progress

if TYPE_CHECKING:
    from graphsentry.config import Config


def _counted(records: Sequence[dict[str, Any]], bar: Progress) -> Iterator[dict[str, Any]]:
    for record in records:
        bar.advance()
        yield record


def detect_records(records: Sequence[dict[str, Any]], config: Config, *, label: str = "detect",
                   progress: bool | None = None) -> tuple[list[dict[str, Any]], Any]:
    """Alerts (in emission order) and ``DetectStats`` of an embedded run over ``records``."""
    from graphsentry.detection import run_embedded

    alerts: list[dict[str, Any]] = []
    with Progress(len(records), label, force=progress) as bar:
        stats = run_embedded(_counted(records, bar), config, on_alert=alerts.append)
    return alerts, stats


def detect_with_signals(records: Sequence[dict[str, Any]], config: Config, *,
                        label: str = "detect", progress: bool | None = None
                        ) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None, Any]:
    """Alerts, signals (``None`` when ``run_embedded`` has no ``on_signal``: today's alerts
    are then the signals) and ``DetectStats`` of an embedded run."""
    from graphsentry.detection import run_embedded

    alerts: list[dict[str, Any]] = []
    signals: list[dict[str, Any]] | None = None
    hooks: dict[str, Any] = {"on_alert": alerts.append}
    if "on_signal" in inspect.signature(run_embedded).parameters:
        signals = []
        hooks["on_signal"] = signals.append
    with Progress(len(records), label, force=progress) as bar:
        stats = run_embedded(_counted(records, bar), config, **hooks)
    return alerts, signals, stats


def principal_days(records: Iterable[Mapping[str, Any]]) -> int:
    """Distinct (tenant, principal, UTC day) pairs of normalized records."""
    from graphsentry.backtest.streams import to_epoch

    seen: set[tuple[str, str, int]] = set()
    for record in records:
        day = int(to_epoch(record["time_generated"]) // 86400)
        seen.add((str(record.get("tenant_id")), str(record.get("principal_id")), day))
    return len(seen)
