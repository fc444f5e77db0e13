"""``graphsentry simulate``: a simulated tenant's raw Graph activity logs with labeled scenarios."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path
from typing import Any

from graphsentry.commands._output import check_writable
from graphsentry.commands._topic_range import with_bootstrap
from graphsentry.errors import GraphsentryError

HELP = "generate raw Graph activity logs (Event Hub JSON) for a simulated tenant, with labels"
DEFAULT_OUT = "out/simulate.jsonl"
DEFAULT_TOPIC = "graph.activity.raw"


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date (YYYY-MM-DD): {text!r}") from None


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1: {text}")
    return value


MAX_KAFKA_TIMEOUT = 300.0  # librdkafka's socket.timeout.ms allows 10 ms .. 300 s


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.01 <= value <= MAX_KAFKA_TIMEOUT:
        raise argparse.ArgumentTypeError(f"must be between 0.01 and {MAX_KAFKA_TIMEOUT:g} "
                                         f"seconds: {text}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    from graphsentry.simulate import (
        BENCHMARK_SCENARIO_NAMES,
        DEFAULT_START,
        DEMO_DAYS,
        SCENARIO_NAMES,
    )
    from graphsentry.simulate.benchmark import DEFAULT_DAYS, DEFAULT_USERS, MIN_DAYS

    p.add_argument("--out", help=f"output file, '-' for stdout (default {DEFAULT_OUT}, "
                   "or none when producing to Kafka)")
    p.add_argument("--labels", help="labels JSON (default: <out>.labels.json)")
    p.add_argument("--profile", choices=("demo", "benchmark"), default="demo",
                   help="demo (default): a small tenant and the demo's scenarios; benchmark: "
                   f"the multi-day tenant (at least {MIN_DAYS} days) with recurring look-alike "
                   "jobs and quiet attacks (docs/simulation.md)")
    p.add_argument("--days", type=int, help="simulated days; scenarios run on the last one, "
                   f"the others are history (default {DEMO_DAYS}, benchmark {DEFAULT_DAYS})")
    p.add_argument("--users", type=int, help="users in the tenant (default 40, benchmark "
                   f"{DEFAULT_USERS})")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument("--scenario", action="append", metavar="NAME",
                   help=f"scenario to run, repeatable: all (default); demo: "
                   f"{', '.join(SCENARIO_NAMES)}; benchmark: "
                   f"{', '.join(BENCHMARK_SCENARIO_NAMES)}")
    p.add_argument("--start", type=_iso_date, default=DEFAULT_START,
                   help=f"first simulated day (default {DEFAULT_START.isoformat()})")
    p.add_argument("--late-fraction", type=_fraction, default=0.03,
                   help="share of records delivered 30 min-2 h late (default 0.03)")
    p.add_argument("--duplicate-fraction", type=_fraction, default=0.005,
                   help="share of records delivered twice (default 0.005)")
    p.add_argument("--records-per-message", type=int, default=50,
                   help="maximum records per Event Hub message (default 50)")
    p.add_argument("--kafka-topic", help=f"produce messages to this topic (e.g. {DEFAULT_TOPIC})")
    p.add_argument("--config", help="YAML configuration (default: $GRAPHSENTRY_CONFIG or "
                   "built-in defaults), with --kafka-topic: the broker (kafka.bootstrap) and "
                   "its producer settings (kafka.producer: security, SASL, TLS)")
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (default: the config's), with "
                   "--kafka-topic")
    p.add_argument("--kafka-timeout", type=_timeout, default=10.0,
                   help="seconds to wait for the broker (default 10)")
    p.add_argument("--progress", action="store_true", help="show progress even when stderr "
                   "is not a terminal")


def _labels_path(args: argparse.Namespace, out: str | None) -> Path | None:
    if args.labels:
        return Path(args.labels)
    if out and out != "-":
        return Path(out + ".labels.json")
    return None


def _producer_settings(args: argparse.Namespace) -> dict[str, Any]:
    """librdkafka settings of the raw topic's producer: the configuration's broker
    (``--bootstrap`` overrides it) and ``kafka.producer``, loaded and validated as every
    Kafka-writing command does (``bridge``, ``run``, ``replay``, ``topics``)."""
    from graphsentry.config import load_config

    kafka = with_bootstrap(load_config(args.config), args).kafka
    return {"bootstrap.servers": kafka.bootstrap, **{str(k): v for k, v in kafka.producer.items()}}


def run(args: argparse.Namespace) -> int:
    from graphsentry.progress import Progress
    from graphsentry.simulate import DEMO_DAYS, DeliveryOptions, SimulationConfig, simulate
    from graphsentry.simulate.benchmark import DEFAULT_DAYS, DEFAULT_USERS
    from graphsentry.simulate.labels import write_labels
    from graphsentry.simulate.writer import KafkaSink, write_messages

    if not args.kafka_topic and (args.bootstrap or args.config):
        raise GraphsentryError("--bootstrap and --config apply with --kafka-topic only")
    out = args.out if args.out or args.kafka_topic else DEFAULT_OUT
    if out and Path(out).is_dir():  # its missing directories are created, as always
        raise GraphsentryError(f"cannot write {out} (--out): is a directory")
    check_writable(args.labels, "--labels")
    bench = args.profile == "benchmark"
    config = SimulationConfig(
        seed=args.seed,
        users=args.users if args.users is not None else DEFAULT_USERS if bench else 40,
        days=args.days if args.days is not None else DEFAULT_DAYS if bench else DEMO_DAYS,
        start=args.start,
        scenarios=tuple(args.scenario or ("all",)),
        delivery=DeliveryOptions(args.late_fraction, args.duplicate_fraction,
                                 args.records_per_message),
        profile=args.profile)
    try:
        config.validate()
    except ValueError as exc:
        raise GraphsentryError(str(exc)) from None
    force = True if args.progress else None
    # The broker is checked before the tenant is simulated (about 20 s for the benchmark).
    sink = (KafkaSink(args.kafka_topic, _producer_settings(args), args.kafka_timeout)
            if args.kafka_topic else None)
    if bench:
        print(f"simulate: building the {config.days}-day benchmark tenant with {config.users} "
              "users (about 20 s for 500 users over 8 days)...", file=sys.stderr)
    sim = simulate(config)
    if out == "-":
        with Progress(len(sim.messages), "simulate: writing", force=force) as progress:
            write_messages(sim.messages, sys.stdout, progress)
        sys.stdout.flush()
    elif out:
        path = Path(out)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", encoding="utf-8", newline="\n") as handle, \
                    Progress(len(sim.messages), "simulate: writing", force=force) as progress:
                write_messages(sim.messages, handle, progress)
        except OSError as exc:
            raise GraphsentryError(f"cannot write {out}: {exc.strerror}") from None
    produced = None
    if sink is not None:
        with Progress(len(sim.messages), f"simulate: producing to {args.kafka_topic}",
                      force=force) as progress:
            produced = sink.produce(sim.messages, sim.tenant.tenant_id, progress)
    labels_path = _labels_path(args, out)
    document = sim.labels_document()
    if labels_path is not None:
        try:
            write_labels(labels_path, document)
        except OSError as exc:
            raise GraphsentryError(f"cannot write {labels_path}: {exc.strerror}") from None
    first, last = sim.span
    stats = sim.stats
    where = [w for w in (out if out != "-" else "stdout" if out else None,
                         f"{args.kafka_topic} ({produced} messages)" if produced is not None
                         else None) if w]
    print(f"simulate: {stats.records} records ({stats.late} late, {stats.duplicates} duplicated) "
          f"over {document['run']['principal_days']} principal-days "
          f"in {stats.messages} messages, {len(sim.labels)} scenarios "
          f"({', '.join(label.name for label in sim.labels)}), {first} .. {last} -> "
          f"{', '.join(where)}; labels: {labels_path or 'not written'}", file=sys.stderr)
    return 0
