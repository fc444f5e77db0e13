"""``graphsentry replay``: run detection over a time range of the activity topic, then stop.

The range source (``dataflows/range_source.py``) reads the messages timestamped in
``[--from, --to)`` and finishes, so the dataflow ends by itself. Alerts go to a JSON-lines file
(sorted by ``last_seen`` then ``alert_id``, so reruns diff cleanly) or to a topic. Enrichment is
an in-process store by default, so a replay neither reads nor overwrites the live Redis
histories: the principals' history is learnt from the replayed range itself.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from graphsentry.cluster import run_in_process, run_spawned
from graphsentry.commands._topic_range import add_range_arguments, with_bootstrap
from graphsentry.errors import GraphsentryError
from graphsentry.metrics.samples import Samples

if TYPE_CHECKING:
    from graphsentry.config import Config
    from graphsentry.detection import DetectStats

HELP = "replay a time range of the activity topic through detection (stops at the range end)"
AlertCallback = Callable[[dict[str, Any]], None]
MAX_REJECTS_SHOWN = 5


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--topic", help="normalized activity topic (default: the config's, "
                   "graph.activity.v1)")
    add_range_arguments(p, required=True)
    p.add_argument("--config", help="YAML configuration (default: $GRAPHSENTRY_CONFIG or "
                   "built-in defaults)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--out", default="-", help="alerts as JSON lines to FILE (default stdout)")
    out.add_argument("--alerts-topic", metavar="TOPIC",
                     help="produce alerts (Avro, key alert_id) to TOPIC instead of a file")
    p.add_argument("--processes", type=int, default=1,
                   help="Bytewax processes, one worker each (default 1)")
    p.add_argument("--store", choices=("memory", "config"), default="memory",
                   help="enrichment store: in-process (default) or the config's (Redis; the "
                   "replay then reads and saves histories there)")
    p.add_argument("--progress", action="store_true",
                   help="show progress even when stderr is not a terminal")


@dataclasses.dataclass(frozen=True)
class ReplayJob:
    """Everything a (possibly spawned) process needs to run its share of the replay."""

    config: Config
    topic: str
    start: datetime
    end: datetime
    ranges: tuple[Any, ...]
    alerts_topic: str | None = None
    use_config_store: bool = False
    signals: bool = False


def _print_reject(reject: dict[str, Any], shown: list[int]) -> None:
    shown[0] += 1
    if shown[0] <= MAX_REJECTS_SHOWN:
        print(f"graphsentry replay: reject {reject.get('source')}: {reject.get('reason')}",
              file=sys.stderr)


def _build(job: ReplayJob, on_alert: AlertCallback | None,
           on_read: Callable[[int], None] | None,
           on_signal: AlertCallback | None = None) -> Any:
    """The detection flow fed by the range source; alerts to ``on_alert`` or the topic,
    signals to ``on_signal`` (None: not collected)."""
    from dataflows import kafka_io
    from dataflows.detect import CallbackSink, DetectSinks, activity_message_decoder, build_flow
    from dataflows.kafka_client import GuardedSource
    from dataflows.range_source import TimeRangeSource
    from graphsentry.enrichment import MemoryStore, store_from_config

    config = job.config
    delivery = None
    if job.alerts_topic:
        config = config.replace("kafka.topics", alerts=job.alerts_topic, alerts_json=None,
                                alerts_ocsf=None)
        delivery = kafka_io.DeliveryStats()
        alerts: Any = kafka_io.alert_sink(config, stats=delivery)
    else:
        alerts = CallbackSink(on_alert or (lambda _a: None))
    shown = [0]
    sinks = DetectSinks(alerts=alerts, rejects=CallbackSink(lambda r: _print_reject(r, shown)),
                        signals=CallbackSink(on_signal) if on_signal else None)
    source = TimeRangeSource(config.kafka.bootstrap, job.topic, job.start, job.end,
                             ranges=job.ranges, batch_size=config.bytewax.batch_size,
                             add_config={str(k): v for k, v in config.kafka.consumer.items()},
                             on_read=on_read)
    store_factory = ((lambda: store_from_config(config)) if job.use_config_store
                     else MemoryStore)

    return build_flow(config, GuardedSource(source), sinks, store_factory,
                      decode=activity_message_decoder(), flow_id="graphsentry_replay",
                      delivery=delivery)


def build_replay(job: ReplayJob, index: int, on_read: Callable[[int], None],
                 _stop: Any) -> tuple[Any, dict[str, Any], Callable[[], Any]]:
    """``cluster.Build`` for one process of a multi-process replay: its metric samples,
    alerts (JSON) and, when the job collects them, signals (Avro); its endpoints on
    ``metrics.port + index`` when enabled."""
    from graphsentry.alerts import alert_to_json, signal_to_avro
    from graphsentry.metrics.server import serve

    found: list[str] = []
    signals: list[bytes] = []
    built = _build(job, lambda a: found.append(alert_to_json(a)), on_read,
                   (lambda s: signals.append(signal_to_avro(s))) if job.signals else None)
    serve(job.config, name=f"replay: process {index}", index=index, store=built.holder.current)
    return built.flow, {}, lambda: (index, built.samples(), found, signals)


def replay(config: Config, topic: str, start: datetime, end: datetime, *,
           on_alert: AlertCallback | None = None, alerts_topic: str | None = None,
           processes: int = 1, use_config_store: bool = False,
           progress: bool | None = None,
           on_signal: AlertCallback | None = None) -> DetectStats:
    """Run detection over ``topic``'s messages timestamped in ``[start, end)``.

    Alerts go to ``on_alert`` (in this process, also for several processes) or, with
    ``alerts_topic``, to that topic; signals to ``on_signal`` (None: not collected). A
    progress line (messages read / messages in range) is drawn on stderr when it is a
    terminal, or always with ``progress=True``.
    """
    from dataflows.range_source import resolve_ranges
    from graphsentry.detection import DetectStats
    from graphsentry.progress import Progress

    if processes < 1:
        raise GraphsentryError(f"--processes must be at least 1, got {processes}")
    ranges = resolve_ranges(config.kafka.bootstrap, topic, start, end,
                            {str(k): v for k, v in config.kafka.consumer.items()})
    job = ReplayJob(config, topic, start, end, tuple(ranges), alerts_topic, use_config_store,
                    signals=on_signal is not None)
    samples = Samples()
    started = time.perf_counter()
    with Progress(sum(r.size for r in ranges), "replay", force=progress or None) as bar:
        if processes == 1:
            from graphsentry.metrics.server import serve

            built = _build(job, on_alert, bar.advance, on_signal)
            server = serve(config, name="replay", store=built.holder.current)
            try:
                run_in_process(built.flow, {})
            finally:
                if server is not None:
                    server.close()
            samples.merge(built.samples())
        else:
            from graphsentry.alerts import alert_from_json, signal_from_avro

            for _index, counts, alerts, signals in run_spawned(
                    build_replay, job, processes, "replay", bar.advance, grace_seconds=30):
                samples.merge(counts)
                if on_alert is not None:
                    for text in alerts:
                        on_alert(alert_from_json(text))
                if on_signal is not None:
                    for data in signals:
                        on_signal(signal_from_avro(data))
    return DetectStats.from_samples(samples, time.perf_counter() - started)


def sort_alerts(alerts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Alert versions in a stable order: first evidence, then id, then revision (the order
    in which a consumer of the compacted topic would apply them)."""
    return sorted(alerts, key=lambda a: (str(a.get("first_seen")), str(a.get("alert_id")),
                                         int(a.get("revision") or 1)))


def run(args: argparse.Namespace) -> int:
    from dataflows.range_source import parse_range
    from graphsentry.alerts import alert_to_json
    from graphsentry.commands._output import check_writable
    from graphsentry.config import load_config
    from graphsentry.hunt.tables import open_output

    if not args.alerts_topic:
        check_writable(args.out, "--out")
    start, end = parse_range(args.start, args.end)
    config = with_bootstrap(load_config(args.config), args)
    topic = args.topic or config.kafka.topics.activity
    found: list[dict[str, Any]] = []
    stats = replay(config, topic, start, end, on_alert=found.append,
                   alerts_topic=args.alerts_topic, processes=args.processes,
                   use_config_store=args.store == "config", progress=args.progress or None)
    if not args.alerts_topic:
        with open_output(args.out) as out:
            for alert in sort_alerts(found):
                out.write(alert_to_json(alert) + "\n")
    where = f"topic {args.alerts_topic}" if args.alerts_topic else (
        "stdout" if args.out == "-" else args.out)
    print(f"graphsentry replay: {topic} [{start.isoformat()}, {end.isoformat()}): "
          f"{stats.messages} messages, {stats.summary()}; alerts to {where}", file=sys.stderr)
    return 0
