"""Windowed detectors: tumbling event-time windows at several lengths, against the principal's
own sealed baseline, firing as soon as a window crosses and finalized when it closes.

A subclass gives the small start/add/result pieces (``new_accumulator``, ``add``,
``crossed``, ``evidence``) and, when it learns a baseline, a ``measure`` of a window. For each
accepted event and each window length in ``windows`` (e.g. 10 min, 1 h, 1 day, so slow
activity crosses too) the event is added to that window's accumulator:

* **provisional**: the first time ``crossed(acc, level, slot)`` holds, a provisional signal is
  returned at once;
* **final**: when the watermark passes the window end, a final signal is returned if the
  window crossed (same id, evidence of the complete window), and the window's measure goes to
  the principal's profile — so a recurring job's usual volume becomes its baseline.

Accumulators must be monotone and ``crossed`` monotone in them, with a baseline that is fixed
per window (``slot.peaks``: the peaks of the measure over windows sealed before
``window start - lateness``, at the same time of day for windows shorter than a day): then
whether a window crosses does not depend on arrival order, and a provisional signal always has
a final one.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from functools import lru_cache
from typing import Any, Generic, TypeVar

from detectors._accumulators import Activity
from detectors.base import (
    Detector,
    DetectorState,
    EventContext,
    Facts,
    Signal,
    Slot,
    SlotKey,
    Who,
)
from detectors.event import GraphEvent

A = TypeVar("A")
DAY = 86_400.0
ATTRIBUTE_KEYS = ("source_ips", "user_agents", "sample_request_ids", "templates")


def above(value: float, floor: float, peak: float | None, multiplier: float,
          no_baseline_factor: float = 1.0) -> bool:
    """Whether ``value`` crosses: at least ``floor``, and with a baseline (``peak`` not None)
    at least ``multiplier`` times the peak; while learning (``peak`` None) at least
    ``floor * no_baseline_factor``."""
    if peak is None:
        return value >= floor * no_baseline_factor
    return value >= floor and value >= multiplier * peak


@lru_cache(maxsize=1 << 14)
def _measure_keys(detector: str, measures: tuple[str, ...], app_id: str, length: float
                  ) -> tuple[tuple[str, str, float], ...]:
    return tuple((app_id, f"{detector}.{name}", length) for name in measures)


class WindowedDetector(Detector, Generic[A]):
    """See the module docstring. ``windows`` are the window lengths (seconds), from the
    parameters; ``level`` below is an index into it."""

    shape_filtered = True
    windows: tuple[float, ...] = (600.0,)
    measures: tuple[str, ...] = ()
    """Names of what ``measure`` returns: each feeds the principal's baseline, and the
    sealed peaks come back in ``slot.peaks`` (same order)."""

    @abstractmethod
    def relevant(self, event: GraphEvent) -> bool:
        """Whether the event counts at all (cheap; :data:`~detectors.base.SHAPE_FIELDS` only)."""

    @abstractmethod
    def new_accumulator(self) -> A: ...

    @abstractmethod
    def add(self, acc: A, event: GraphEvent, ctx: EventContext) -> None: ...

    @abstractmethod
    def crossed(self, acc: A, level: int, slot: Slot) -> bool:
        """Whether the window crossed (monotone in ``acc``; ``slot.peaks`` is its baseline)."""

    def gate(self, acc: A, level: int) -> bool:
        """A cheap necessary condition of ``crossed`` without the baseline (e.g. some floor is
        reached): until it holds, the window's baseline is not even looked up."""
        return True

    @abstractmethod
    def evidence(self, acc: A) -> dict[str, Any]: ...

    def measure(self, acc: A) -> tuple[float, ...]:
        """The window's values of ``measures`` for the principal's baseline."""
        return ()

    def store_minimum(self, level: int) -> tuple[float, ...]:
        """Per measure, values below this never change a decision (e.g. floor / multiplier)
        and are not stored, so quiet principals keep no baseline ring."""
        return tuple(0.0 for _ in self.measures)

    def grade(self, acc: A, level: int, slot: Slot) -> tuple[str | None, str | None]:
        """(severity, fidelity) of a crossed window (None: the meta's)."""
        return None, None

    def title(self, acc: A, level: int) -> str | None:
        return None

    def stats(self, acc: A) -> tuple[float, float, int]:
        """(first event time, last event time, events) of the accumulator."""
        return (float(getattr(acc, "first_seen", 0.0)), float(getattr(acc, "last_seen", 0.0)),
                int(getattr(acc, "requests", 1)))

    def refine(self, event: GraphEvent) -> bool:
        """A per-event filter after ``relevant`` (set ``refined = True`` to have it asked)."""
        return True

    def accepts_shape(self, event: GraphEvent) -> bool:
        return self.relevant(event)

    def accepts(self, event: GraphEvent, facts: Facts) -> bool:
        return self.relevant(event) and self.refine(event)

    def measure_keys(self, who: Who, length: float) -> tuple[tuple[str, str, float], ...]:
        """The principal's profile keys of ``measures`` at this window length (built once per
        app and length: every closing window asks)."""
        return _measure_keys(self.meta.id, self.measures, who.app_id, length)

    def open_slot(self, state: DetectorState, key: SlotKey, ctx: EventContext,
                  who: Who) -> Slot:
        acc = self.new_accumulator()
        if key[0] != self.windows[0] and isinstance(acc, Activity):
            acc.lean = True  # longer windows absorb the attributes of the shortest ones
        state.current = ()  # a new window: the cached latest ones are stale
        return self.slot(state, key, acc, ctx, resolve=False)

    def resolve(self, slot: Slot, key: SlotKey, ctx: EventContext,
                hour_aware: bool = True, who: Who | None = None) -> None:
        """The slot's context (see :meth:`Detector.resolve`) and its baseline peaks."""
        super().resolve(slot, key, ctx, hour_aware)
        profile = ctx.profile
        if self.measures and profile is not None and not slot.learning and who is not None:
            length, start, _ = key
            at = None if length >= DAY else start
            sealed = start - ctx.lateness - ctx.close_slack
            slot.peaks = tuple(profile.peak(k, sealed, at)
                               for k in self.measure_keys(who, length))

    def _crosses(self, acc: A, level: int, slot: Slot, key: SlotKey, ctx: EventContext,
                 who: Who) -> bool:
        if not self.gate(acc, level):
            return False
        if not slot.resolved:
            self.resolve(slot, key, ctx, who=who)
        return self.crossed(acc, level, slot)

    def observe(self, state: DetectorState, event: GraphEvent, ctx: EventContext,
                who: Who) -> list[Signal]:
        ts = event.ts
        current = state.current
        if current and current[0] <= ts < current[1]:  # the latest windows, as usual
            slots = current[2]
        else:
            slots = self._slots_of(state, ts, ctx, who)
        out: list[Signal] = []
        facts = ctx.facts
        add, gate = self.add, self.gate
        before = after = None  # windows of a principal often share one (interned) trail
        for level, slot in enumerate(slots):  # the hot loop: one pass per window length
            acc = slot.acc
            add(acc, event, ctx)
            trail = slot.trail
            if trail is not before:
                before, after = trail, trail.with_facts(facts)
            if after is not trail:
                slot.trail = after
            if not slot.fired and gate(acc, level):
                length = self.windows[level]
                key = (length, (ts // length) * length, "")
                if self._crosses(acc, level, slot, key, ctx, who):
                    slot.fired = True
                    out.append(self._signal(who, key, slot, level, ctx, final=False,
                                            state=state))
        return out

    def _slots_of(self, state: DetectorState, ts: float, ctx: EventContext,
                  who: Who) -> tuple[Slot, ...]:
        """The slots holding ``ts``, one per window length (opened as needed); cached in
        ``state.current`` with the span of time they share (until a window opens or closes)."""
        found = []
        low, high = -math.inf, math.inf
        for length in self.windows:
            start = (ts // length) * length
            key = (length, start, "")
            slot = state.slots.get(key)
            if slot is None:
                slot = self.open_slot(state, key, ctx, who)
            found.append(slot)
            if start > low:
                low = start
            if start + length < high:
                high = start + length
        slots = tuple(found)
        state.current = (low, high, slots)
        return slots

    def close(self, state: DetectorState, watermark: float, ctx: EventContext,
              who: Who) -> list[Signal]:
        out: list[Signal] = []
        profile = ctx.profile
        shortest = self.windows[0]
        ended = self.ended(state, watermark)
        if ended:
            state.current = ()
        for key in ended:  # shorter windows before longer ones
            slot = state.slots.pop(key)
            length = key[0]
            level = self.windows.index(length) if length in self.windows else 0
            if length == shortest:
                self._pass_up(state, key, slot)
            if slot.fired or self._crosses(slot.acc, level, slot, key, ctx, who):
                out.append(self._signal(who, key, slot, level, ctx, final=True, state=state))
            if self.measures and profile is not None:
                for measure_key, value, minimum in zip(
                        self.measure_keys(who, length), self.measure(slot.acc),
                        self.store_minimum(level), strict=True):
                    profile.record(measure_key, key[1], value, minimum)
        return out

    def _pass_up(self, state: DetectorState, key: SlotKey, slot: Slot) -> None:
        """A closing shortest window gives its attributes to the longer windows holding it."""
        acc = slot.acc
        if not isinstance(acc, Activity):
            return
        start = key[1]
        for length in self.windows[1:]:
            parent = state.slots.get((length, (start // length) * length, ""))
            if parent is not None and isinstance(parent.acc, Activity):
                parent.acc.absorb(acc)

    def _signal(self, who: Who, key: SlotKey, slot: Slot, level: int, ctx: EventContext, *,
                final: bool, state: DetectorState | None = None) -> Signal:
        acc = slot.acc
        first, last, count = self.stats(acc)
        severity, fidelity = self.grade(acc, level, slot)
        evidence = self.evidence(acc)
        if level > 0 and isinstance(acc, Activity) and state is not None:
            # attributes: absorbed from the closed shortest windows, plus the open ones
            attrs = acc.attributes()
            length, start, _ = key
            for (short, begin, _), child in state.slots.items():
                if (short == self.windows[0] and start <= begin < start + length
                        and isinstance(child.acc, Activity)):
                    attrs.absorb(child.acc)
            evidence.update({k: v for k, v in attrs.evidence().items()
                             if k in ATTRIBUTE_KEYS})
        evidence["window_seconds"] = key[0]
        if self.measures:
            evidence["baseline_peaks"] = (None if slot.peaks is None
                                          else dict(zip(self.measures, slot.peaks, strict=True)))
        return self.signal(who, key, slot, evidence, first=first, last=last, final=final,
                           count=count, severity=severity, fidelity=fidelity,
                           title=self.title(acc, level), ctx=ctx)


def peak_of(slot: Slot, index: int = 0) -> float | None:
    """The sealed baseline peak of measure ``index`` (None while learning)."""
    return None if slot.peaks is None else slot.peaks[index]


def per_window(values: tuple[Any, ...], windows: tuple[float, ...], name: str) -> None:
    """Check that a per-window parameter has one value per window length."""
    if len(values) != len(windows):
        raise ValueError(f"Params.{name}: expected {len(windows)} values (one per window "
                         f"length), got {len(values)}")
