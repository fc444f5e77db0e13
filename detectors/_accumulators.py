"""Small accumulator pieces shared by the windowed detectors.

Everything here is plain data that pickles (dataclasses of ints, floats, strings, sets and
lists) and stays bounded: distinct sets stop growing at a cap and remember that they did.
Samples keep the *smallest* values so that evidence does not depend on arrival order.
"""

from __future__ import annotations

import math
from bisect import insort
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from detectors.base import SAMPLE_SIZE, sample
from detectors.event import DENIED_STATUSES, GraphEvent

# Distinct resources (sites, mailboxes, items, ...) kept per window and principal. Thresholds on
# distinct counts must stay at or below it, so the cap never changes whether a window fires.
DISTINCT_CAP = 10_000
# Distinct descriptive values (source IPs, user agents) counted per window and principal: the
# evidence says "32 or more" beyond it, which is all an analyst needs from one window.
ATTRIBUTE_CAP = 32
# Statuses of a successful file-content download: 302 redirect to SharePoint, or 200 inline.
DOWNLOAD_STATUSES = (200, 302)
# A distinct set holds nothing, one value, a list (fast ``in`` for a few values) and, beyond
# this many values, a set: most windows see one or two values, so most allocate no container.
_LIST_LIMIT = 16

Values = str | list[str] | None
"""A few values, the way most windows have them: none, one, or a sorted list."""


def _as_list(values: Values | set[str]) -> list[str]:
    if values is None:
        return []
    return [values] if isinstance(values, str) else sorted(values)


@dataclass(slots=True)
class CappedSet:
    """A distinct set that stops growing at ``cap``; ``saturated`` says values were dropped.
    ``size`` is its length, kept as a field: ``crossed()`` reads it on every event. Which
    values a full set holds depends on arrival order, so the smallest dropped ones are kept
    aside (``dropped``): the summary's sample is the smallest of all values seen, in any
    order."""

    cap: ClassVar[int] = DISTINCT_CAP
    values: Values | set[str] = None
    size: int = 0
    dropped: Values = None
    """The smallest values dropped at the cap (None until one was: not saturated)."""

    @property
    def saturated(self) -> bool:
        return self.dropped is not None

    def add(self, value: str | None) -> None:
        if not value:
            return
        values = self.values
        if values is None or isinstance(values, str):
            if value == values:
                return
            if self.size >= self.cap:
                self._drop(value)
                return
            self.values = value if values is None else [values, value]
        else:
            if value in values:
                return
            if self.size >= self.cap:
                self._drop(value)
                return
            if isinstance(values, set):
                values.add(value)
            elif len(values) < _LIST_LIMIT:
                values.append(value)
            else:
                self.values = {*values, value}
        self.size += 1

    def _drop(self, value: str) -> None:
        self.dropped, _ = with_smallest(self.dropped, value, SAMPLE_SIZE)

    def __len__(self) -> int:
        return self.size

    def summary(self) -> dict[str, Any]:
        """Evidence: the distinct count (a lower bound when capped) and a sample."""
        return {"count": self.size, "capped": self.saturated,
                "sample": sample({*_as_list(self.values), *_as_list(self.dropped)})}


def with_smallest(values: Values, value: str, size: int) -> tuple[Values, bool]:
    """``values`` with ``value`` added, keeping the ``size`` (≥ 2) smallest distinct ones: a
    bounded, arrival-order-independent sample; True when a value was dropped."""
    if values is None:
        return value, False
    if isinstance(values, str):
        if value == values:
            return values, False
        return ([values, value] if values < value else [value, values]), False
    if value in values:
        return values, False
    if len(values) < size:
        insort(values, value)
        return values, False
    if value < values[-1]:
        insort(values, value)
        values.pop()
    return values, True


def _merged(mine: Values, theirs: Values, size: int) -> tuple[Values, bool]:
    """``mine`` with every value of ``theirs`` (:func:`with_smallest`), never sharing a list
    with ``theirs``; True when a value was dropped."""
    if theirs is None or theirs == mine:
        return mine, False
    if mine is None:
        return (theirs if isinstance(theirs, str) else list(theirs)), False
    dropped = False
    for value in ((theirs,) if isinstance(theirs, str) else theirs):
        mine, lost = with_smallest(mine, value, size)
        dropped |= lost
    return mine, dropped


def _distinct_summary(values: Values, capped: bool, missing: bool = False) -> dict[str, Any]:
    """Evidence of an attribute kept up to :data:`ATTRIBUTE_CAP` values: all of them (the
    smallest, sorted), their count, whether more were seen and (``missing``, only when true)
    whether some events had no value at all."""
    listed = _as_list(values)
    summary = {"count": len(listed), "capped": capped, "sample": listed}
    if missing:
        summary["missing"] = True
    return summary


_IPS_CAPPED, _AGENTS_CAPPED, _TEMPLATES_CAPPED, _IPS_MISSING = 1, 2, 4, 8


