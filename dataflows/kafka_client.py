"""librdkafka client plumbing shared by every Kafka client of the dataflows and commands.

* :class:`ClientHealth` is the ``error_cb`` of a client: it remembers the last error and the
  first *configuration problem*, an error that retrying cannot fix (failed SASL authentication,
  a TLS handshake with a plain-text listener, missing ACLs, a fatal producer error). Sources
  and sinks check it and fail at once, naming the cause, instead of retrying forever.
* :func:`client_config` adds that callback and a rate-limited ``logger`` to librdkafka
  settings: librdkafka's own log lines (one per reconnect attempt, several a second while a
  broker is unreachable or refuses the credentials) go through :class:`QuietLog`, which prints
  a line once and then at most every :data:`LOG_REPEAT_S` seconds.
* :func:`check_topics` is the start-up metadata check of ``graphsentry run`` and ``bridge``:
  within :data:`METADATA_TIMEOUT_S` it either sees the topics or raises a
  :class:`~graphsentry.errors.GraphsentryError` naming the cause (a configuration problem is
  reported as soon as librdkafka reports it, usually within a second).
* :class:`GuardedSource` wraps a Bytewax source so that its partitions end when a stop is
  requested (SIGINT/SIGTERM: the flow drains and finishes cleanly) and raise when a client
  reported a configuration problem. It also reports to the process's health and metrics
  (``graphsentry.metrics``): partitions listed and assigned, each poll (liveness), the
  consumer lag of partitions that can tell it (``lag()``, at most every :data:`LAG_EVERY_S`)
  and the time between epoch ends.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from graphsentry.errors import GraphsentryError, redact
from graphsentry.metrics.health import HEALTH
from graphsentry.metrics.views import EPOCH_SECONDS, publish_lag

METADATA_TIMEOUT_S = 10.0
"""How long the start-up check waits for a metadata answer from an unreachable cluster."""
LOG_REPEAT_S = 60.0
"""A librdkafka log line that keeps recurring is printed again at most this often."""
LAG_EVERY_S = 1.0
"""Seconds between readings of an input partition's consumer lag."""
CREATE_HINT = "create the configured topics with `graphsentry topics create`"

_AUTHENTICATION = frozenset({KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED})
_AUTHORIZATION = frozenset({KafkaError.TOPIC_AUTHORIZATION_FAILED,
                            KafkaError.CLUSTER_AUTHORIZATION_FAILED,
                            KafkaError.GROUP_AUTHORIZATION_FAILED,
                            KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED})


class KafkaClientError(GraphsentryError):
    """A Kafka client reported a problem that retrying cannot fix."""


def config_problem(err: KafkaError) -> str | None:
    """What is wrong when ``err`` is a configuration problem; None for a passing fault
    (broker unreachable, timeouts, leader changes) or a per-message error."""
    code, text = err.code(), err.str()
    if code in _AUTHENTICATION or "SASL authentication error" in text:
        return f"authentication failed: {text}"
    if code in _AUTHORIZATION:
        return f"not authorized: {text}"
    if code == KafkaError._SSL or "SSL handshake failed" in text:
        return f"TLS handshake failed: {text}"
    if err.fatal():
        return f"fatal error {err.name()}: {text}"
    return None


