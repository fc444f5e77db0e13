"""One event factory for every detector test: sensible defaults, override what the case is about."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

from detectors.base import (
    EMPTY_CONTEXT,
    Detector,
    EventContext,
    Finding,
    WindowedDetector,
    WindowedState,
)
from detectors.event import GraphEvent

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z, a window boundary for any window length dividing a day
TENANT = "11111111-1111-1111-1111-111111111111"
APP = "22222222-2222-2222-2222-222222222222"
SP = "33333333-3333-3333-3333-333333333333"
USER = "44444444-4444-4444-4444-444444444444"

_BASE = GraphEvent(
    ts=T0, request_id="req-0", tenant_id=TENANT, app_id=APP, principal_id=SP,
    identity_type="app_only", method="GET", uri="https://graph.microsoft.com/v1.0/users",
    template="/users", family="users", category="directory", status=200, size=1000,
    service_principal_id=SP, ip="203.0.113.10", user_agent="Mozilla/5.0",
)

_counter = 0


def event(**overrides: Any) -> GraphEvent:
    """A GraphEvent with a fresh request id; pass the fields the case is about."""
    global _counter
    _counter += 1
    overrides.setdefault("request_id", f"req-{_counter}")
    return replace(_BASE, **overrides)


def delegated(**overrides: Any) -> GraphEvent:
    """A delegated (user token) event."""
    overrides.setdefault("identity_type", "delegated")
    overrides.setdefault("principal_id", USER)
    overrides.setdefault("user_id", USER)
    overrides.setdefault("service_principal_id", None)
    return event(**overrides)


def run(detector: Detector, events: Iterable[GraphEvent], state: Any = None,
        ctx: EventContext = EMPTY_CONTEXT) -> list[Finding]:
    """Feed ``events`` in order into one principal's state; return every finding."""
    state = detector.new_state() if state is None else state
    return [f for e in events for f in detector.observe(state, e, ctx)]


def shuffled(events: Sequence[GraphEvent], seed: int) -> list[GraphEvent]:
    """The same events in another (reproducible) arrival order."""
    out = list(events)
    random.Random(seed).shuffle(out)
    return out


def replay_windows(detector: WindowedDetector[Any], state: WindowedState[Any],
                   window_events: Callable[[float], list[GraphEvent]],
                   windows: int, first: float = T0) -> list[list[Finding]]:
    """Run ``window_events(start)`` for ``windows`` consecutive windows from ``first``, closing
    each one (``expire`` past its end) before the next; the findings of each window."""
    length = detector.window_seconds
    findings = []
    for n in range(windows):
        start = first + n * length
        findings.append(run(detector, window_events(start), state))
        detector.expire(state, start + 2 * length)
    return findings


def alert_ids_in_orders(make: Callable[[], Detector], events: Sequence[GraphEvent],
                        orders: int = 5) -> list[set[str]]:
    """The alert ids a fresh detector yields for ``events`` as given, then shuffled ``orders``
    times: all equal when firing does not depend on arrival order."""
    variants = [list(events), *(shuffled(events, seed) for seed in range(orders))]
    return [{f.alert_id for f in run(make(), variant)} for variant in variants]
