"""Event times ahead of the wall clock: the latest one ``normalize_record`` accepts.

Kafka 4 refuses a message whose timestamp lies more than ``log.message.timestamp.after.max.ms``
(default 1 h) ahead of the broker clock, and the bridge stamps each message with its event
time: such a record would fail its whole producer batch. Ingest rejects it first
(``future_timestamp``), at a skew of MAX_FUTURE_SKEW_SECONDS (15 min) unless configured.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from graphsentry.ingest.limits import MAX_FUTURE_SKEW_SECONDS
from graphsentry.ingest.timeparse import format_timestamp

Clock = Callable[[], datetime]
"""Returns the current time as an aware ``datetime``."""
MAX_SKEW_SECONDS = 3650 * 86400
LIMIT_CACHE: list[Any] = [-math.inf, None, None]
"""[wall-clock time until which it holds, skew, limit]: the system clock's limit, per second
(``normalize_record`` reads it inline on the hot path, and calls future_limit when stale)."""

__all__ = ["MAX_FUTURE_SKEW_SECONDS", "Clock", "future_detail", "future_limit", "skew"]


def future_limit(max_future_skew: float, now: Clock | None = None) -> datetime:
    """The latest acceptable event time: ``now() + max_future_skew`` seconds.

    With the system clock (``now=None``) the limit is computed at most once a second, so it may
    be up to a second stricter than the exact one. ValueError for a skew outside
    0-MAX_SKEW_SECONDS (or not a number).
    """
    if now is not None:
        return now() + skew(max_future_skew)
    wall = time.time()
    until, cached_skew, limit = LIMIT_CACHE
    if wall < until and cached_skew == max_future_skew:
        return limit  # type: ignore[no-any-return]
    limit = datetime.fromtimestamp(wall, UTC) + skew(max_future_skew)
    LIMIT_CACHE[:] = (wall + 1.0, max_future_skew, limit)
    return limit


def skew(seconds: float) -> timedelta:
    """``seconds`` as a timedelta; ValueError unless 0 <= seconds <= MAX_SKEW_SECONDS."""
    if not (isinstance(seconds, int | float) and 0 <= seconds <= MAX_SKEW_SECONDS):
        raise ValueError(f"max_future_skew must be 0-{MAX_SKEW_SECONDS} seconds, "
                         f"got {seconds!r}")
    return timedelta(seconds=seconds)


def future_detail(event_time: datetime, limit: datetime, max_future_skew: float) -> str:
    """The ``future_timestamp`` reject detail: how far ahead of the clock the event time is."""
    ahead = event_time - (limit - timedelta(seconds=max_future_skew))
    return (f"timeGenerated {format_timestamp(event_time)} is {ahead.total_seconds():.0f} s "
            f"ahead of the clock (at most {max_future_skew:g} s allowed)")
