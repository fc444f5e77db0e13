"""What the bench/ scripts share: the machine note, memory and CPU readings, throwaway Kafka
topics, producing normalized records.

Not a benchmark itself (``make bench`` runs ``bench/bench_*.py`` only). Linux only: memory is
read from ``/proc/self/status`` (VmRSS, VmHWM) and CPU time from ``resource.getrusage``.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MIB = float(1 << 20)


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or the platform's processor string."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def memory_total() -> int:
    """Bytes of RAM (``MemTotal``), 0 when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            for line in info:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def load_note() -> str:
    """The 1/5/15-minute load averages and what they mean on this machine."""
    one, five, fifteen = os.getloadavg()
    return (f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min) on "
            f"{os.cpu_count()} logical CPUs")


def machine_note() -> str:
    """One line: CPU model, logical CPUs, RAM, Python, OS."""
    return (f"{cpu_model()}, {os.cpu_count()} logical CPUs, {memory_total() / 2**30:.0f} GiB RAM,"
            f" {platform.python_implementation()} {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")


def commit(tree: Path = ROOT) -> str:
    """The commit checked out in ``tree`` (``git describe --always --dirty``), or ``unknown``."""
    try:
        done = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=tree,
                              capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "unknown"
    return done.stdout.strip() or "unknown"


def print_header(title: str) -> None:
    """What every bench output starts with: what ran, when, on which code and machine."""
    print(title)
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; commit {commit()}")
    print(f"machine: {machine_note()}; shared with other work")
    print(f"at start: {load_note()}", flush=True)


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def rss_bytes() -> int:
    """This process's resident set size now (VmRSS)."""
    return _status_kib("VmRSS:") * 1024


def peak_rss_bytes() -> int:
    """This process's highest resident set size so far (VmHWM; ``ru_maxrss`` agrees)."""
    return max(_status_kib("VmHWM:"), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    """User + system CPU seconds of this process (``RUSAGE_SELF``) or of its waited-for
    descendants (``RUSAGE_CHILDREN``)."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def throwaway_topics(bootstrap: str, partitions: dict[str, int]) -> Iterator[dict[str, str]]:
    """Create one fresh topic per role (``{role: partitions}``), named
    ``bench.<role>.<random>``; delete them on exit. Yields ``{role: topic name}``."""
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = {role: f"bench.{role}.{uuid.uuid4().hex[:8]}" for role in partitions}
    futures = admin.create_topics([NewTopic(names[role], count, 1)
                                   for role, count in partitions.items()])
    for future in futures.values():
        future.result(30)
    try:
        yield names
    finally:
        for future in admin.delete_topics(list(names.values())).values():
            future.result(30)


def produce(bootstrap: str, topic: str, records: Iterable[dict[str, Any]]) -> int:
    """Produce normalized records to ``topic`` as the bridge does (Avro value, key
    ``tenant_id/principal_id``, timestamp = event time); every message acknowledged or an
    error. Returns the count."""
    from confluent_kafka import KafkaException, Producer

    from graphsentry.avro import encode_activity, message_key, message_timestamp_ms

    failed: list[str] = []

    def delivered(err: Any, _msg: Any) -> None:
        if err is not None and len(failed) < 5:
            failed.append(str(err))

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50,
                         "compression.type": "lz4", "queue.buffering.max.messages": 500_000})
    count = 0
    for record in records:
        while True:
            try:
                producer.produce(topic, key=message_key(record), value=encode_activity(record),
                                 timestamp=message_timestamp_ms(record), on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
        count += 1
        if count % 10_000 == 0:
            producer.poll(0)
    if producer.flush(120):
        raise KafkaException(f"{topic}: messages still unacknowledged after 120 s")
    if failed:
        raise KafkaException(f"{topic}: delivery failed: {failed[0]}")
    return count


def timed(label: str) -> Any:
    """Context manager printing ``label: N.N s`` (wall clock) when the block ends."""

    @contextmanager
    def block() -> Iterator[None]:
        started = time.perf_counter()
        yield
        print(f"{label}: {time.perf_counter() - started:.1f} s", flush=True)

    return block()
