"""``graphsentry warm``: learn principals' profiles from history, so a new deployment need not
wait days.

Runs the detection dataflow over archived files (any ingest format) or a time range of the
activity topic, then stores every principal's profile in Redis as a version keyed by its
newest event (``graphsentry.enrichment.store``). The live deployment reads a principal's newest
version older than its first live event, so warm a range that ends where live detection
starts. Signals and alerts of the history are counted, not published.

The summary on stderr names each count's stage (``graphsentry.commands._summary``): for files
an ``ingest:`` line (records rejected while reading and normalizing, by reason, and duplicate
deliveries dropped), then the detection line (``N rejected by the engine``: what the dataflow
refused, e.g. ``bad_avro`` messages on a topic or ``future_timestamp`` events) and, when the
engine rejected any, their reasons.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from graphsentry.commands._topic_range import add_range_arguments, check_range, with_bootstrap
from graphsentry.errors import GraphsentryError
from graphsentry.progress import Progress

if TYPE_CHECKING:
    from graphsentry.config import Config
    from graphsentry.enrichment import EnrichmentStore

HELP = "learn principal profiles from archived logs or a topic range, into Redis"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="archived log files in any delivery shape ('-': stdin)")
    p.add_argument("--topic", help="normalized activity topic to read a time range of instead")
    add_range_arguments(p)
    p.add_argument("--config", help="YAML configuration (default: $GRAPHSENTRY_CONFIG or "
                   "built-in defaults): where Redis is")
    p.add_argument("--progress", action="store_true",
                   help="show progress even when stderr is not a terminal")


def _sinks(on_reject: Callable[[Any], None]) -> Any:
    from dataflows.detect import CallbackSink, DetectSinks

    return DetectSinks(alerts=CallbackSink(lambda _a: None), rejects=CallbackSink(on_reject))


def run(args: argparse.Namespace) -> int:
    from dataflows.detect import build_flow, records_source
    from graphsentry.cluster import run_in_process
    from graphsentry.commands._summary import engine_line, ingest_line, tally
    from graphsentry.config import load_config
    from graphsentry.detection import DetectStats
    from graphsentry.enrichment.redis_store import RedisStore

    check_range(args)
    if not args.topic and not args.paths:
        raise GraphsentryError("give log files or --topic with --from/--to")
    config = with_bootstrap(load_config(args.config), args)
    if not config.redis.url:
        raise GraphsentryError("warm stores profiles in Redis, and redis.url is null")
    store = RedisStore.from_config(config.redis)
    store.check()
    started = time.perf_counter()
    show = args.progress or None
    ingest_rejects: Counter[str] = Counter()  # reading and normalizing the files
    engine_rejects: Counter[str] = Counter()  # the detection flow's reject sink
    duplicates = [0]

    def on_ingest_reject(rej: Any) -> None:
        tally(ingest_rejects, rej)

    def on_engine_reject(rej: Any) -> None:
        tally(engine_rejects, rej)

    def on_duplicate(_record: Any) -> None:
        duplicates[0] += 1

    sinks = _sinks(on_engine_reject)
    if args.topic:
        built, bar = _topic_flow(config, args, store, show, sinks)
    else:
        from graphsentry.ingest import iter_records
        from graphsentry.ingest.readers import check_paths

        check_paths(args.paths)
        bar = Progress(None, "warm: records read", force=show)
        records = _counted(iter_records(
            args.paths, on_reject=on_ingest_reject, on_duplicate=on_duplicate,
            max_future_skew=float(config.time.max_future_skew_seconds)), bar.advance)
        built = build_flow(config, records_source(records, config.bytewax.batch_size),
                           sinks, lambda: store, warm=True, flow_id="graphsentry_warm")
    with bar:
        run_in_process(built.flow, {})
    elapsed = time.perf_counter() - started
    stats = DetectStats.from_samples(built.samples(), elapsed)
    if not args.topic:  # a topic's records were normalized by the bridge (its dead letters)
        print(ingest_line(ingest_rejects, duplicates[0]), file=sys.stderr)
    print(f"graphsentry warm: {stats.profiles_saved} profiles stored in Redis; "
          f"{stats.summary()}, not published; in {elapsed:.1f}s", file=sys.stderr)
    engine = engine_line(engine_rejects)
    if engine is not None:
        print(engine, file=sys.stderr)
    return 0


def _counted(items: Iterable[Any], advance: Callable[[int], None]) -> Iterator[Any]:
    for item in items:
        advance(1)
        yield item


def _topic_flow(config: Config, args: argparse.Namespace, store: EnrichmentStore,
                show: bool | None, sinks: Any) -> tuple[Any, Progress]:
    """The flow over the topic range, and its progress line (messages read / in range)."""
    from dataflows.detect import activity_message_decoder, build_flow
    from dataflows.range_source import TimeRangeSource, parse_range, resolve_ranges

    start, end = parse_range(args.start, args.end)
    consumer = {str(k): v for k, v in config.kafka.consumer.items()}
    ranges = resolve_ranges(config.kafka.bootstrap, args.topic, start, end, consumer)
    bar = Progress(sum(r.size for r in ranges), "warm", force=show)
    source = TimeRangeSource(config.kafka.bootstrap, args.topic, start, end,
                             ranges=tuple(ranges), batch_size=config.bytewax.batch_size,
                             add_config=consumer, on_read=bar.advance)

    return build_flow(config, source, sinks, lambda: store, decode=activity_message_decoder(),
                      warm=True, flow_id="graphsentry_warm"), bar
