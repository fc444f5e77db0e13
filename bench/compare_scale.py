"""``bench_scale``'s command from several trees, interleaved on the same topic: what each
version costs on 1 and 2 processes.

Rates on this shared machine drift from minute to minute, so the trees run alternately on the
same records in the same minutes. Each run is ``graphsentry run --bounded --processes N`` in
the tree's folder with this tree's Python environment (the command's imports resolve to that
tree: its folder comes first on ``sys.path``); Redis enrichment, every output to a throwaway
topic, as in ``bench_scale.py``.

Prints each run (as ``bench_scale`` does), then for each tree the medians: records/s and
CPU-µs per record on 1 and 2 processes, the system CPU seconds, the 2-process CPU per record
over one, the measured speed-up, and the speed-up estimated for 2 idle cores
(``bench_scale.idle_core_estimate``: the 1-process worker's CPU seconds over the busiest
worker's with 2, start-up included; an estimate).

Usage (trees are any checkouts, e.g. ``git worktree add --detach /tmp/gs-a 1f32ecf``):
``python bench/compare_scale.py TREE [TREE ...] [--rounds 2] [--records 300000]``. Not run by
``make bench`` (it needs other trees). Run with the stack up.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import uuid
from collections import Counter
from pathlib import Path

import redis
from bench_scale import (
    RunResult,
    counted,
    describe,
    idle_core_estimate,
    run_command,
    write_config,
)
from benchlib import commit, load_note, print_header, produce, throwaway_topics
from workload import Tenant


def summary(runs: dict[int, list[RunResult]], count: int) -> str:
    rate = {n: statistics.median(count / r.seconds for r in rs) for n, rs in runs.items()}
    cpu = {n: statistics.median(r.cpu / count for r in rs) for n, rs in runs.items()}
    system = {n: statistics.median(r.system for r in rs) for n, rs in runs.items()}
    estimate = idle_core_estimate(runs[1], runs[2])
    return (f"1 process {rate[1]:,.0f} records/s, {cpu[1] * 1e6:.1f} CPU-µs/record, "
            f"{system[1]:.1f} system CPU-s; 2 processes {rate[2]:,.0f} records/s, "
            f"{cpu[2] * 1e6:.1f} CPU-µs/record, {system[2]:.1f} system CPU-s; "
            f"{cpu[2] / cpu[1]:.2f}x the CPU per record of one; measured speed-up "
            f"{rate[2] / rate[1]:.2f}x; estimated on 2 idle cores "
            + (f"{estimate:.2f}x" if estimate is not None else "(no samples)"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("trees", nargs="+", type=Path)
    p.add_argument("--records", type=int, default=300_000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    p.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = p.parse_args(argv)
    trees = [t.resolve() for t in args.trees]
    for tree in trees:
        if not (tree / "graphsentry" / "cli.py").is_file():
            raise SystemExit(f"{tree}: not a graphsentry tree (no graphsentry/cli.py)")

    print_header("compare_scale: graphsentry run --bounded on 1 and 2 processes, several "
                 "trees interleaved")
    for n, tree in enumerate(trees):
        print(f"tree {n}: {tree} ({commit(tree)})")
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    with throwaway_topics(args.bootstrap, {"activity": args.partitions, "outputs": 1}) as topics, \
            tempfile.TemporaryDirectory(prefix="compare-scale-") as folder:
        apps: Counter[str] = Counter()
        principals: set[str] = set()
        count = produce(args.bootstrap, topics["activity"],
                        counted(Tenant().mixed_stream(args.records, 3 * 86_400.0), apps,
                                principals))
        print(f"produced {count:,} records of {len(principals):,} principals to "
              f"{topics['activity']}", flush=True)
        config = Path(folder) / "compare-scale.yaml"
        write_config(config, args.bootstrap, args.redis_url, topics, prefix)
        runs: list[dict[int, list[RunResult]]] = [{1: [], 2: []} for _ in trees]
        try:
            for round_ in range(1, args.rounds + 1):
                for processes in (1, 2):
                    for n, tree in enumerate(trees):
                        result = run_command(config, processes, root=tree)
                        runs[n][processes].append(result)
                        print(f"round {round_}, tree {n}, {describe(result, count)}",
                              flush=True)
        finally:
            client = redis.Redis.from_url(args.redis_url)
            for key in client.scan_iter(match=f"{prefix}*", count=1000):
                client.delete(key)
            client.close()
    for n, _tree in enumerate(trees):
        print(f"median, tree {n}: {summary(runs[n], count)}")
    print(f"at end: {load_note()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