class ClientHealth:
    """``error_cb`` target for the clients of one role (thread-safe)."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.problem: str | None = None
        self.last_error: str | None = None
        self._lock = threading.Lock()

    def on_error(self, err: KafkaError) -> None:
        problem = config_problem(err)
        with self._lock:
            self.last_error = f"{err.name()}: {err.str()}"
            if problem is not None and self.problem is None:
                self.problem = problem

    def raise_if_failed(self, where: str = "") -> None:
        if self.problem is not None:
            raise KafkaClientError(f"Kafka {self.role}{f' at {where}' if where else ''}: "
                                   f"{self.problem}")


_VARIABLE = re.compile(r"\d+(?:\.\d+)?")


class QuietLog(logging.Handler):
    """Prints librdkafka log lines to stderr, each distinct line (digits ignored) once per
    :data:`LOG_REPEAT_S`, with the number of repeats it held back."""

    def __init__(self, role: str) -> None:
        super().__init__(logging.INFO)
        self.role = role
        self._last: dict[str, tuple[float, int]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        shape = _VARIABLE.sub("#", message.split("]: ", 1)[-1])
        now = time.monotonic()
        printed, held = self._last.get(shape, (-LOG_REPEAT_S, 0))
        if now - printed < LOG_REPEAT_S:
            self._last[shape] = (printed, held + 1)
            return
        if len(self._last) > 1000:
            self._last.clear()
        self._last[shape] = (now, 0)
        again = f" (and {held} more like it)" if held else ""
        print(f"graphsentry: kafka {self.role}: {redact(message)}{again}", file=sys.stderr)


def _logger(role: str) -> logging.Logger:
    logger = logging.getLogger(f"graphsentry.kafka.{role}")
    if not logger.handlers:
        logger.addHandler(QuietLog(role))
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


def _silent() -> logging.Logger:
    logger = logging.getLogger("graphsentry.kafka.silent")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
        logger.propagate = False
    return logger


def client_config(settings: Mapping[str, Any], health: ClientHealth, *,
                  silent: bool = False) -> dict[str, Any]:
    """``settings`` plus ``error_cb`` (→ ``health``) and the quiet ``logger`` for warnings and
    errors (``silent``: no log lines at all, for checks that report the cause themselves)."""
    return {"log_level": 0 if silent else 4, **settings, "error_cb": health.on_error,
            "logger": _silent() if silent else _logger(health.role),
            "log.connection.close": False}


def check_topics(settings: Mapping[str, Any], topics: Sequence[str], role: str,
                 timeout: float = METADATA_TIMEOUT_S) -> None:
    """Raise a :class:`GraphsentryError` unless the cluster answers and every topic exists.

    Lists all topics (asking for one by name would create it on a broker that auto-creates).
    A configuration problem (authentication, TLS, ACLs) is reported as soon as librdkafka
    reports it; an unreachable cluster after ``timeout`` seconds.
    """
    where = redact(str(settings.get("bootstrap.servers", "?")))
    health = ClientHealth(role)
    admin = AdminClient(client_config(settings, health, silent=True))
    deadline = time.monotonic() + timeout
    while True:
        try:
            existing = admin.list_topics(timeout=max(0.1, min(1.0, deadline - time.monotonic())))
            break
        except KafkaException as exc:
            failure = exc.args[0].str() if exc.args else str(exc)
        admin.poll(0)
        health.raise_if_failed(where)
        if time.monotonic() >= deadline:
            raise KafkaClientError(f"cannot reach Kafka ({role}) at {where} within {timeout:g}s: "
                                   f"{health.last_error or failure}")
    admin.poll(0)
    health.raise_if_failed(where)
    for topic in topics:
        described = existing.topics.get(topic)
        if described is None or described.error is not None or not described.partitions:
            raise GraphsentryError(f"{role} topic {topic!r} does not exist on {where} "
                                   f"({CREATE_HINT})")


class _GuardedPartition(StatefulSourcePartition[Any, Any]):
    def __init__(self, inner: StatefulSourcePartition[Any, Any], stop: threading.Event | None,
                 health: ClientHealth | None) -> None:
        self.inner, self.stop, self.health = inner, stop, health
        self.lag: Callable[[], tuple[str, int, int] | None] | None = getattr(inner, "lag",
                                                                               None)
        self.next_lag = 0.0
        self.last_epoch: float | None = None
        self.lag_key: tuple[str, int] | None = None
        HEALTH.opened()

    def next_batch(self) -> Iterable[Any]:
        if self.health is not None:
            self.health.raise_if_failed()
        if self.stop is not None and self.stop.is_set():
            raise StopIteration
        now = HEALTH.last_beat = time.monotonic()
        if self.lag is not None and now >= self.next_lag:
            self.next_lag = now + LAG_EVERY_S
            self._publish_lag()
        return self.inner.next_batch()

    def _publish_lag(self) -> None:
        assert self.lag is not None
        found = self.lag()
        if found is not None:
            topic, partition, lag = found
            self.lag_key = (topic, partition)
            publish_lag(topic, partition, lag)

    def next_awake(self) -> datetime | None:
        return self.inner.next_awake()

    def snapshot(self) -> Any:
        now = HEALTH.last_beat = time.monotonic()
        if self.last_epoch is not None:
            EPOCH_SECONDS.observe(now - self.last_epoch)
        self.last_epoch = now
        return self.inner.snapshot()

    def close(self) -> None:
        HEALTH.closed()
        if self.lag_key is not None:
            publish_lag(*self.lag_key, None)
        self.inner.close()


class GuardedSource(FixedPartitionedSource[Any, Any]):
    """``inner`` whose partitions end (after their current batch) once ``stop`` is set, and
    raise :class:`KafkaClientError` once ``health`` holds a configuration problem.

    Ending the input on a signal, rather than raising KeyboardInterrupt inside a Bytewax
    callback (a Rust panic), lets the flow finish: sinks flush, counters are complete, and with
    recovery the end-of-input snapshot records the offsets reached.
    """

    def __init__(self, inner: FixedPartitionedSource[Any, Any],
                 stop: threading.Event | None = None, health: ClientHealth | None = None) -> None:
        self.inner, self.stop, self.health = inner, stop, health

    def list_parts(self) -> list[str]:
        parts = self.inner.list_parts()
        HEALTH.listed()
        return parts

    def build_part(self, step_id: str, for_part: str,
                   resume_state: Any | None) -> _GuardedPartition:
        return _GuardedPartition(self.inner.build_part(step_id, for_part, resume_state),
                                 self.stop, self.health)
