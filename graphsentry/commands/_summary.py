"""The stage lines of the commands that read input and run detection over it (``detect``,
``warm``): what ingest dropped is counted apart from what the detection engine refused, so an
operator can tell bad input from engine-side rejects.

* ``ingest: 3 rejected (invalid_json 2, bad_timestamp 1), 1 duplicate deliveries dropped``:
  reading and normalizing the files (``graphsentry.ingest.iter_records``), before detection saw
  the records;
* ``detection: rejected by the engine: future_timestamp 1``: what the detection dataflow's
  reject sink received (records it could not decode, events dated too far ahead). Its total
  is the ``N rejected by the engine`` of ``DetectStats.summary()``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from graphsentry.metrics.samples import reason_code

if TYPE_CHECKING:
    from graphsentry.ingest.reject import Reject


def tally(counts: Counter[str], reject: Reject | Mapping[str, Any]) -> dict[str, Any]:
    """Count ``reject`` (an ingest ``Reject``, or the flow's ``{reason, raw, source}``) in
    ``counts`` by its reason code (``invalid_json: …`` → ``invalid_json``); its JSON body."""
    from graphsentry.ingest.reject import Reject

    body = reject.to_json() if isinstance(reject, Reject) else dict(reject)
    counts[reason_code(str(body["reason"]))] += 1
    return body


def codes(counts: Counter[str]) -> str:
    """``code n, …``, most frequent first, then by code."""
    return ", ".join(f"{code} {n}" for code, n in sorted(counts.items(),
                                                          key=lambda item: (-item[1], item[0])))


def ingest_line(rejects: Counter[str], duplicates: int) -> str:
    """``ingest: 6 rejected (not_an_object 3, …), 2 duplicate deliveries dropped``: what
    reading and normalizing the files dropped before detection saw the records."""
    total = sum(rejects.values())
    detail = f" ({codes(rejects)})" if total else ""
    return f"ingest: {total} rejected{detail}, {duplicates} duplicate deliveries dropped"


def engine_line(rejects: Counter[str]) -> str | None:
    """``detection: rejected by the engine: future_timestamp 1`` (None when it rejected
    nothing): the reason codes of the total the detection summary gives."""
    return f"detection: rejected by the engine: {codes(rejects)}" if rejects else None
