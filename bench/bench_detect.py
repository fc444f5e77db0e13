"""Detection throughput on the local broker and state memory for many principals.

1. build the engine state for P (100k) active principals through the engine and report the
   pickled size and the RSS growth (first, on a fresh heap);
2. produce N simulated normalized Avro records (``graphsentry simulate`` + ingest, repeated
   with shifted times until N) to a fresh topic on the local broker;
3. measure the floor: consume that topic and Avro-decode every value (one process);
4. measure the Kafka detection dataflow (``dataflows.detect.kafka_flow``, bounded, one process,
   Redis enrichment, alerts to a throwaway topic) on the same topic, startup included;
5. repeat 3 and 4 ``--rounds`` times, alternating (the machine is shared: rates drift), and
   print each round and the medians.

Run with the stack up: ``python bench/bench_detect.py [--records 200000] [--principals 100000]
[--rounds 3]`` (``KAFKA_BOOTSTRAP``/``REDIS_URL`` default to the local stack). Targets, printed
with the figures (not asserted): detection ≥ 50 % of the consume+decode rate per process;
state < 1 GiB for 100k principals.
"""

from __future__ import annotations

import argparse
import gc
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from detectors.event import GraphEvent
from graphsentry.avro import decode_activity, encode_activity, message_key, message_timestamp_ms
from graphsentry.config import config_from_dict
from graphsentry.engine import DetectionEngine, KeyState

RATIO_TARGET = 0.5
MEMORY_TARGET = 1 << 30
PARTITIONS = 3


def simulated_records(count: int, workdir: Path) -> Iterator[dict[str, Any]]:
    """Normalized records of a simulated tenant, repeated a week later each round until count."""
    from graphsentry.ingest import iter_records

    out = workdir / "sim.jsonl"
    subprocess.run([sys.executable, "-m", "graphsentry.cli", "simulate", "--users", "200",
                    "--days", "3", "--out", str(out)], check=True, capture_output=True)
    base = list(iter_records([str(out)]))
    produced, round_ = 0, 0
    while produced < count:
        shift = timedelta(days=7 * round_)
        for record in base:
            if produced >= count:
                return
            yield dict(record, time_generated=record["time_generated"] + shift,
                       request_id=f"{record['request_id']}-{round_}")
            produced += 1
        round_ += 1


def produce(bootstrap: str, topic: str, records: Iterator[dict[str, Any]]) -> int:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50,
                         "compression.type": "lz4", "queue.buffering.max.messages": 500_000})
    count = 0
    for record in records:
        while True:
            try:
                producer.produce(topic, key=message_key(record), value=encode_activity(record),
                                 timestamp=message_timestamp_ms(record))
                break
            except BufferError:
                producer.poll(0.05)
        count += 1
        if count % 10_000 == 0:
            producer.poll(0)
    producer.flush(60)
    return count


