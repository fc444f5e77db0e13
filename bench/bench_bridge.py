"""The bridge on 1 and 2 processes: wall time, and which re-delivered records pass.

1. ``graphsentry simulate --users 200 --days 2`` (Event Hub messages, 0.5 % of the records
   delivered twice) produced by the simulator itself to a fresh raw topic of ``--partitions``
   partitions (layout ``keyed``: it keys every message with the tenant id, so all land in one
   partition), and the same messages, same order, to a second raw topic with message *i* in
   partition *i* mod ``--partitions`` (layout ``spread``);
2. from the simulator's file: every re-delivered record (same ``requestId`` and
   ``timeGenerated``: what the bridge de-duplicates on), the messages holding its copies, and
   so the partitions and — for each process count — the workers that read them. Bytewax 0.21.1
   gives each partition to one worker (``calc_primaries`` in its ``src/timely.rs``): partition
   keys ``{partition}-{topic}`` in sorted order, each to the worker with the fewest so far,
   the lowest index on a tie. De-duplication is per worker, so a record passes twice when its
   copies are read by two workers: the prediction for each run;
3. ``graphsentry bridge --bounded --processes N`` (the real command, N = 1 and 2, each layout)
   into fresh activity and dead-letter topics, printing its summary line, wall time, CPU
   seconds of all its processes, and the duplicates that passed (records bridged minus
   distinct records) next to the prediction.

Timing on a shared machine is rough (one run each). ``--tree DIR`` runs the bridge of another
checkout (its folder comes first on ``sys.path``), e.g. one before a fix. Run with the stack
up: ``python bench/bench_bridge.py [--users 200] [--days 2] [--partitions 4]``
(``KAFKA_BOOTSTRAP`` defaults to the local broker). Every topic it creates is deleted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml
from bench_scale import partition_counts
from benchlib import ROOT, commit, cpu_seconds, load_note, print_header, throwaway_topics

SUMMARY = re.compile(r"graphsentry bridge: (\d+) inputs, (\d+) bridged, (\d+) rejected"
                     r"(?: \([^)]*\))?, (\d+) duplicates.*")
SIMULATED = re.compile(r"simulate: (\d+ records \([^)]*\)).* in (\d+ messages)")


@dataclass(frozen=True)
class Input:
    """The simulator's messages and, for each re-delivered record, its copies' messages."""

    messages: list[bytes]
    key: bytes
    records: int
    distinct: int
    copies: list[list[int]]
    """For each record delivered more than once, the indexes of the messages holding it."""


def read_input(path: Path) -> Input:
    messages, holders = [], defaultdict(list)
    for index, line in enumerate(path.read_bytes().splitlines()):
        messages.append(line)
        for record in json.loads(line)["records"]:
            props = record["properties"]
            holders[(props["requestId"], props["timeGenerated"])].append(index)
    first = json.loads(messages[0])["records"][0]
    return Input(messages, str(first["tenantId"]).encode(), sum(map(len, holders.values())),
                 len(holders), [h for h in holders.values() if len(h) > 1])


def primaries(topic: str, partitions: int, workers: int) -> dict[int, int]:
    """Partition -> worker as Bytewax 0.21.1 assigns them when every worker lists every
    partition (``calc_primaries``)."""
    load = [0] * workers
    out = {}
    for key in sorted(f"{p}-{topic}" for p in range(partitions)):
        worker = min(range(workers), key=lambda w: load[w])
        load[worker] += 1
        out[int(key.split("-", 1)[0])] = worker
    return out


def predicted_passes(data: Input, partition_of: list[int], owner: dict[int, int]) -> int:
    """Extra copies bridged: each worker lets its first copy of a record through."""
    return sum(len({owner[partition_of[m]] for m in held}) - 1 for held in data.copies)


def spread_over(bootstrap: str, topic: str, data: Input, partitions: int) -> None:
    from confluent_kafka import KafkaError, Message, Producer

    failed: list[str] = []

    def delivered(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            failed.append(str(err))

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20,
                         "message.max.bytes": 4_000_000})
    for index, payload in enumerate(data.messages):
        while True:
            try:
                producer.produce(topic, payload, data.key, partition=index % partitions,
                                 on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.5)
        producer.poll(0)
    if producer.flush(60) or failed:
        raise SystemExit(f"producing to {topic} failed: {failed[:1] or 'not acknowledged'}")


def simulate(args: argparse.Namespace, out: Path, topic: str) -> str:
    command = [sys.executable, "-m", "graphsentry.cli", "simulate", "--users", str(args.users),
               "--days", str(args.days), "--out", str(out), "--kafka-topic", topic,
               "--bootstrap", args.bootstrap]
    env = {k: v for k, v in os.environ.items() if k != "GRAPHSENTRY_CONFIG"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          check=False)
    match = SIMULATED.search(done.stderr)
    if done.returncode != 0 or match is None:
        raise SystemExit(f"graphsentry simulate failed ({done.returncode}):\n{done.stderr}")
    return f"{match.group(1)} in {match.group(2)}"


def bridge(tree: Path, config: Path, processes: int) -> tuple[str, list[int], float, float]:
    """One ``graphsentry bridge --bounded`` run: its summary line, the counts (inputs,
    bridged, rejected, duplicates), wall seconds and CPU seconds of all its processes."""
    command = [sys.executable, "-m", "graphsentry.cli", "bridge", "--bounded", "--config",
               str(config), "--processes", str(processes)]
    env = {k: v for k, v in os.environ.items() if k not in ("GRAPHSENTRY_CONFIG",
                                                             "KAFKA_BOOTSTRAP")}
    before = cpu_seconds(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True,
                          check=False)
    seconds = time.perf_counter() - started
    match = SUMMARY.search(done.stderr)
    if done.returncode != 0 or match is None:
        raise SystemExit(f"graphsentry bridge --processes {processes} failed "
                         f"({done.returncode}):\n{done.stderr}")
    counts = [int(match.group(i)) for i in range(1, 5)]
    return match.group(0), counts, seconds, cpu_seconds(resource.RUSAGE_CHILDREN) - before


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--days", type=int, default=2)
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--tree", type=Path, default=ROOT, help="checkout whose bridge runs")
    p.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    args = p.parse_args(argv)
    tree = args.tree.resolve()

    print_header("bench_bridge: graphsentry bridge --bounded on 1 and 2 processes, "
                 "duplicates that pass")
    if tree != ROOT:
        print(f"bridge code: {tree} at {commit(tree)}")
    roles = {"raw-keyed": args.partitions, "raw-spread": args.partitions}
    runs = [(layout, n) for layout in ("keyed", "spread") for n in (1, 2)]
    for layout, n in runs:
        roles[f"activity-{layout}-{n}"], roles[f"dlq-{layout}-{n}"] = args.partitions, 1
    with throwaway_topics(args.bootstrap, roles) as topics, \
            tempfile.TemporaryDirectory(prefix="bench-bridge-") as folder:
        started = time.perf_counter()
        simulated = simulate(args, Path(folder) / "simulate.jsonl", topics["raw-keyed"])
        print(f"simulate --users {args.users} --days {args.days}: {simulated}, produced to "
              f"{topics['raw-keyed']} (keyed by tenant id) in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        data = read_input(Path(folder) / "simulate.jsonl")
        spread_over(args.bootstrap, topics["raw-spread"], data, args.partitions)
        print(f"records: {data.records:,}, distinct (requestId, timeGenerated): "
              f"{data.distinct:,}; delivered twice: {len(data.copies):,}"
              f"{'' if all(len(h) == 2 for h in data.copies) else ' (some more often)'}")
        partition_of: dict[str, list[int]] = {}
        for layout in ("keyed", "spread"):
            topic = topics[f"raw-{layout}"]
            counts = partition_counts(args.bootstrap, topic, args.partitions)
            print(f"layout {layout}: messages per partition {counts}", flush=True)
            if layout == "keyed":
                (only,) = [i for i, c in enumerate(counts) if c] or [0]
                partition_of[layout] = [only] * len(data.messages)
            else:
                partition_of[layout] = [i % args.partitions for i in range(len(data.messages))]
        for layout, n in runs:
            owner = primaries(topics[f"raw-{layout}"], args.partitions, n)
            print(f"layout {layout}, {n} process(es): partitions of worker "
                  + ", ".join(f"{w}: {[p for p, o in owner.items() if o == w]}"
                              for w in range(n)))
            pairs = {"same worker": 0, "two workers": 0}
            for held in data.copies:
                workers = {owner[partition_of[layout][m]] for m in held}
                pairs["two workers" if len(workers) > 1 else "same worker"] += 1
            predicted = predicted_passes(data, partition_of[layout], owner)
            config = Path(folder) / f"bridge-{layout}-{n}.yaml"
            config.write_text(yaml.safe_dump({"kafka": {
                "bootstrap": args.bootstrap,
                "topics": {"raw": topics[f"raw-{layout}"],
                           "activity": topics[f"activity-{layout}-{n}"],
                           "dlq": topics[f"dlq-{layout}-{n}"]}}}), encoding="utf-8")
            print(f"  before: {load_note()}")
            line, (inputs, bridged, _, duplicates), seconds, cpu = bridge(tree, config, n)
            print(f"  {line}")
            print(f"  {seconds:.1f} s wall, {cpu:.1f} CPU-s in all; re-delivered records with "
                  f"copies on the same worker {pairs['same worker']}, on two workers "
                  f"{pairs['two workers']}; duplicates removed {duplicates}, passed "
                  f"{bridged - data.distinct} (bridged {bridged:,} - distinct {data.distinct:,};"
                  f" predicted by the partition layout: {predicted})"
                  f"{'' if inputs == len(data.messages) else f'; inputs {inputs}?'}",
                  flush=True)
    print(f"at end: {load_note()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
