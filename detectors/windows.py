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
from dataclasses import is_dataclass
from functools import cached_property, lru_cache
from itertools import pairwise
from typing import Any, Generic, TypeVar, cast

from detectors._accumulators import Activity, fork
from detectors.base import (
    NO_TRAIL,
    RESTORED,
    Detector,
    DetectorState,
    EventContext,
    Facts,
    Signal,
    Slot,
    SlotKey,
    Trail,
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


@lru_cache(maxsize=256)
def _nested(windows: tuple[float, ...]) -> bool:
    """Whether each window length is a multiple of the one before (epoch-aligned windows
    then nest: an event's shorter windows lie inside its longer ones)."""
    return all(longer % shorter == 0 for shorter, longer in pairwise(windows))


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
    def new_accumulator(self) -> A:
        """An empty accumulator. Windows of nested lengths share one while they hold the same
        events when it is a dataclass with a ``first_seen`` field (the earliest event time
        ``add`` was given: :meth:`_diverge` finds its holders by it); other kinds never are."""

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
                  who: Who, acc: A | None = None) -> Slot:
        """Open the window ``key`` with ``acc`` (a new accumulator when None)."""
        if acc is None:
            acc = self.new_accumulator()
            if key[0] != self.windows[0] and isinstance(acc, Activity):
                acc.lean = True  # longer windows absorb the attributes of the shortest ones
        state.forget()  # a new window: the cached latest ones are stale
        return self.slot(state, key, acc, ctx, resolve=False)

    def baseline(self, key: SlotKey, ctx: EventContext, who: Who) -> tuple[float, ...] | None:
        """The sealed peaks of ``measures`` at this window length (and, below a day, time of
        day) as ``slot.peaks``."""
        profile = ctx.profile
        if not self.measures or profile is None:
            return None
        length, start, _ = key
        at = None if length >= DAY else start
        sealed = start - ctx.lateness - ctx.close_slack
        return tuple(profile.peak(k, sealed, at) for k in self.measure_keys(who, length))

    def _crosses(self, acc: A, level: int, slot: Slot, key: SlotKey, ctx: EventContext,
                 who: Who) -> bool:
        if not self.gate(acc, level):
            return False
        if slot.basis is None:
            self.resolve(slot, key, ctx, who=who)
        return self.crossed(acc, level, slot)

    def observe(self, state: DetectorState, event: GraphEvent, ctx: EventContext,
                who: Who) -> list[Signal]:
        ts = event.ts
        if state.low <= ts < state.high:  # the latest windows, as usual
            slots = state.current
        else:
            slots = self._slots_of(state, ts, ctx, who)
        out: list[Signal] = []
        facts = ctx.facts
        add, gate = self.add, self.gate
        before: Trail | None = None  # a principal's windows often share one (interned) trail
        after = NO_TRAIL
        added = None  # windows holding the same events share an accumulator (``_slots_of``)
        for level, slot in enumerate(slots):  # the hot loop: one pass per window length
            acc = slot.acc
            if acc is not added:
                add(acc, event, ctx)
                added = acc
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
        ``state.current`` with the span of time they share (until a window opens or closes).

        Windows that hold the same events share one accumulator (when the lengths nest, each
        a multiple of the one before): the windows opened for one event all start empty, so
        they get one; a window about to receive an event that a shorter holder of its
        accumulator will not see gets its own copy first (:meth:`_diverge`). Most principals'
        events fall in one short window, whose longer windows then cost nothing more."""
        windows = self.windows
        nested = self._shares and _nested(windows)
        if state.low == RESTORED:  # the first look since a snapshot was restored
            self._reconcile(state, nested)
        found: list[Slot | None] = []
        missing: list[SlotKey] = []
        low, high = -math.inf, math.inf
        for length in windows:
            start = (ts // length) * length
            key = (length, start, "")
            slot = state.slots.get(key)
            if slot is None:
                missing.append(key)
            found.append(slot)
            if start > low:
                low = start
            if start + length < high:
                high = start + length
        if nested and len(missing) < len(found):
            self._diverge(state, found)
        if missing:  # new windows start empty: with nested lengths they are the shortest
            acc = self.new_accumulator() if nested and found[len(missing) - 1] is None \
                else None
            for key in missing:
                found[found.index(None)] = self.open_slot(state, key, ctx, who, acc)
        slots = cast(tuple[Slot, ...], tuple(found))
        state.cache(low, high, slots)
        return slots

    @cached_property
    def _shares(self) -> bool:
        """Whether this detector's windows may share accumulators (see
        :meth:`new_accumulator`)."""
        acc = self.new_accumulator()
        return is_dataclass(acc) and hasattr(acc, "first_seen")

    def _reconcile(self, state: DetectorState, nested: bool) -> None:
        """A restored snapshot may come from other window lengths (the parameters changed):
        windows keep sharing an accumulator only when they are of consecutive lengths of
        ``windows`` (and those nest), as :meth:`_slots_of` would have opened them; any other
        holder gets a copy of its own."""
        windows = self.windows
        held: dict[int, list[tuple[int, Slot]]] = {}
        for key, slot in state.slots.items():
            level = windows.index(key[0]) if key[0] in windows else -1
            held.setdefault(id(slot.acc), []).append((level, slot))
        for holders in held.values():
            if len(holders) < 2:
                continue
            levels = sorted(level for level, _ in holders)
            if nested and levels[0] >= 0 and levels == list(
                    range(levels[0], levels[0] + len(levels))):
                continue
            for _, slot in holders[1:]:
                slot.acc = fork(slot.acc)

    def _diverge(self, state: DetectorState, found: list[Slot | None]) -> None:
        """Give the open windows in ``found`` (by level; None: not open yet) their own
        accumulator where a shorter window outside ``found`` holds it too (one copy per
        accumulator, lean unless the shortest window holds it). The holders of an
        accumulator are windows of consecutive lengths around its earliest event
        (``first_seen``): the shorter holder outside is the window one length down that holds
        that event."""
        windows = self.windows
        for level in range(1, len(found)):
            slot = found[level]
            if slot is None:
                continue
            acc = slot.acc
            below = found[level - 1]
            if below is not None and below.acc is acc:
                continue  # shared with a window this event reaches too
            length = windows[level - 1]
            first = acc.first_seen
            if first == math.inf:
                continue
            other = state.slots.get((length, (first // length) * length, ""))
            if other is None or other.acc is not acc:
                continue
            copy = fork(acc)
            if isinstance(copy, Activity):
                copy.lean = True  # from now on its attributes come from the short windows
            for holder in found[level:]:
                if holder is not None and holder.acc is acc:
                    holder.acc = copy

    def close(self, state: DetectorState, watermark: float, ctx: EventContext,
              who: Who) -> list[Signal]:
        out: list[Signal] = []
        profile = ctx.profile
        shortest = self.windows[0]
        ended = self.ended(state, watermark)
        if ended:
            state.forget()
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
                        self._minimums[level], strict=True):
                    profile.record(measure_key, key[1], value, minimum)
        return out

    @cached_property
    def _minimums(self) -> tuple[tuple[float, ...], ...]:
        """:meth:`store_minimum` of every level (parameters are fixed)."""
        return tuple(self.store_minimum(level) for level in range(len(self.windows)))

    def _pass_up(self, state: DetectorState, key: SlotKey, slot: Slot) -> None:
        """A closing shortest window gives its attributes to the longer windows holding it."""
        acc = slot.acc
        if not isinstance(acc, Activity):
            return
        start = key[1]
        for length in self.windows[1:]:
            parent = state.slots.get((length, (start // length) * length, ""))
            if parent is not None and parent.acc is not acc and isinstance(parent.acc,
                                                                           Activity):
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