def consume_and_decode(bootstrap: str, topic: str, expected: int) -> float:
    """Seconds to consume every message of ``topic`` and Avro-decode its value."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    started = time.perf_counter()
    seen, eof = 0, 0
    while eof < PARTITIONS:
        for msg in consumer.consume(10_000, 1.0):
            if msg.error():
                eof += 1
                continue
            decode_activity(msg.value())  # type: ignore[arg-type]
            seen += 1
    elapsed = time.perf_counter() - started
    consumer.close()
    assert seen == expected, f"consumed {seen}, expected {expected}"
    return elapsed


def detect_on_kafka(bootstrap: str, redis_url: str, topic: str, sink_topic: str) -> tuple[
        float, int, int]:
    """(seconds, events, alerts) of the bounded Kafka detection flow in this process."""
    from bytewax.testing import run_main

    from dataflows.detect import kafka_flow

    config = config_from_dict({
        "kafka": {"bootstrap": bootstrap, "tail": False,
                  "topics": {"activity": topic, "alerts": sink_topic, "alerts_json": sink_topic,
                             "dlq": sink_topic}},
        "redis": {"url": redis_url, "key_prefix": f"bench:{uuid.uuid4().hex[:8]}:"},
    })
    built = kafka_flow(config, tail=False)
    started = time.perf_counter()
    run_main(built.flow)  # type: ignore[no-untyped-call]
    elapsed = time.perf_counter() - started
    client = redis.Redis.from_url(redis_url)  # the histories this run saved
    for key in client.scan_iter(match=f"{config.redis.key_prefix}*", count=1000):
        client.delete(key)
    client.close()
    counters = built.engine.counters
    return elapsed, counters.events, sum(counters.alerts.values())


def rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


SHAPES: dict[str, list[dict[str, Any]]] = {
    # a steady reader: the same directory list three times (most principals most of the time)
    "reader": [dict(family="users", template="/users")] * 3,
    # a busy principal: directory reads from two networks and a file download (6 detectors)
    "mixed": [dict(family="users", template="/users"),
              dict(family="groups", template="/groups/{id}/members", ip="198.51.100.7"),
              dict(family="onedrive", template="/drives/{id}/items/{id}/content", status=302,
                   is_download=True, category="files", target_drive="b!d", target_item="i")],
}


def state_memory(principals: int, shape: str, apps: int = 100) -> tuple[int, int, int]:
    """(pickled bytes, RSS growth, events) of engine state for ``principals`` principals,
    each sending the events of ``SHAPES[shape]`` within one hour (all windows still open)."""
    from tests.detectors.factory import T0, event

    engine = DetectionEngine(config_from_dict({}))
    gc.collect()
    before = rss_bytes()
    states: dict[str, KeyState] = {}
    template = event()
    events = 0
    for p in range(principals):
        app = f"app-{p % apps:04d}"
        state = states.setdefault(app, engine.new_state())
        for i, fields in enumerate(SHAPES[shape]):
            ev: GraphEvent = replace(template, ts=T0 + (p % 3600) + i, app_id=app,
                                     principal_id=f"principal-{p:06d}",
                                     request_id=f"r-{p}-{i}", **fields)
            engine.process(state, ev)
            events += 1
    gc.collect()
    grown = rss_bytes() - before
    pickled = sum(len(pickle.dumps(s, protocol=pickle.HIGHEST_PROTOCOL)) for s in states.values())
    return pickled, grown, events


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--principals", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP",
                                                              "127.0.0.1:9092"))
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL",
                                                              "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()

    for shape in SHAPES:  # first, on a fresh heap (each run's memory is freed before the next)
        pickled, grown, events = state_memory(args.principals, shape)
        print(f"state for {args.principals:,} {shape} principals ({events:,} events): pickled "
              f"{pickled / 2**20:,.1f} MiB, RSS +{grown / 2**20:,.1f} MiB (target < 1 GiB: "
              f"{'met' if max(pickled, grown) < MEMORY_TARGET else 'NOT met'})")
        gc.collect()

    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    topic, sink = f"bench.activity.{uuid.uuid4().hex[:8]}", f"bench.alerts.{uuid.uuid4().hex[:8]}"
    for future in admin.create_topics([NewTopic(topic, PARTITIONS, 1),
                                       NewTopic(sink, 1, 1)]).values():
        future.result(30)
    try:
        with tempfile.TemporaryDirectory() as workdir:
            started = time.perf_counter()
            count = produce(args.bootstrap, topic, simulated_records(args.records, Path(workdir)))
            print(f"produced {count:,} normalized Avro records to {topic} "
                  f"in {time.perf_counter() - started:.1f}s")
        floors: list[float] = []
        rates: list[float] = []
        for round_ in range(1, args.rounds + 1):
            floors.append(count / consume_and_decode(args.bootstrap, topic, count))
            seconds, events, alerts = detect_on_kafka(args.bootstrap, args.redis_url, topic,
                                                      sink)
            rates.append(events / seconds)
            print(f"round {round_}: consume + Avro decode {floors[-1]:8,.0f} records/s, "
                  f"detection dataflow (1 proc) {rates[-1]:8,.0f} records/s "
                  f"({events:,} events, {alerts} alerts, {seconds:.1f}s incl. startup): "
                  f"{rates[-1] / floors[-1]:.0%}")
        floor, rate = statistics.median(floors), statistics.median(rates)
        ratio = rate / floor
        print(f"median of {args.rounds}: consume + Avro decode {floor:,.0f} records/s, "
              f"detection {rate:,.0f} records/s")
        print(f"ratio: {ratio:.0%} of consume+decode (per round: "
              f"{', '.join(f'{r / f:.0%}' for r, f in zip(rates, floors, strict=True))}; "
              f"target ≥ {RATIO_TARGET:.0%}: {'met' if ratio >= RATIO_TARGET else 'NOT met'})")
    finally:
        for future in admin.delete_topics([topic, sink]).values():
            future.result(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
