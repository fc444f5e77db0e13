"""What the detection step's items carry to another process, and in what form.

``detect_threats`` is keyed by principal: Bytewax sends each ``(key, value)`` item to the worker
that owns its key. When that worker is in another process, the item is pickled here (twice:
timely sizes the message, then writes it) and unpickled there; an item that stays in its
process is not pickled (``bench/bench_exchange.py``). The value is a :class:`Routed`: the event
and what enrichment learned for it, pickled as one ``marshal`` blob of their plain values,
written once and kept for the second pickling.

Both ends must run the same graphsentry and Python: a cluster's processes are started by one
``graphsentry run``, or are ``python -m bytewax.run`` processes of one image (``detect-0`` and
``detect-1`` in docker-compose.yml). ``marshal``, like the pickle Bytewax uses for every item
anyway (``GraphEvent`` too pickles its field values by position), is a format between such
processes, not a storage format.
"""

from __future__ import annotations

import marshal
import pickle
from typing import Any

from detectors.base import AppInfo, app_info_values
from detectors.event import GraphEvent, event_values
from graphsentry.engine import CtxParts


class Routed:
    """One event on its way to its principal's worker: ``event`` and ``parts`` (the
    enrichment step's :class:`~graphsentry.engine.CtxParts`).

    Pickled as :func:`from_wire` and a ``marshal`` blob of ``(event values, asn, asn_name,
    app values or None, available, pickled profile or None)``: one global and one bytes
    object instead of three classes and some forty values. Sending one (both picklings) took
    5.7 CPU-µs and receiving one 4.1, against 11.7 and 5.2 for the ``(event, parts)`` tuple
    (``bench/results/exchange.txt``). A value ``marshal`` cannot write (a ``str`` subclass,
    say) falls back to pickling the event and its parts as they are.
    """

    __slots__ = ("event", "parts", "wire")

    def __init__(self, event: GraphEvent, parts: CtxParts) -> None:
        self.event = event
        self.parts = parts
        self.wire: bytes | None = None
        """The marshal blob, written by the first pickling."""

    def __repr__(self) -> str:
        return f"Routed({self.event!r}, {self.parts!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        wire = self.wire
        if wire is None:
            parts = self.parts
            app, profile = parts.app, parts.profile
            try:
                wire = marshal.dumps((
                    event_values(self.event), parts.asn, parts.asn_name,
                    None if app is None else app_info_values(app), parts.available,
                    None if profile is None else pickle.dumps(profile, pickle.HIGHEST_PROTOCOL)))
            except ValueError:
                return (Routed, (self.event, self.parts))
            self.wire = wire
        return (from_wire, (wire,))


def from_wire(wire: bytes) -> Routed:
    """The :class:`Routed` a blob of :meth:`Routed.__reduce__` holds."""
    values, asn, asn_name, app, available, profile = marshal.loads(wire)
    return Routed(GraphEvent(*values),
                  CtxParts(asn, asn_name, None if app is None else AppInfo(*app), available,
                           None if profile is None else pickle.loads(profile)))
