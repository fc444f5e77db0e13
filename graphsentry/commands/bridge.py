"""``graphsentry bridge``: raw Graph activity logs → ``graph.activity.v1`` (Avro) + DLQ.

From the raw topic (``kafka.topics.raw``, or an Event Hub through its Kafka endpoint; live by
default, ``--bounded`` stops at the end) or from files (``--input``: backfill from storage-account
``PT1H.json`` blobs or any other delivery shape). Runs the Bytewax flow of ``dataflows/bridge.py``
in this process, or on N spawned processes forming one cluster (Kafka partitions or files are
spread over them). Prints bridged / rejected-by-reason / duplicate counts at the end (also when
interrupted). With no arguments it bridges the configured raw topic live (the compose service).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

from graphsentry.cluster import ClusterInterrupted, prepare_recovery, run_spawned
from graphsentry.errors import GraphsentryError

if TYPE_CHECKING:
    from graphsentry.config import Config

HELP = ("bridge raw Graph activity logs (raw topic / Event Hub, or files) to graph.activity.v1 "
        "(Avro) and the dead-letter topic")
METADATA_TIMEOUT_S = 10.0
STOP_GRACE_SECONDS = 15.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML configuration (default: $GRAPHSENTRY_CONFIG or "
                   "built-in defaults)")
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (default: the config's)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--from-topic", metavar="TOPIC",
                        help="raw topic to read (default: the config's kafka.topics.raw)")
    source.add_argument("--input", nargs="+", metavar="PATH",
                        help="bridge these files instead (any delivery shape, gzip; '-' = stdin)")
    p.add_argument("--to-topic", metavar="TOPIC",
                   help="normalized activity topic (default: the config's, graph.activity.v1)")
    p.add_argument("--dlq-topic", metavar="TOPIC",
                   help="dead-letter topic (default: the config's, graph.activity.dlq.v1)")
    p.add_argument("--bounded", action="store_true",
                   help="stop at the current end of the raw topic (tests, backfills)")
    p.add_argument("--processes", type=int, default=1,
                   help="Bytewax processes, one worker each (default 1; use ≤ partitions/files)")
    p.add_argument("--dedup-capacity", type=int, default=None, metavar="N",
                   help="request ids each worker remembers for de-duplication (default "
                   "1,000,000; 0 turns it off)")
    p.add_argument("--recovery-dir", metavar="DIR",
                   help="Bytewax recovery partitions (created if missing): a restart resumes at "
                   "the offsets (or file positions) the last run reached")
    p.add_argument("--progress", action="store_true",
                   help="show the file progress line even when stderr is not a terminal")


@dataclasses.dataclass(frozen=True)
class BridgeJob:
    """Everything a (possibly spawned) process needs to build its share of the bridge."""

    config: Config
    paths: tuple[str, ...] | None
    tail: bool
    dedup_capacity: int | None
    recovery_dir: str | None = None

    def run_options(self) -> dict[str, Any]:
        """Epoch length and recovery for ``run_main`` / ``cluster_main``."""
        from datetime import timedelta
        from pathlib import Path

        from bytewax.recovery import RecoveryConfig

        recovery = None
        if self.recovery_dir:
            recovery = RecoveryConfig(Path(self.recovery_dir))  # type: ignore[no-untyped-call]
        return {"epoch_interval": timedelta(seconds=self.config.bytewax.epoch_seconds),
                "recovery_config": recovery}


def _configure(args: argparse.Namespace) -> Config:
    from graphsentry.config import load_config

    config = load_config(args.config)
    if args.bootstrap:
        config = config.replace("kafka", bootstrap=args.bootstrap)
    topics = config.kafka.topics
    return config.replace("kafka.topics", raw=args.from_topic or topics.raw,
                          activity=args.to_topic or topics.activity,
                          dlq=args.dlq_topic or topics.dlq)


def _check_inputs(paths: list[str], processes: int) -> None:
    for path in paths:
        if path == "-":
            if processes > 1:
                raise GraphsentryError("stdin ('-') can only be bridged with --processes 1")
        elif not os.path.isfile(path):
            problem = "is a directory" if os.path.isdir(path) else "no such file"
            raise GraphsentryError(f"cannot read {path}: {problem}")


def _check_topics(settings: dict[str, Any], topics: list[str], role: str) -> None:
    """A clear error now, instead of a producer waiting minutes for a topic that is not there.

    Lists all topics: asking for one by name would create it on a broker that auto-creates.
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    try:
        existing = AdminClient(settings).list_topics(timeout=METADATA_TIMEOUT_S).topics
    except KafkaException as exc:
        raise GraphsentryError(f"cannot reach Kafka at {settings['bootstrap.servers']}: "
                               f"{exc}") from None
    for topic in topics:
        described = existing.get(topic)
        if described is None or described.error is not None or not described.partitions:
            raise GraphsentryError(f"{role} topic {topic!r} does not exist on "
                                   f"{settings['bootstrap.servers']}")


