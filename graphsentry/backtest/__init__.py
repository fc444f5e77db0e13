"""Backtesting: detection over labeled data, alerts matched to scenarios, metrics and reports.

``detect_records`` is the embedded run shared by ``graphsentry backtest`` and ``graphsentry
demo``: the same dataflow as the deployment, in this process, with a progress line.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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
