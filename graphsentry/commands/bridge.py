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
from typing import TYPE_CHECKING, Any

from graphsentry.cluster import (
    ClusterFailed,
    ClusterInterrupted,
    Interrupted,
    LogDir,
    StopEvent,
    exit_code,
    interrupt_on_signals,
    native_stderr,
    prepare_recovery,
    run_in_process,
    run_spawned,
    stop_on_signals,
    supervise,
)
from graphsentry.errors import GraphsentryError, redact
from graphsentry.metrics.samples import Samples

if TYPE_CHECKING:
    from graphsentry.config import Config

HELP = ("bridge raw Graph activity logs (raw topic / Event Hub, or files) to graph.activity.v1 "
        "(Avro) and the dead-letter topic")
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


def build_bridge(job: BridgeJob, index: int, on_read: Callable[[int], None] | None,
                 stop: Any) -> tuple[Any, dict[str, Any], Callable[[], Samples]]:
    """``cluster.Build`` for one spawned bridge process: its flow, run options and metric
    samples; its endpoints on ``metrics.port + index`` when enabled."""
    from graphsentry.metrics.server import serve

    flow, options, report = _build_in_process(job, on_read, stop)
    serve(job.config, name=f"bridge: process {index}", index=index,
          reads_kafka=job.paths is None)
    return flow, options, report


def _build_in_process(job: BridgeJob, on_read: Callable[[int], None] | None,
                      stop: Any) -> tuple[Any, dict[str, Any], Callable[[], Samples]]:
    built = _build(job, on_read, stop)
    return built.flow, job.run_options(), built.samples


@dataclasses.dataclass
class BridgeOutcome:
    """What a bridge run did, summed over its processes and restarts (their metric
    samples)."""

    samples: Samples = dataclasses.field(default_factory=Samples)
    signum: int = 0
    """The signal that stopped it (0: it ended by itself)."""
    restarts: int = 0

    def add(self, reports: list[Samples]) -> None:
        self.samples.merge_all(reports)

    @property
    def counters(self) -> Any:
        """``BridgeCounters`` of the samples."""
        from dataflows.bridge import BridgeCounters

        return BridgeCounters.from_samples(self.samples)

    @property
    def delivery(self) -> Any:
        """``DeliveryStats`` of the samples."""
        from dataflows.kafka_io import DeliveryStats

        return DeliveryStats.from_samples(self.samples)


def _in_process(job: BridgeJob, advance: Callable[[int], None], logs: LogDir,
                outcome: BridgeOutcome, stop: StopEvent) -> None:
    """One attempt in this process (also the only way to read stdin)."""
    if stop.is_set():
        raise Interrupted(stop.signum or signal.SIGINT)
    flow, options, report = _build_in_process(job, advance, stop)
    try:
        run_in_process(flow, options, logs.file(0), redirect=False)
    except ClusterFailed:
        outcome.add([report()])
        if stop.is_set():  # a second Ctrl-C aborted it
            raise ClusterInterrupted([], stop.signum or signal.SIGINT) from None
        raise
    outcome.add([report()])
    if stop.is_set():
        outcome.signum = stop.signum or signal.SIGINT


def bridge(job: BridgeJob, processes: int = 1, progress: bool | None = None,
           check: Callable[[], None] | None = None) -> BridgeOutcome:
    """Run the bridge, restarting from the last snapshot after a failure when it has a
    recovery directory (``check()`` first: the services are back); raises
    :class:`ClusterFailed` when it gives up."""
    total = (sum(os.path.getsize(p) for p in job.paths if p != "-")
             if job.paths is not None else None)
    show = progress if job.paths is not None else False  # no byte count for a topic
    outcome = BridgeOutcome()
    logs = LogDir("bridge")
    if processes == 1:  # one server for every attempt (the counters add up)
        from graphsentry.metrics.server import serve

        server = serve(job.config, name="bridge", reads_kafka=job.paths is None)
    else:
        server = None
    # In this process a signal ends the input; a parent of spawned processes is interrupted.
    stop = stop_on_signals(abort_on_repeat=True) if processes == 1 else None
    if stop is None:
        interrupt_on_signals()

    def pause(seconds: float) -> None:
        """The wait before a restart; a signal ends it (and the run)."""
        if stop is None:
            time.sleep(seconds)  # interrupt_on_signals raises Interrupted
        elif stop.wait(seconds):
            raise Interrupted(stop.signum or signal.SIGINT)

    try:
        _supervised(job, processes, check, outcome, logs, stop, pause, total, show)
    finally:
        logs.tidy()  # the native log (fd 2) is closed by now
        if server is not None:
            server.close()
    return outcome


def _supervised(job: BridgeJob, processes: int, check: Callable[[], None] | None,
                outcome: BridgeOutcome, logs: LogDir, stop: StopEvent | None,
                pause: Callable[[float], None], total: int | None, show: bool | None) -> None:
    from graphsentry.progress import Progress

    with native_stderr(logs.file(0) if processes == 1 else None), \
            Progress(total, "bridge", force=show or None) as bar:

        def once(attempt: int) -> None:
            if attempt > 1 and check is not None:
                try:
                    check()
                except GraphsentryError as exc:  # e.g. the broker is still away
                    raise ClusterFailed(str(exc)) from None
            if stop is not None:
                _in_process(job, bar.advance, logs, outcome, stop)
                return
            try:
                outcome.add(run_spawned(build_bridge, job, processes, "bridge", bar.advance,
                                        STOP_GRACE_SECONDS, logs))
            except ClusterFailed as failure:
                outcome.add(failure.results)
                raise

        try:
            _, outcome.restarts = supervise(once, name="bridge",
                                            restart=job.recovery_dir is not None, sleep=pause)
        except ClusterInterrupted as interrupted:
            outcome.add(interrupted.results)
            outcome.signum = interrupted.signum
        except Interrupted as interrupted:
            outcome.signum = interrupted.signum


def run(args: argparse.Namespace) -> int:
    from dataflows.kafka_client import check_topics
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

    def check() -> None:
        if not args.input:
            check_topics(_client_settings(config, kafka.consumer), [kafka.topics.raw], "raw")
        check_topics(_client_settings(config, kafka.producer),
                     [kafka.topics.activity, kafka.topics.dlq], "output")

    check()
    if args.recovery_dir:
        prepare_recovery(args.recovery_dir)
    job = BridgeJob(config, tuple(args.input) if args.input else None,
                    tail=kafka.tail and not args.bounded, dedup_capacity=capacity,
                    recovery_dir=args.recovery_dir)
    source = (", ".join(args.input) if args.input else
              f"topic {kafka.topics.raw}{'' if job.tail else ' (to its current end)'}")
    print(f"graphsentry bridge: {source} -> {kafka.topics.activity} "
          f"(dead letters: {kafka.topics.dlq}) on {redact(kafka.bootstrap)}", file=sys.stderr)
    started = time.perf_counter()
    try:
        outcome = bridge(job, args.processes, args.progress or None, check)
    except ClusterFailed as failure:
        print(f"graphsentry bridge: error: {failure.cause}", file=sys.stderr)
        return 1
    after = f" after {outcome.restarts} restart(s)" if outcome.restarts else ""
    stopped = f" (interrupted by {signal.Signals(outcome.signum).name})" if outcome.signum else ""
    print(f"graphsentry bridge: {outcome.counters.summary()}; acknowledged by Kafka: "
          f"{outcome.delivery.summary() or 'nothing'} in {time.perf_counter() - started:.1f}s"
          f"{after}{stopped}", file=sys.stderr)
    return exit_code(outcome.signum) if outcome.signum else 0
