"""Small accumulator pieces shared by the windowed detectors.

Everything here is plain data that pickles (dataclasses of ints, floats, strings, sets and
lists) and stays bounded: distinct sets stop growing at a cap and remember that they did.
Samples keep the *smallest* values so that evidence does not depend on arrival order.
"""

from __future__ import annotations

import math
from bisect import insort
from dataclasses import dataclass, field, fields
from typing import Any, Generic, TypeVar

from detectors.base import (
    SAMPLE_SIZE,
    EventContext,
    Finding,
    WindowedDetector,
    WindowedState,
    sample,
    window_start,
)
from detectors.event import GraphEvent

# Distinct resources (sites, mailboxes, items, ...) kept per window and principal. Thresholds on
# distinct counts must stay at or below it, so the cap never changes whether a window fires.
DISTINCT_CAP = 10_000
# Distinct descriptive values (source IPs, user agents) kept per window and principal.
ATTRIBUTE_CAP = 1_000
# Statuses of a successful file-content download: 302 redirect to SharePoint, or 200 inline.
DOWNLOAD_STATUSES = (200, 302)


@dataclass(slots=True)
class CappedSet:
    """A distinct set that stops growing at ``cap``; ``saturated`` says values were dropped."""

    cap: int = DISTINCT_CAP
    values: set[str] = field(default_factory=set)
    saturated: bool = False

    def add(self, value: str | None) -> None:
        if not value or value in self.values:
            return
        if len(self.values) >= self.cap:
            self.saturated = True
            return
        self.values.add(value)

    def __len__(self) -> int:
        return len(self.values)

    def summary(self) -> dict[str, Any]:
        """Evidence: the distinct count (a lower bound when capped) and a sample."""
        return {"count": len(self.values), "capped": self.saturated,
                "sample": sample(self.values)}


@dataclass(slots=True)
class SmallestValues:
    """The ``size`` smallest distinct values seen: a bounded, order-independent sample."""

    size: int = SAMPLE_SIZE
    values: list[str] = field(default_factory=list)

    def add(self, value: str | None) -> None:
        if not value or value in self.values:
            return
        if len(self.values) < self.size:
            insort(self.values, value)
        elif value < self.values[-1]:
            self.values.pop()
            insort(self.values, value)


def _attribute_set() -> CappedSet:
    return CappedSet(cap=ATTRIBUTE_CAP)


@dataclass(slots=True)
class Activity:
    """What every windowed detector records about the requests it counted in one window."""

    requests: int = 0
    denied: int = 0
    first_seen: float = math.inf
    last_seen: float = -math.inf
    source_ips: CappedSet = field(default_factory=_attribute_set)
    user_agents: CappedSet = field(default_factory=_attribute_set)
    request_ids: SmallestValues = field(default_factory=SmallestValues)

    def count(self, event: GraphEvent) -> None:
        self.requests += 1
        self.denied += event.denied
        self.first_seen = min(self.first_seen, event.ts)
        self.last_seen = max(self.last_seen, event.ts)
        self.source_ips.add(event.ip)
        self.user_agents.add(event.user_agent)
        self.request_ids.add(event.request_id)

    def evidence(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "denied": self.denied,
            "source_ips": self.source_ips.summary(),
            "user_agents": self.user_agents.summary(),
            "sample_request_ids": list(self.request_ids.values),
        }


@dataclass(slots=True)
class BaselineActivity(Activity):
    """An :class:`Activity` that also carries the principal's baseline as of the last event:
    peak metrics over its closed windows (``WindowedState.peaks``) and how many closed."""

    baseline_peaks: dict[str, float] = field(default_factory=dict)
    baseline_windows: int = 0

    def peak(self, metric: str, min_windows: int) -> float | None:
        """The baseline peak of ``metric``, or None while fewer than ``min_windows`` closed."""
        if self.baseline_windows < min_windows:
            return None
        return self.baseline_peaks.get(metric, 0.0)


B = TypeVar("B", bound=BaselineActivity)


class BaselineWindowedDetector(WindowedDetector[B], Generic[B]):
    """A windowed detector whose threshold also depends on the principal's own baseline.

    ``crossed(acc)`` sees only the accumulator, so before each relevant event the window's
    accumulator gets a copy of the baseline (refreshed only when more windows have closed).
    """

    def observe(self, state: WindowedState[B], event: GraphEvent,
                ctx: EventContext) -> list[Finding]:
        if self.relevant(event, ctx):
            start = window_start(event.ts, self.window_seconds)
            acc = state.windows.get(start)
            if acc is None:
                acc = state.windows[start] = self.new_accumulator()
            if acc.baseline_windows != state.closed_windows:
                acc.baseline_peaks = dict(state.peaks)
                acc.baseline_windows = state.closed_windows
        return super().observe(state, event, ctx)


def above_floor_and_baseline(value: float, floor: float, peak: float | None,
                             multiplier: float, no_baseline_factor: float = 1.0) -> bool:
    """Whether ``value`` alerts: without a baseline (``peak`` None) it must reach
    ``floor`` * ``no_baseline_factor``; with one, ``floor`` and ``multiplier`` * the peak."""
    if peak is None:
        return value >= floor * no_baseline_factor
    return value >= floor and value >= multiplier * peak


def is_batch_envelope(event: GraphEvent) -> bool:
    """The ``$batch`` row itself: its sub-requests are logged separately and counted instead."""
    return event.family == "batch" or event.template.endswith("/$batch")


def is_file_download(event: GraphEvent, statuses: tuple[int, ...]) -> bool:
    """A file-content download that went through (counted, not weighed: a 302 has size 0)."""
    return event.is_download and event.status in statuses


def caller_id(event: GraphEvent) -> str:
    """The calling user (delegated) or principal, lower-cased, to compare with path targets."""
    return (event.user_id or event.principal_id).lower()


def target_user_key(event: GraphEvent) -> str | None:
    """Lower-cased ``target_user``, with ``me`` resolved to the caller so both spellings agree."""
    if not event.target_user:
        return None
    target = event.target_user.lower()
    return caller_id(event) if target == "me" else target


def validate_params(params: Any, *distinct_thresholds: str) -> None:
    """Check a frozen ``Params`` dataclass built from configuration; raise a clear ValueError.

    Every field must have its default's type (an int is accepted for a float, a list for a
    tuple, which is converted); numbers must be finite and positive. ``distinct_thresholds``
    name the thresholds on distinct counts, which must not exceed :data:`DISTINCT_CAP`.
    """
    owner = type(params).__qualname__
    for f in fields(params):
        value, default = getattr(params, f.name), f.default
        where = f"{owner}.{f.name}"
        if isinstance(default, tuple):
            kind = type(default[0]) if default else object
            if not isinstance(value, tuple | list) or not all(
                    isinstance(item, kind) and not isinstance(item, bool) for item in value):
                raise ValueError(f"{where}: expected a list of {kind.__name__}, got {value!r}")
            object.__setattr__(params, f.name, tuple(value))
            continue
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ValueError(f"{where}: expected true or false, got {value!r}")
            continue
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or (isinstance(default, int) and not isinstance(value, int))):
            raise ValueError(f"{where}: expected {type(default).__name__}, got {value!r}")
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{where}: must be a positive number, got {value!r}")
    for name in distinct_thresholds:
        if getattr(params, name) > DISTINCT_CAP:
            raise ValueError(f"{owner}.{name}: at most {DISTINCT_CAP} (distinct-value cap)")
