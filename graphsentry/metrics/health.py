"""What ``/live`` and ``/ready`` judge, for this process: :data:`HEALTH`.

The dataflow's input and delivery code report to it cheaply (an attribute store per call):

* ``beat()`` — the dataflow polled its input or waited for a delivery (the sources of
  ``dataflows.kafka_client.GuardedSource`` and the producers of ``dataflows.kafka_io``);
* ``listed()`` / ``opened()`` / ``closed()`` — the input listed its partitions, and this
  process was assigned (built) or finished one.

**Live** when the dataflow made progress within ``metrics.liveness_timeout_seconds``, while
starting up (for that long), and on a process that was assigned no input partition (it has
nothing to poll; Bytewax still routes keys to it). A stuck worker (a deadlock, an endless
loop) fails it; a broker outage does not (delivery keeps waiting and says so: not ready).

**Ready** when the input is assigned (the partitions were listed and this process built its
share, or was given none), and the Kafka cluster(s) answer a metadata request (checked at most
every :data:`KAFKA_CHECK_CACHE_S`, within :data:`KAFKA_CHECK_TIMEOUT_S`). The enrichment
store is reported but never makes a process unready: without Redis detection continues by
design (alerts say ``enrichment.available=false``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graphsentry.enrichment.store import EnrichmentStore

ASSIGN_GRACE_S = 5.0
"""After the input listed its partitions, how long a process may wait for its share before
it counts as having none."""
KAFKA_CHECK_TIMEOUT_S = 2.0
KAFKA_CHECK_CACHE_S = 5.0
Check = tuple[bool, dict[str, Any]]
"""``(healthy, JSON body)`` of an endpoint."""


class KafkaProbe:
    """A metadata request per Kafka cluster (name → librdkafka settings), answered from a
    cache for :data:`KAFKA_CHECK_CACHE_S`. Thread-safe."""

    def __init__(self, clusters: Mapping[str, Mapping[str, Any]]) -> None:
        self.clusters = dict(clusters)
        self._admins: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._answer: tuple[float, dict[str, str]] = (-KAFKA_CHECK_CACHE_S, {})

    def check(self) -> dict[str, str]:
        """``{cluster: "reachable" | "unreachable: …"}``."""
        with self._lock:
            at, answer = self._answer
            if time.monotonic() - at < KAFKA_CHECK_CACHE_S:
                return answer
            answer = {name: self._ask(name, settings)
                      for name, settings in self.clusters.items()}
            self._answer = (time.monotonic(), answer)
            return answer

    def _ask(self, name: str, settings: Mapping[str, Any]) -> str:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        from dataflows.kafka_client import ClientHealth, client_config
        from graphsentry.errors import redact

        admin = self._admins.get(name)
        if admin is None:
            health = ClientHealth("readiness")
            admin = self._admins[name] = AdminClient(client_config(settings, health,
                                                                   silent=True))
        try:
            metadata = admin.list_topics(timeout=KAFKA_CHECK_TIMEOUT_S)
        except KafkaException as exc:
            reason = exc.args[0].str() if exc.args else str(exc)
            return redact(f"unreachable: {reason}")
        return "reachable" if metadata.brokers else "unreachable: no broker in the metadata"


class Health:
    """The health of this process's dataflow (see the module docstring)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.last_beat: float | None = None
        self.listed_at: float | None = None
        self.built = 0
        self.open = 0
        self.liveness_timeout = 120.0
        self.kafka: KafkaProbe | None = None
        self.store: Callable[[], EnrichmentStore | None] | None = None

    def beat(self) -> None:
        self.last_beat = time.monotonic()

    def listed(self) -> None:
        if self.listed_at is None:
            self.listed_at = time.monotonic()

    def opened(self) -> None:
        self.built += 1
        self.open += 1

    def closed(self) -> None:
        self.open -= 1

    def _idle_by_assignment(self, now: float) -> bool:
        """Listed long enough ago and given no partition: nothing to poll here."""
        return (self.built == 0 and self.listed_at is not None
                and now - self.listed_at > ASSIGN_GRACE_S)

    def figures(self) -> dict[str, float]:
        """Gauges: open input partitions, and the Unix time of the last progress."""
        out = {"partitions": float(self.open)}
        if self.last_beat is not None:
            out["progress"] = time.time() - (time.monotonic() - self.last_beat)
        return out

    def live(self) -> Check:
        now = time.monotonic()
        timeout = self.liveness_timeout
        if self._idle_by_assignment(now):
            return True, {"live": True, "detail": "no input partition on this process: "
                                                  "nothing to poll"}
        if self.last_beat is None:
            waited = now - self.started
            return waited <= timeout, {"live": waited <= timeout,
                                       "detail": f"starting for {waited:.0f} s (no progress "
                                                 f"yet; limit {timeout:g} s)"}
        age = now - self.last_beat
        return age <= timeout, {"live": age <= timeout, "seconds_since_progress": round(age, 3),
                                "limit_seconds": timeout}

    def ready(self) -> Check:
        now = time.monotonic()
        checks: dict[str, str] = {}
        ready = True
        if self.listed_at is None:
            checks["input"], ready = "waiting: the input's partitions are not listed yet", False
        elif self.built:
            checks["input"] = (f"{self.open} partition(s) assigned" if self.open else
                               f"finished ({self.built} partition(s) read to their end)")
        elif self._idle_by_assignment(now):
            checks["input"] = "no partition assigned to this process"
        else:
            checks["input"], ready = "waiting for the partition assignment", False
        if self.kafka is not None:
            for name, answer in self.kafka.check().items():
                checks[name] = answer
                ready = ready and answer == "reachable"
        store = self.store() if self.store is not None else None
        if store is not None:
            checks["enrichment"] = ("available" if store.available else
                                    "unavailable: detection continues without enrichment "
                                    "(degraded by design; alerts say enrichment.available="
                                    "false)")
        return ready, {"ready": ready, "checks": checks}


HEALTH = Health()
"""This process's health (one dataflow per process in a deployment)."""


def kafka_clusters(bootstrap: str, producer: Mapping[str, Any], consumer: Mapping[str, Any],
                   reads_kafka: bool) -> dict[str, dict[str, Any]]:
    """The clusters a flow depends on: the output cluster (``kafka.bootstrap`` with the
    producer settings) and, when the input is read from Kafka with its own
    ``bootstrap.servers`` (an Event Hub), the input cluster too."""
    output = {"bootstrap.servers": bootstrap, **_plain(producer)}
    source = {"bootstrap.servers": bootstrap, **_plain(consumer)}
    if reads_kafka and source["bootstrap.servers"] != bootstrap:
        return {"kafka input": source, "kafka output": output}
    return {"kafka": output}


def _plain(settings: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): v for k, v in settings.items()}


def watch(*, kafka: KafkaProbe | None = None,
          store: Callable[[], EnrichmentStore | None] | None = None,
          liveness_timeout: float | None = None) -> None:
    """Tell :data:`HEALTH` what to check (called once per process by the server's start)."""
    if kafka is not None:
        HEALTH.kafka = kafka
    if store is not None:
        HEALTH.store = store
    if liveness_timeout is not None:
        HEALTH.liveness_timeout = liveness_timeout
