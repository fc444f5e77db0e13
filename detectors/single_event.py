"""Single-event rules: one request is enough, repeats within a window collapse into one alert.

A rule implements ``match(event, ctx) -> Match | None``. The first match of a (principal,
``Match.dedup``) in a tumbling event-time window fires; later matches with the same dedup key
in that window are absorbed. Window start and dedup key make the alert id, so the id does not
depend on which of the repeats arrived first.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any

from detectors.base import Detector, EventContext, Finding, window_start
from detectors.event import GraphEvent


def succeeded_2xx(event: GraphEvent) -> bool:
    """A change that took effect: 2xx only (a 3xx is no proof of a write)."""
    return 200 <= event.status < 300


@dataclass(frozen=True, slots=True)
class Match:
    dedup: str
    evidence: dict[str, Any]
    severity: str | None = None
    title: str | None = None


@dataclass(slots=True)
class FiredKeys:
    """Dedup keys that already fired, by window start."""

    by_window: dict[float, set[str]] = field(default_factory=dict)


class SingleEventDetector(Detector):
    """One alert per matching event, deduplicated per window. ``candidate`` (shape fields only)
    says whether ``match`` can return a hit; the engine asks it once per event shape."""

    window_seconds: float = 3600.0
    shape_filtered = True

    @abstractmethod
    def candidate(self, event: GraphEvent) -> bool:
        """Whether ``match`` may return a hit for this event (depends on shape fields only)."""

    @abstractmethod
    def match(self, event: GraphEvent, ctx: EventContext) -> Match | None:
        """The alert content when ``event`` is a hit, else None."""

    def accepts(self, event: GraphEvent, ctx: EventContext) -> bool:
        return self.candidate(event)

    def new_state(self) -> FiredKeys:
        return FiredKeys()

    def observe(self, state: FiredKeys, event: GraphEvent, ctx: EventContext) -> list[Finding]:
        hit = self.match(event, ctx)
        if hit is None:
            return []
        start = window_start(event.ts, self.window_seconds)
        fired = state.by_window.setdefault(start, set())
        if hit.dedup in fired:
            return []
        fired.add(hit.dedup)
        return [self.finding(event, start, start + self.window_seconds, event.ts, event.ts,
                             hit.evidence, dedup=hit.dedup, severity=hit.severity,
                             title=hit.title)]

    def expire(self, state: FiredKeys, watermark: float) -> bool:
        for start in [s for s in state.by_window if s + self.window_seconds < watermark]:
            del state.by_window[start]
        return not state.by_window