def _client_settings(config: Config, extra: dict[str, Any]) -> dict[str, Any]:
    return {"bootstrap.servers": config.kafka.bootstrap, **{str(k): v for k, v in extra.items()}}


def _build(job: BridgeJob, on_read: Callable[[int], None] | None,
           stop: threading.Event) -> Any:
    from dataflows.bridge import files_bridge_flow, kafka_bridge_flow

    if job.paths is not None:
        return files_bridge_flow(job.config, job.paths, dedup_capacity=job.dedup_capacity,
                                 on_read=on_read, stop=stop)
    return kafka_bridge_flow(job.config, tail=job.tail, dedup_capacity=job.dedup_capacity,
                             stop=stop)


def _stop_on_signals(stop: threading.Event, abort_on_repeat: bool) -> None:
    """SIGINT / SIGTERM (Ctrl-C, docker stop) end the input: the flow drains and finishes, so
    every bridged record is flushed and counted. A repeated signal aborts, if allowed (a cluster
    child gets Ctrl-C's SIGINT and then its parent's SIGTERM: it ignores the second)."""

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        if stop.is_set() and abort_on_repeat:
            raise KeyboardInterrupt
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, request_stop)


def _interrupt_on_sigterm() -> None:
    """In the parent of a cluster: SIGTERM ends the run like Ctrl-C."""

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _cluster_process(job: BridgeJob, addresses: list[str], index: int, read: Any,
                     results: Any) -> None:
    """One process of a multi-process bridge (spawned: nothing inherited but the arguments)."""
    from bytewax.testing import cluster_main

    def on_read(n: int) -> None:
        with read.get_lock():
            read.value += n

    stop = threading.Event()
    _stop_on_signals(stop, abort_on_repeat=False)
    built = _build(job, on_read, stop)
    try:
        cluster_main(built.flow, addresses, index,  # type: ignore[no-untyped-call]
                     **job.run_options())
    finally:
        results.put(built.counters.as_dict())


def bridge(job: BridgeJob, processes: int = 1, progress: bool | None = None) -> tuple[Any, bool]:
    """Run the bridge; returns (summed ``BridgeCounters``, whether it was interrupted)."""
    from bytewax.testing import run_main

    from dataflows.bridge import BridgeCounters
    from graphsentry.progress import Progress

    total = (sum(os.path.getsize(p) for p in job.paths if p != "-")
             if job.paths is not None else None)
    show = progress if job.paths is not None else False  # no byte count for a topic
    summed, interrupted = BridgeCounters(), False
    with Progress(total, "bridge", force=show or None) as bar:
        if processes == 1:
            stop = threading.Event()
            _stop_on_signals(stop, abort_on_repeat=True)
            built = _build(job, bar.advance, stop)
            run_main(built.flow, **job.run_options())  # type: ignore[no-untyped-call]
            summed.add(built.counters)
            interrupted = stop.is_set()
        else:
            _interrupt_on_sigterm()
            try:
                counts = run_spawned(_cluster_process, job, processes, "bridge", bar.advance,
                                     STOP_GRACE_SECONDS)
            except ClusterInterrupted as stop:
                counts, interrupted = stop.results, True
            for counters in counts:
                summed.add(BridgeCounters.from_dict(counters))
    return summed, interrupted


def run(args: argparse.Namespace) -> int:
    from graphsentry.ingest.dedup import DEFAULT_CAPACITY

    if args.processes < 1:
        raise GraphsentryError(f"--processes must be at least 1, got {args.processes}")
    if args.dedup_capacity is not None and args.dedup_capacity < 0:
        raise GraphsentryError("--dedup-capacity must be 0 (off) or more")
    capacity = DEFAULT_CAPACITY if args.dedup_capacity is None else args.dedup_capacity or None
    config = _configure(args)
    kafka = config.kafka
    if args.input:
        _check_inputs(args.input, args.processes)
    else:
        _check_topics(_client_settings(config, kafka.consumer), [kafka.topics.raw], "raw")
    _check_topics(_client_settings(config, kafka.producer),
                  [kafka.topics.activity, kafka.topics.dlq], "output")
    if args.recovery_dir:
        prepare_recovery(args.recovery_dir)
    job = BridgeJob(config, tuple(args.input) if args.input else None,
                    tail=kafka.tail and not args.bounded, dedup_capacity=capacity,
                    recovery_dir=args.recovery_dir)
    source = (", ".join(args.input) if args.input else
              f"topic {kafka.topics.raw}{'' if job.tail else ' (to its current end)'}")
    print(f"graphsentry bridge: {source} -> {kafka.topics.activity} "
          f"(dead letters: {kafka.topics.dlq}) on {kafka.bootstrap}", file=sys.stderr)
    started = time.perf_counter()
    counters, interrupted = bridge(job, args.processes, args.progress or None)
    print(f"graphsentry bridge: {counters.summary()} in {time.perf_counter() - started:.1f}s"
          f"{' (interrupted)' if interrupted else ''}", file=sys.stderr)
    return 130 if interrupted else 0
