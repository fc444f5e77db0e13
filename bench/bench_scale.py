"""Scale-out with hot first-party apps: ``graphsentry run --bounded`` on 1 and 2 processes.

1. generate a skewed tenant (``workload.Tenant``: 4,000 users and 200 service principals;
   Microsoft Teams, Outlook Mobile and OneDrive SyncEngine carry 70 % of the records) and
   produce ``--records`` normalized Avro records (key ``tenant_id/principal_id``) to a fresh
   topic of ``--partitions`` partitions on the local broker; print the app shares and each
   partition's share;
2. run the real command, ``graphsentry run --bounded --processes N`` (Redis enrichment, every
   output to a throwaway topic), for N = 1 and 2, alternating for ``--rounds`` rounds, and
   print for each run: records/s (wall clock of the whole command, start-up included), CPU
   seconds per record (all the command's processes: ``RUSAGE_CHILDREN``) and how many of the
   CPU seconds were system time, each process's CPU seconds (sampled from /proc every 0.1 s)
   and each worker's share of the events (the command's own summary line: events per
   process);
3. run the same command once per N on an empty topic (start-up and shut-down alone);
4. print the medians, the measured speedup of 2 processes over 1, and — since the machine's
   cores are shared — an *estimate* of the speedup on idle cores: the 1-process worker's CPU
   seconds over the busiest worker's CPU seconds in the 2-process run, both sampled from
   /proc (what wall time would be if each worker had a core of its own; an estimate, not a
   measurement; :func:`idle_core_estimate`), with and without the empty-topic run's cost.

Targets (printed, not asserted): no worker above 60 % of the events with 2 workers; on a
machine with enough idle cores, 2 processes ≥ 1.6 x one. Run with the stack up:
``python bench/bench_scale.py [--records 300000] [--rounds 2] [--partitions 4]``
(``KAFKA_BOOTSTRAP``/``REDIS_URL`` default to the local stack).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis
import yaml
from benchlib import (
    ROOT,
    cpu_seconds,
    load_note,
    print_header,
    produce,
    throwaway_topics,
)
from workload import HOT_APPS, Tenant, check_apps

SHARE_TARGET = 0.60
SPEEDUP_TARGET = 1.6
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
SUMMARY = re.compile(r"events per process: ([0-9, ]+)\)")


@dataclass
class RunResult:
    processes: int
    seconds: float
    cpu: float
    events: list[int]
    process_cpu: list[float] = field(default_factory=list)
    system: float = 0.0
    """Of ``cpu``, the seconds spent in the kernel (``ru_stime``)."""

    @property
    def total(self) -> int:
        return sum(self.events)


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of a process from /proc, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def _descendants(root: int) -> dict[int, float]:
    """CPU seconds of every live descendant of ``root``."""
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            found = _stat(int(entry))
            if found is not None:
                parent[int(entry)], cpu[int(entry)] = found
    out, todo = {}, [root]
    while todo:
        pid = todo.pop()
        for child, ppid in parent.items():
            if ppid == pid:
                out[child] = cpu[child]
                todo.append(child)
    return out


def _is_worker(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            text = cmdline.read()
    except OSError:
        return False
    return b"multiprocessing" in text and b"resource_tracker" not in text


def run_command(config_path: Path, processes: int, root: Path = ROOT) -> RunResult:
    """One ``graphsentry run --bounded`` of the tree at ``root`` and what it cost."""
    command = [sys.executable, "-m", "graphsentry.cli", "run", "--bounded",
               "--processes", str(processes), "--config", str(config_path)]
    workers: dict[int, float] = {}
    done = threading.Event()
    children_cpu = cpu_seconds(resource.RUSAGE_CHILDREN)
    children_system = resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)

    def sample() -> None:
        while not done.wait(0.1):
            for pid, seconds in _descendants(proc.pid).items():
                if pid in workers or _is_worker(pid):
                    workers[pid] = max(seconds, workers.get(pid, 0.0))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _out, err = proc.communicate()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    cpu = cpu_seconds(resource.RUSAGE_CHILDREN) - children_cpu
    system = resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime - children_system
    if proc.returncode != 0:
        raise SystemExit(f"graphsentry run --processes {processes} failed "
                         f"({proc.returncode}):\n{err}")
    match = SUMMARY.search(err)
    if match is None:
        raise SystemExit(f"no 'events per process' in graphsentry run's output:\n{err}")
    events = [int(n) for n in match.group(1).replace(" ", "").split(",") if n]
    return RunResult(processes, seconds, cpu, events, sorted(workers.values(), reverse=True),
                     system)


def describe(result: RunResult, records: int) -> str:
    shares = ", ".join(f"{n / result.total:.1%}" for n in result.events)
    per_proc = ", ".join(f"{c:.1f}" for c in result.process_cpu)
    return (f"{result.processes} process(es): {records / result.seconds:8,.0f} records/s "
            f"({result.seconds:.1f} s incl. start-up), {result.cpu / records * 1e6:5.1f} "
            f"CPU-µs/record ({result.cpu:.1f} CPU-s in all, {result.system:.1f} of them system; "
            f"per process, sampled: {per_proc}); "
            f"events per worker {', '.join(f'{n:,}' for n in result.events)} ({shares})")


def write_config(path: Path, bootstrap: str, redis_url: str, topics: dict[str, str],
                 prefix: str) -> None:
    sink = topics["outputs"]
    config = {
        "kafka": {"bootstrap": bootstrap,
                  "topics": {"activity": topics["activity"], "alerts": sink,
                             "alerts_json": sink, "dlq": sink, "signals": sink, "late": sink}},
        "redis": {"url": redis_url, "key_prefix": prefix},
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")


def partition_counts(bootstrap: str, topic: str, partitions: int) -> list[int]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-scale"})
    try:
        return [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(partitions)]
    finally:
        consumer.close()


def counted(records: Iterator[dict[str, Any]], apps: Counter[str],
            principals: set[str]) -> Iterator[dict[str, Any]]:
    for record in records:
        apps[record["app_id"]] += 1
        principals.add(record["principal_id"])
        yield record


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=300_000)
    p.add_argument("--users", type=int, default=4_000)
    p.add_argument("--service-principals", type=int, default=200)
    p.add_argument("--days", type=float, default=3.0, help="event-time span of the records")
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    p.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = p.parse_args(argv)

    print_header("bench_scale: graphsentry run --bounded on 1 and 2 processes, hot first-party "
                 "apps")
    names = check_apps()
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    with throwaway_topics(args.bootstrap, {"activity": args.partitions, "outputs": 1,
                                           "empty": args.partitions}) as topics, \
            tempfile.TemporaryDirectory(prefix="bench-scale-") as folder:
        apps: Counter[str] = Counter()
        principals: set[str] = set()
        started = time.perf_counter()
        tenant = Tenant(users=args.users, service_principals=args.service_principals)
        count = produce(args.bootstrap, topics["activity"],
                        counted(tenant.mixed_stream(args.records, args.days * 86_400.0), apps,
                                principals))
        hot = sum(apps[a] for a in HOT_APPS)
        print(f"produced {count:,} records of {len(principals):,} principals over "
              f"{args.days:g} days to {topics['activity']} in {time.perf_counter() - started:.1f}"
              f" s; hot first-party apps {hot / count:.1%} of records ("
              + ", ".join(f"{names[a]} {apps[a] / count:.1%}" for a in HOT_APPS) + ")")
        per_partition = partition_counts(args.bootstrap, topics["activity"], args.partitions)
        print(f"records per partition: {', '.join(f'{n:,}' for n in per_partition)} (largest "
              f"{max(per_partition) / count:.1%})", flush=True)
        config, idle = Path(folder) / "bench-scale.yaml", Path(folder) / "bench-empty.yaml"
        write_config(config, args.bootstrap, args.redis_url, topics, prefix)
        write_config(idle, args.bootstrap, args.redis_url,
                     dict(topics, activity=topics["empty"]), prefix)
        results: dict[int, list[RunResult]] = {1: [], 2: []}
        empty: dict[int, RunResult] = {}
        try:
            for processes in (1, 2):
                empty[processes] = run_command(idle, processes)
                print(f"empty topic, {processes} process(es): {empty[processes].seconds:.1f} s, "
                      f"{empty[processes].cpu:.1f} CPU-s in all (per process, sampled: "
                      f"{', '.join(f'{c:.1f}' for c in empty[processes].process_cpu)})",
                      flush=True)
            for round_ in range(1, args.rounds + 1):
                for processes in (1, 2):
                    result = run_command(config, processes)
                    if result.total != count:
                        print(f"note: {result.total:,} events for {count:,} records")
                    results[processes].append(result)
                    print(f"round {round_}, {describe(result, count)}", flush=True)
        finally:
            client = redis.Redis.from_url(args.redis_url)
            for key in client.scan_iter(match=f"{prefix}*", count=1000):
                client.delete(key)
            client.close()
    summarize(results, empty, count)
    print(f"at end: {load_note()}")
    return 0


def summarize(results: dict[int, list[RunResult]], empty: dict[int, RunResult],
              count: int) -> None:
    rate = {n: statistics.median(count / r.seconds for r in runs) for n, runs in results.items()}
    cpu = {n: statistics.median(r.cpu / count for r in runs) for n, runs in results.items()}
    share = max(max(r.events) / r.total for r in results[2])
    print(f"median: 1 process {rate[1]:,.0f} records/s, {cpu[1] * 1e6:.1f} CPU-µs/record; "
          f"2 processes {rate[2]:,.0f} records/s, {cpu[2] * 1e6:.1f} CPU-µs/record "
          f"({cpu[2] / cpu[1]:.2f}x the CPU per record of one)")
    steady = {n: statistics.median((r.cpu - empty[n].cpu) / count for r in runs)
              for n, runs in results.items()}
    print(f"without the empty-topic run's CPU (start-up, shut-down): 1 process "
          f"{steady[1] * 1e6:.1f} CPU-µs/record, 2 processes {steady[2] * 1e6:.1f} "
          f"CPU-µs/record ({steady[2] / steady[1]:.2f}x)")
    print(f"largest worker share with 2 workers: {share:.1%} (target ≤ {SHARE_TARGET:.0%}: "
          f"{'met' if share <= SHARE_TARGET else 'NOT met'})")
    print(f"measured speedup of 2 processes over 1 on this machine: {rate[2] / rate[1]:.2f}x "
          f"(target ≥ {SPEEDUP_TARGET}x on enough idle cores; this machine's 2 cores are shared, "
          f"see the load averages)")
    idle = (empty[1].process_cpu[0] if empty[1].process_cpu else 0.0,
            empty[2].process_cpu[0] if empty[2].process_cpu else 0.0)
    with_start = idle_core_estimate(results[1], results[2])
    without = idle_core_estimate(results[1], results[2], idle)
    if with_start is not None:
        print(f"estimated speedup on 2 idle cores (the 1-process worker's CPU-s / the busiest "
              f"worker's CPU-s with 2, both sampled; an estimate, not a measurement): "
              f"{with_start:.2f}x with start-up, "
              + (f"{without:.2f}x without (empty-topic runs' worker CPU subtracted: "
                 f"{idle[0]:.1f} CPU-s with 1 process, {idle[1]:.1f} for the busiest of 2)"
                 if without is not None else "no estimate without start-up")
              + f"; target {SPEEDUP_TARGET}x")


def idle_core_estimate(one: list[RunResult], two: list[RunResult],
                       idle: tuple[float, float] = (0.0, 0.0)) -> float | None:
    """The speed-up 2 processes would have on 2 idle cores, estimated from CPU time: the
    median 1-process worker's CPU seconds over each 2-process run's busiest worker's (what
    the wall time would be if each worker had a core of its own and nothing else ran), the
    median over the 2-process runs. ``idle`` is subtracted from each side first (the
    empty-topic runs' worker CPU: start-up and shut-down). Both sides are the workers'
    sampled CPU, without the launching command's. None without samples."""
    alone = [r.process_cpu[0] - idle[0] for r in one if r.process_cpu]
    if not alone:
        return None
    base = statistics.median(alone)
    ratios = [base / (r.process_cpu[0] - idle[1]) for r in two
              if r.process_cpu and r.process_cpu[0] > idle[1]]
    return statistics.median(ratios) if ratios else None


if __name__ == "__main__":
    raise SystemExit(main())
