"""Detection throughput on the local broker and state memory for many principals.

1. build the engine state for P (100k) active principals through the engine and report the
   pickled size and the RSS growth (first, on a fresh heap; ``bench_state.state_memory``);
2. produce N simulated normalized Avro records (``graphsentry simulate`` + ingest, repeated
   with times shifted a week earlier each repetition until N) to a fresh topic on the local
   broker;
3. measure the floor: consume that topic and Avro-decode every value (one process) with
   fastavro, the reference since the first version; and, for comparison, with graphsentry's
   own compiled decoder (``graphsentry.avro.decode_activity``: every field, as any consumer reads
   them; the flow uses its compact variant of the fields detection reads);
4. measure the Kafka detection dataflow (``dataflows.detect.kafka_flow``, bounded, one process,
   Redis enrichment, alerts, signals, late events and dead letters to a throwaway topic) on the
   same topic, startup included (wall clock; the CPU seconds of this process are printed too);
5. repeat 3 and 4 ``--rounds`` times, alternating (the machine is shared: rates drift), and
   print each round and the medians.

Run with the stack up: ``python bench/bench_detect.py [--records 200000] [--principals 100000]
[--rounds 3]`` (``KAFKA_BOOTSTRAP``/``REDIS_URL`` default to the local stack). Targets, printed
with the figures (not asserted): detection ≥ 50 % of the consume + fastavro decode rate per
process (the ratio to consume + graphsentry's faster decoder is printed next to it: a faster
decoder speeds up the flow and this floor alike, so that ratio is lower); state < 1 GiB for
100k principals. The figures stay comparable with the first version's
(main before the per-principal model: same simulated input, same flow boundaries, same state
shapes); since state is keyed by ``tenant_id/principal_id`` the 100k principals are 100k keys
(they were 100 app keys).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis
from bench_state import SHAPES, state_memory
from benchlib import cpu_seconds, load_note, print_header, produce, throwaway_topics
from confluent_kafka import Consumer, TopicPartition

from graphsentry.avro import decode, decode_activity
from graphsentry.config import config_from_dict

RATIO_TARGET = 0.5
MEMORY_TARGET = 1 << 30
PARTITIONS = 3


def simulated_records(count: int, workdir: Path) -> Iterator[dict[str, Any]]:
    """Normalized records of a simulated tenant (``graphsentry simulate --users 200 --days 3``,
    demo profile, 2026-11-02..04), repeated a week earlier each round until count (earlier:
    later copies would lie in the future, which the engine refuses)."""
    from graphsentry.ingest import iter_records

    out = workdir / "sim.jsonl"
    subprocess.run([sys.executable, "-m", "graphsentry.cli", "simulate", "--users", "200",
                    "--days", "3", "--out", str(out)], check=True, capture_output=True)
    base = list(iter_records([str(out)]))
    produced, round_ = 0, 0
    while produced < count:
        shift = timedelta(days=-7 * round_)
        for record in base:
            if produced >= count:
                return
            yield dict(record, time_generated=record["time_generated"] + shift,
                       request_id=f"{record['request_id']}-{round_}")
            produced += 1
        round_ += 1


def fastavro_decode(data: bytes) -> dict[str, Any]:
    """The first version's decoder: fastavro's ``schemaless_reader``."""
    return decode("graph_activity", data)


def consume_and_decode(bootstrap: str, topic: str, expected: int,
                       decoder: Any = fastavro_decode) -> float:
    """Seconds to consume every message of ``topic`` and Avro-decode its value (with fastavro
    unless told)."""
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
            decoder(msg.value())
            seen += 1
    elapsed = time.perf_counter() - started
    consumer.close()
    assert seen == expected, f"consumed {seen}, expected {expected}"
    return elapsed


def detect_on_kafka(bootstrap: str, redis_url: str, topic: str, sink_topic: str) -> tuple[
        float, float, int, int, int]:
    """(seconds, CPU seconds, events, signals, alerts) of the bounded Kafka detection flow in
    this process; every output topic is ``sink_topic``."""
    from bytewax.testing import run_main

    from dataflows.detect import kafka_flow

    config = config_from_dict({
        "kafka": {"bootstrap": bootstrap, "tail": False,
                  "topics": {"activity": topic, "alerts": sink_topic, "alerts_json": sink_topic,
                             "dlq": sink_topic, "signals": sink_topic, "late": sink_topic}},
        "redis": {"url": redis_url, "key_prefix": f"bench:{uuid.uuid4().hex[:8]}:"},
    })
    built = kafka_flow(config, tail=False)
    started, cpu = time.perf_counter(), cpu_seconds()
    run_main(built.flow)  # type: ignore[no-untyped-call]
    elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    client = redis.Redis.from_url(redis_url)  # whatever this run stored
    for key in client.scan_iter(match=f"{config.redis.key_prefix}*", count=1000):
        client.delete(key)
    client.close()
    counters = built.engine.counters
    return (elapsed, cpu, counters.events, sum(counters.signals.values()),
            sum(counters.alerts.values()))


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

    print_header("bench_detect: Kafka detection dataflow vs consume + Avro decode; state memory")
    for shape in SHAPES:  # first, on a fresh heap (each run's memory is freed before the next)
        pickled, grown, events, _sizes = state_memory(args.principals, shape)
        print(f"state for {args.principals:,} {shape} principals ({events:,} events): pickled "
              f"{pickled / 2**20:,.1f} MiB, RSS +{grown / 2**20:,.1f} MiB (target < 1 GiB: "
              f"{'met' if max(pickled, grown) < MEMORY_TARGET else 'NOT met'})")
        gc.collect()

    with throwaway_topics(args.bootstrap, {"activity": PARTITIONS, "alerts": 1}) as topics:
        topic, sink = topics["activity"], topics["alerts"]
        with tempfile.TemporaryDirectory() as workdir:
            started = time.perf_counter()
            count = produce(args.bootstrap, topic, simulated_records(args.records, Path(workdir)))
            print(f"produced {count:,} normalized Avro records to {topic} "
                  f"in {time.perf_counter() - started:.1f}s")
        floors: list[float] = []
        own_floors: list[float] = []
        rates: list[float] = []
        for round_ in range(1, args.rounds + 1):
            floors.append(count / consume_and_decode(args.bootstrap, topic, count))
            own_floors.append(count / consume_and_decode(args.bootstrap, topic, count,
                                                         decode_activity))
            seconds, cpu, events, signals, alerts = detect_on_kafka(
                args.bootstrap, args.redis_url, topic, sink)
            rates.append(events / seconds)
            print(f"round {round_}: consume + fastavro decode {floors[-1]:8,.0f} records/s, "
                  f"consume + graphsentry decode {own_floors[-1]:8,.0f} records/s, "
                  f"detection dataflow (1 proc) {rates[-1]:8,.0f} records/s "
                  f"({events:,} events, {signals:,} signals, {alerts} alerts, {seconds:.1f}s "
                  f"incl. startup, {cpu / events * 1e6:.1f} CPU-µs/event): "
                  f"{rates[-1] / floors[-1]:.0%} / {rates[-1] / own_floors[-1]:.0%}", flush=True)
        floor, rate = statistics.median(floors), statistics.median(rates)
        own_floor = statistics.median(own_floors)
        ratio = rate / floor
        print(f"median of {args.rounds}: consume + fastavro decode {floor:,.0f} records/s, "
              f"consume + graphsentry decode {own_floor:,.0f} records/s, "
              f"detection {rate:,.0f} records/s")
        print(f"ratio: {ratio:.0%} of consume + fastavro decode (per round: "
              f"{', '.join(f'{r / f:.0%}' for r, f in zip(rates, floors, strict=True))}; "
              f"target ≥ {RATIO_TARGET:.0%}: {'met' if ratio >= RATIO_TARGET else 'NOT met'})")
        print(f"ratio: {rate / own_floor:.0%} of consume + graphsentry decode (per round: "
              f"{', '.join(f'{r / f:.0%}' for r, f in zip(rates, own_floors, strict=True))}; "
              f"the same {RATIO_TARGET:.0%} would be "
              f"{'met' if rate / own_floor >= RATIO_TARGET else 'NOT met'})")
    print(f"at end: {load_note()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
