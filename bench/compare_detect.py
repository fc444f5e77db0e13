"""Detection dataflow of this tree against a baseline tree, interleaved on the same input.

The question it answers: did detection get slower than in another version (e.g. ``main``
before the per-principal model)? Rates on this shared machine drift by tens of percent from
minute to minute, so the two versions run alternately, on the same records, in the same
minutes, and CPU seconds are reported next to wall-clock rates.

1. simulate the ``bench_detect`` input once (``graphsentry simulate --users 200 --days 3``;
   the first ``--records``) and produce it twice, each copy by its own tree's producer code
   (Avro value, Kafka key and partitioning as that version writes them), to fresh topics of 3
   partitions;
2. ``--rounds`` times: consume + Avro-decode this tree's topic (the floor), then run each
   tree's bounded Kafka detection flow (``dataflows.detect.kafka_flow``, one process, Redis
   enrichment, every output to a throwaway topic) in a fresh Python process whose imports
   resolve to that tree; the order of the two alternates between rounds;
3. print each round and the medians: records/s (wall clock of ``run_main``, start-up of the
   flow included), CPU-µs per event (``time.process_time`` of that run), and the ratios.

Usage (the baseline is any checkout or export, e.g. ``git archive main | tar -x -C
/tmp/gs-main``): ``python bench/compare_detect.py --baseline /tmp/gs-main [--records 200000]
[--rounds 3]``. Not run by ``make bench`` (it needs a baseline tree).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PARTITIONS = 3


def child(args: argparse.Namespace) -> int:
    """Run one step with imports from ``args.tree``; print one JSON line."""
    sys.path.insert(0, args.tree)
    from benchlib import produce  # imports graphsentry lazily: from the tree

    from graphsentry.config import Topics, config_from_dict

    if args.child == "produce":
        from itertools import islice

        from graphsentry.ingest import iter_records

        count = produce(args.bootstrap, args.topic,
                        islice(iter_records([args.input]), args.records))
        print(json.dumps({"produced": count}))
        return 0
    from bytewax.testing import run_main

    from dataflows.detect import kafka_flow

    outputs = {name: args.sink for name in ("alerts", "alerts_json", "dlq", "signals", "late")
               if name in Topics.model_fields}
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    config = config_from_dict({
        "kafka": {"bootstrap": args.bootstrap, "tail": False,
                  "topics": {"activity": args.topic, **outputs}},
        "redis": {"url": args.redis_url, "key_prefix": prefix}})
    built = kafka_flow(config, tail=False)
    started, cpu = time.perf_counter(), time.process_time()
    run_main(built.flow)  # type: ignore[no-untyped-call]
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    import redis

    client = redis.Redis.from_url(args.redis_url)
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)
    client.close()
    c = built.engine.counters
    import graphsentry.engine

    print(json.dumps({"code": str(Path(graphsentry.engine.__file__).parents[1]),
                      "seconds": elapsed, "cpu": cpu, "events": c.events, "late": c.late,
                      "alerts": sum(c.alerts.values())}))
    return 0


def run_child(tree: str, step: str, args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    command = [sys.executable, str(HERE / "compare_detect.py"), "--child", step, "--tree", tree,
               "--bootstrap", args.bootstrap, "--redis-url", args.redis_url,
               "--records", str(args.records)]
    for key, value in extra.items():
        command += [f"--{key}", str(value)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=tree)
    if done.returncode != 0:
        raise SystemExit(f"{tree}: {step} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", help="the other tree (a checkout or export)")
    p.add_argument("--records", type=int, default=200_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    p.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    p.add_argument("--child", choices=("produce", "detect"), help=argparse.SUPPRESS)
    p.add_argument("--tree", help=argparse.SUPPRESS)
    p.add_argument("--topic", help=argparse.SUPPRESS)
    p.add_argument("--sink", help=argparse.SUPPRESS)
    p.add_argument("--input", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args)
    if not args.baseline:
        p.error("--baseline is required")
    sys.path.insert(0, str(HERE.parent))
    from bench_detect import consume_and_decode
    from benchlib import load_note, print_header, throwaway_topics

    this, base = str(HERE.parent), str(Path(args.baseline).resolve())
    print_header("compare_detect: this tree's detection dataflow vs a baseline's, interleaved")
    described = subprocess.run(["git", "log", "-1", "--format=%h %cs %s"], cwd=base,
                               capture_output=True, text=True, check=False).stdout.strip()
    print(f"baseline: {base} {described or '(not a git checkout)'}")
    trees = {"this": this, "baseline": base}
    with tempfile.TemporaryDirectory(prefix="compare-detect-") as folder, throwaway_topics(
            args.bootstrap, {"this": PARTITIONS, "baseline": PARTITIONS, "out": 1}) as topics:
        sim = Path(folder) / "sim.jsonl"
        subprocess.run([sys.executable, "-m", "graphsentry.cli", "simulate", "--users", "200",
                        "--days", "3", "--out", str(sim)], check=True, capture_output=True,
                       cwd=this)
        counts = {name: run_child(tree, "produce", args, topic=topics[name], input=sim)
                  ["produced"] for name, tree in trees.items()}
        print(f"produced {counts['this']:,} records to each topic (each tree's own producer)",
              flush=True)
        rows: dict[str, list[dict[str, Any]]] = {"this": [], "baseline": []}
        floors: list[float] = []
        for round_ in range(1, args.rounds + 1):
            floors.append(counts["this"] / consume_and_decode(args.bootstrap, topics["this"],
                                                              counts["this"]))
            order = ["this", "baseline"] if round_ % 2 else ["baseline", "this"]
            for name in order:
                rows[name].append(run_child(trees[name], "detect", args, topic=topics[name],
                                            sink=topics["out"]))
                if round_ == 1:
                    print(f"{name}: code imported from {rows[name][-1]['code']}")
            parts = []
            for name in ("this", "baseline"):
                r = rows[name][-1]
                parts.append(f"{name} {r['events'] / r['seconds']:7,.0f} records/s "
                             f"{r['cpu'] / r['events'] * 1e6:5.1f} CPU-µs/event "
                             f"({r['events'] / r['seconds'] / floors[-1]:.0%} of the floor; "
                             f"{r['late']:,} late, {r['alerts']} alerts)")
            print(f"round {round_} (floor {floors[-1]:,.0f} records/s): " + "; ".join(parts),
                  flush=True)
    med: dict[str, dict[str, float]] = {
        name: {"rate": statistics.median(r["events"] / r["seconds"] for r in rs),
               "cpu": statistics.median(r["cpu"] / r["events"] for r in rs),
               "ratio": statistics.median(r["events"] / r["seconds"] / f
                                          for r, f in zip(rs, floors, strict=True))}
        for name, rs in rows.items()}
    for name in ("this", "baseline"):
        m = med[name]
        print(f"median {name}: {m['rate']:,.0f} records/s, {m['cpu'] * 1e6:.1f} CPU-µs/event, "
              f"{m['ratio']:.0%} of consume+decode")
    print(f"this / baseline: {med['this']['rate'] / med['baseline']['rate']:.2f}x the records/s,"
          f" {med['this']['cpu'] / med['baseline']['cpu']:.2f}x the CPU per event "
          f"(floor median {statistics.median(floors):,.0f} records/s)")
    print(f"at end: {load_note()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
