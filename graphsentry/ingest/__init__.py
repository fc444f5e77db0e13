"""Ingest: every delivery shape of Graph activity logs -> normalized, de-duplicated records.

``iter_records(paths)`` is the one-call entry point; the pieces (``readers``, ``normalize``,
``dedup``) are reusable on their own (the Kafka bridge feeds message values to
``readers.parse_payload``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from graphsentry.ingest.dedup import DEFAULT_CAPACITY, Deduplicator, dedup_key
from graphsentry.ingest.limits import MAX_FUTURE_SKEW_SECONDS
from graphsentry.ingest.normalize import Clock, normalize_record
from graphsentry.ingest.readers import RawItem, iter_candidates
from graphsentry.ingest.reject import Reject

__all__ = [
    "MAX_FUTURE_SKEW_SECONDS",
    "Deduplicator",
    "Reject",
    "dedup_key",
    "iter_records",
    "normalize_candidates",
    "normalize_record",
]


def iter_records(
    paths: Sequence[str],
    on_reject: Callable[[Reject], None] | None = None,
    dedup: bool = True,
    on_duplicate: Callable[[dict[str, Any]], None] | None = None,
    dedup_capacity: int = DEFAULT_CAPACITY,
    max_future_skew: float | None = MAX_FUTURE_SKEW_SECONDS,
    now: Clock | None = None,
) -> Iterator[dict[str, Any]]:
    """Normalized records from files / ``-`` in any delivery shape, duplicates dropped.

    Rejects go to ``on_reject`` (dropped if None); ``max_future_skew`` (seconds, None: no check)
    and ``now`` as in ``normalize_record``. Raises GraphsentryError for an unreadable path.
    """
    deduplicator = Deduplicator(dedup_capacity) if dedup else None
    return normalize_candidates(iter_candidates(paths), on_reject, deduplicator, on_duplicate,
                                max_future_skew, now)


def normalize_candidates(
    candidates: Iterable[RawItem],
    on_reject: Callable[[Reject], None] | None = None,
    deduplicator: Deduplicator | None = None,
    on_duplicate: Callable[[dict[str, Any]], None] | None = None,
    max_future_skew: float | None = MAX_FUTURE_SKEW_SECONDS,
    now: Clock | None = None,
) -> Iterator[dict[str, Any]]:
    """Normalize reader output (``iter_candidates``/``parse_payload``), optionally de-duplicated."""
    for item in candidates:
        if isinstance(item, Reject):
            if on_reject is not None:
                on_reject(item)
            continue
        record = normalize_record(item[0], item[1], max_future_skew, now)
        if isinstance(record, Reject):
            if on_reject is not None:
                on_reject(record)
        elif deduplicator is not None and deduplicator.seen(dedup_key(record)):
            if on_duplicate is not None:
                on_duplicate(record)
        else:
            yield record