@dataclass(slots=True)
class Activity:
    """What every windowed detector records about the requests it counted in one window.

    Source IPs, user agents and resource templates keep their :data:`ATTRIBUTE_CAP` smallest
    distinct values (so the count, up to the cap, and the sample do not depend on arrival
    order), request ids the :data:`SAMPLE_SIZE` smallest (:func:`with_smallest`). Most
    windows hold one or two events: creating, filling and dropping an accumulator must be
    cheap.
    """

    requests: int = 0
    denied: int = 0
    first_seen: float = math.inf
    last_seen: float = -math.inf
    source_ips: Values = None
    user_agents: Values = None
    request_ids: Values = None
    templates: Values = None
    capped: int = 0
    """Bits: more than ``ATTRIBUTE_CAP`` distinct source IPs (1), user agents (2) or
    resource templates (4); an event without a source IP (8)."""
    lean: bool = False
    """Count only (requests, denials, first/last): the attributes of a longer window are
    absorbed from its shorter windows instead (:meth:`absorb`), once per short window."""

    def count(self, event: GraphEvent) -> None:
        self.requests += 1
        if event.status in DENIED_STATUSES:
            self.denied += 1
        ts = event.ts
        if ts < self.first_seen:
            self.first_seen = ts
        if ts > self.last_seen:
            self.last_seen = ts
        if self.lean:
            return
        # The same IP and user agent as the window's only one so far is the common case:
        # compared here without a call (a list never equals a string).
        ip, agent, request_id = event.ip, event.user_agent, event.request_id
        template = event.template
        if template != self.templates:
            if self.templates is None:
                self.templates = template
            else:
                self.templates, dropped = with_smallest(self.templates, template, ATTRIBUTE_CAP)
                if dropped:
                    self.capped |= _TEMPLATES_CAPPED
        if ip and ip != self.source_ips:
            if self.source_ips is None:  # a new window's first value
                self.source_ips = ip
            else:
                self.source_ips, dropped = with_smallest(self.source_ips, ip, ATTRIBUTE_CAP)
                if dropped:
                    self.capped |= _IPS_CAPPED
        elif not ip:
            self.capped |= _IPS_MISSING
        if agent and agent != self.user_agents:
            if self.user_agents is None:
                self.user_agents = agent
            else:
                self.user_agents, dropped = with_smallest(self.user_agents, agent,
                                                          ATTRIBUTE_CAP)
                if dropped:
                    self.capped |= _AGENTS_CAPPED
        ids = self.request_ids  # with_smallest(ids, request_id, SAMPLE_SIZE), inlined
        if not request_id:
            return
        if isinstance(ids, list):
            if len(ids) < SAMPLE_SIZE:
                if request_id not in ids:
                    insort(ids, request_id)
            elif request_id < ids[-1] and request_id not in ids:
                insort(ids, request_id)
                ids.pop()
        elif ids is None:
            self.request_ids = request_id
        elif request_id != ids:
            self.request_ids = [ids, request_id] if ids < request_id else [request_id, ids]

    def absorb(self, other: Activity) -> None:
        """Add ``other``'s attributes (IPs, user agents, templates, request ids) to these: the
        result keeps the same smallest values whatever the order of absorbing."""
        self.source_ips, dropped_ips = _merged(self.source_ips, other.source_ips,
                                               ATTRIBUTE_CAP)
        self.user_agents, dropped_agents = _merged(self.user_agents, other.user_agents,
                                                   ATTRIBUTE_CAP)
        self.templates, dropped_templates = _merged(self.templates, other.templates,
                                                    ATTRIBUTE_CAP)
        self.request_ids, _ = _merged(self.request_ids, other.request_ids, SAMPLE_SIZE)
        self.capped |= (other.capped | (_IPS_CAPPED if dropped_ips else 0)
                        | (_AGENTS_CAPPED if dropped_agents else 0)
                        | (_TEMPLATES_CAPPED if dropped_templates else 0))

    def attributes(self) -> Activity:
        """A copy of the attributes alone (to absorb open short windows into for evidence)."""
        copy = Activity(capped=self.capped)
        copy.absorb(self)
        return copy

    def attribute_evidence(self) -> dict[str, Any]:
        """The attributes alone (:meth:`evidence` without the counts): the addresses, user
        agents, templates and request ids a signal rests on (exception scopes read them)."""
        evidence = self.evidence()
        del evidence["requests"], evidence["denied"]
        return evidence

    def evidence(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "denied": self.denied,
            "source_ips": _distinct_summary(self.source_ips, bool(self.capped & _IPS_CAPPED),
                                            bool(self.capped & _IPS_MISSING)),
            "user_agents": _distinct_summary(self.user_agents,
                                             bool(self.capped & _AGENTS_CAPPED)),
            "sample_request_ids": _as_list(self.request_ids),
            "templates": _distinct_summary(self.templates,
                                           bool(self.capped & _TEMPLATES_CAPPED)),
        }


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
            accepted = (int, float) if kind is float else (kind,)
            if not isinstance(value, tuple | list) or not all(
                    isinstance(item, accepted) and not isinstance(item, bool) for item in value):
                raise ValueError(f"{where}: expected a list of {kind.__name__}, got {value!r}")
            if kind in (int, float) and not all(math.isfinite(v) and v > 0 for v in value):
                raise ValueError(f"{where}: every value must be a positive number, "
                                 f"got {value!r}")
            object.__setattr__(params, f.name, tuple(kind(v) for v in value)
                               if kind is float else tuple(value))
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
        value = getattr(params, name)
        if (max(value) if isinstance(value, tuple) else value) > DISTINCT_CAP:
            raise ValueError(f"{owner}.{name}: at most {DISTINCT_CAP} (distinct-value cap)")
