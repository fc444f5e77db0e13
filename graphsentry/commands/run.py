"""``graphsentry run``: the Kafka detection dataflow as a local cluster of N processes.

Before anything starts, the configuration is validated and the services are checked: Kafka
(metadata with the consumer settings for the activity topic, with the producer settings for
the alert and dead-letter topics; a wrong SASL password or TLS against a plain-text port is
an error within seconds, an unreachable cluster after ``METADATA_TIMEOUT_S``) and Redis (a
wrong password, user, database or TLS mode is an error; an unreachable server a warning:
detection starts without enrichment and reconnects).

The processes are supervised (``graphsentry.cluster``): when one fails, the others are
stopped. With ``--recovery-dir`` the cluster is then restarted from the last snapshot (at
most ``RESTART_ATTEMPTS`` times, backing off, one line per restart with its cause); without,
the run ends with exit status 1 and one line naming the cause. SIGINT/SIGTERM stop the
processes cleanly (their input ends, outputs are flushed, a snapshot is taken) and the run
ends with 130/143. At the end one summary line counts events, alerts and what Kafka
acknowledged.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from graphsentry.cluster import (
    ClusterFailed,
    ClusterInterrupted,
    Interrupted,
    LogDir,
    exit_code,
    interrupt_on_signals,
    prepare_recovery,
    run_spawned,
    supervise,
)
from graphsentry.errors import GraphsentryError, redact

if TYPE_CHECKING:
    from graphsentry.config import Config
    from graphsentry.metrics import Samples

HELP = "run the Kafka detection dataflow (graph.activity.v1 -> graph.alerts.v1) on N processes"
STOP_GRACE_SECONDS = 15.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML configuration (default: $GRAPHSENTRY_CONFIG)")
    p.add_argument("--processes", type=int, default=1,
                   help="Bytewax processes, one worker each (default 1; use ≤ partitions)")
    p.add_argument("--bounded", action="store_true",
                   help="stop at the current end of the topic (replay / backtest)")
    p.add_argument("--recovery-dir", metavar="DIR",
                   help="Bytewax recovery partitions (created if missing): resume where the "
                   "last run stopped, and restart from the last snapshot after a failure")
    p.add_argument("--log-dir", metavar="DIR",
                   help="where the processes' native output (Rust panics) goes (default: a "
                   "new temporary directory, named when a failure left something there)")


@dataclasses.dataclass(frozen=True)
class DetectJob:
    """What a spawned process needs to build its share of the detection cluster."""

    config: Config
    tail: bool
    recovery_dir: str | None


def build_detect(job: DetectJob, index: int, _on_read: Any, stop: Any) -> tuple[
        Any, dict[str, Any], Any]:
    """``cluster.Build`` for one detection process: the Kafka flow, its metric samples as its
    report, and its endpoints on ``metrics.port + index`` when enabled."""
    from pathlib import Path

    from bytewax.recovery import RecoveryConfig

    from dataflows.detect import kafka_flow
    from graphsentry.metrics.server import serve

    built = kafka_flow(job.config, tail=job.tail, recovery=bool(job.recovery_dir), stop=stop)
    serve(job.config, name=f"run: process {index}", index=index, store=built.holder.current)
    recovery = (RecoveryConfig(Path(job.recovery_dir), timedelta(0))  # type: ignore[no-untyped-call]
                if job.recovery_dir else None)
    options = {"epoch_interval": timedelta(seconds=job.config.bytewax.epoch_seconds),
               "recovery_config": recovery}
    return built.flow, options, built.samples


def check_services(config: Config) -> None:
    """Kafka and Redis, as the module docstring says; raises :class:`GraphsentryError`."""
    from dataflows.kafka_client import check_topics

    kafka = config.kafka
    consumer = {"bootstrap.servers": kafka.bootstrap, **kafka.consumer}
    producer = {"bootstrap.servers": kafka.bootstrap, **kafka.producer}
    check_topics(consumer, [kafka.topics.activity], "input")
    outputs = [kafka.topics.alerts, kafka.topics.dlq, kafka.topics.alerts_json, kafka.topics.late,
               kafka.topics.signals, kafka.topics.alerts_ocsf]
    check_topics(producer, [t for t in outputs if t], "output")
    if config.redis.url:
        from graphsentry.enrichment.redis_store import RedisStore

        store = RedisStore.from_config(config.redis)
        try:
            warning = store.probe()
        finally:
            store.close()
        if warning:
            print(f"graphsentry run: warning: {warning}; starting without enrichment (alerts "
                  "say enrichment.available=false), reconnecting every "
                  f"{config.redis.retry_seconds:g}s", file=sys.stderr)


def summary(attempts: list[list[Samples]]) -> str:
    """One line: the last attempt's counters (per process: what it processed since its
    snapshot), and what Kafka acknowledged over every attempt; from the processes' metric
    samples (what their ``/metrics`` served)."""
    from dataflows.kafka_io import DeliveryStats
    from graphsentry.detection import DetectStats
    from graphsentry.metrics import Samples

    last = attempts[-1] if attempts else []
    stats = DetectStats.from_samples(Samples().merge_all(last))
    delivery = DeliveryStats.from_samples(Samples().merge_all(
        report for attempt in attempts for report in attempt))
    per_process = ", ".join(str(report.count("graphsentry_events_total")) for report in last)
    over = f" over {len(attempts)} attempts" if len(attempts) > 1 else ""
    return (f"{stats.line()} (events per process: {per_process}); acknowledged by "
            f"Kafka{over}: {delivery.summary() or 'nothing'}")


def run(args: argparse.Namespace) -> int:
    from graphsentry.config import load_config

    if args.processes < 1:
        raise GraphsentryError(f"--processes must be at least 1, got {args.processes}")
    config = load_config(args.config)
    interrupt_on_signals()
    try:
        return _run(args, config)
    except Interrupted as stop:
        print(f"graphsentry run: interrupted ({stop}) before the processes started",
              file=sys.stderr)
        return exit_code(stop.signum)


def _run(args: argparse.Namespace, config: Config) -> int:
    check_services(config)  # a configuration problem: exit 2 before anything starts
    if args.recovery_dir:
        prepare_recovery(args.recovery_dir)
    job = DetectJob(config, tail=config.kafka.tail and not args.bounded,
                    recovery_dir=args.recovery_dir)
    logs = LogDir("run", args.log_dir)
    kafka = config.kafka
    print(f"graphsentry run: {args.processes} process(es) reading {kafka.topics.activity} on "
          f"{redact(kafka.bootstrap)}{'' if job.tail else ' until its end'}"
          f"{f', recovery in {args.recovery_dir}' if args.recovery_dir else ''}",
          file=sys.stderr)
    attempts: list[list[Samples]] = []
    started = time.perf_counter()

    def once(attempt: int) -> list[Samples]:
        attempts.append([])
        if attempt > 1:
            try:
                check_services(config)
            except GraphsentryError as exc:  # e.g. the broker is still away: try again later
                raise ClusterFailed(str(exc)) from None
        try:
            attempts[-1] = run_spawned(build_detect, job, args.processes, "detect",
                                       lambda _n: None, STOP_GRACE_SECONDS, logs)
        except (ClusterFailed, ClusterInterrupted) as failure:
            attempts[-1] = failure.results
            raise
        return attempts[-1]

    try:
        _, restarts = supervise(once, name="run", restart=bool(args.recovery_dir))
    except ClusterFailed as failure:
        logs.tidy()
        print(f"graphsentry run: error: {failure.cause}", file=sys.stderr)
        return 1
    except (ClusterInterrupted, Interrupted) as stop:
        logs.tidy()
        print(f"graphsentry run: stopped by {_signal_name(stop.signum)}: {summary(attempts)}",
              file=sys.stderr)
        return exit_code(stop.signum)
    logs.tidy()
    after = f" after {restarts} restart(s)" if restarts else ""
    print(f"graphsentry run: {summary(attempts)} in {time.perf_counter() - started:.1f}s"
          f"{after}", file=sys.stderr)
    return 0


def _signal_name(signum: int) -> str:
    import signal

    return signal.Signals(signum).name
