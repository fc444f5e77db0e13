"""Prometheus metrics and health endpoints shared by ``graphsentry bridge``, ``run`` and
``replay`` (docs/operations.md lists every metric).

* :mod:`graphsentry.metrics.samples` — the metric families and :class:`Samples`, their values;
* :mod:`graphsentry.metrics.views` — the samples of the flows of this process, read from their
  counters at scrape time and at the end of a run (exit summaries read the same samples), and
  the Prometheus collector;
* :mod:`graphsentry.metrics.health` — what ``/ready`` and ``/live`` judge;
* :mod:`graphsentry.metrics.server` — the HTTP endpoints (``metrics`` configuration section).
"""

from graphsentry.metrics.samples import FAMILIES, Samples, reason_code

__all__ = ["FAMILIES", "Samples", "reason_code"]
