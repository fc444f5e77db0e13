"""``graphsentry warm``: learn principals' profiles from history, so a new deployment need not
wait days.

Runs the detection dataflow over archived files (any ingest format) or a time range of the
activity topic, then stores every principal's profile in Redis as a version keyed by its
newest event (``graphsentry.enrichment.store``). The live deployment reads a principal's newest
version older than its first live event, so warm a range that ends where live detection
starts. Signals and alerts of the history are counted, not published.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any

from graphsentry.commands._topic_range import add_range_arguments, check_range, with_bootstrap
from graphsentry.errors import GraphsentryError

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


def _sinks() -> Any:
    from dataflows.detect import CallbackSink, DetectSinks

    return DetectSinks(alerts=CallbackSink(lambda _a: None))


def run(args: argparse.Namespace) -> int:
    from bytewax.testing import run_main

    from dataflows.detect import build_flow, records_source
    from graphsentry.config import load_config
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
    if args.topic:
        built = _topic_flow(config, args, store)
    else:
        from graphsentry.ingest import iter_records

        records = iter_records(args.paths)
        built = build_flow(config, records_source(records, config.bytewax.batch_size),
                           _sinks(), lambda: store, warm=True, flow_id="graphsentry_warm")
    run_main(built.flow)  # type: ignore[no-untyped-call]
    c = built.engine.counters
    print(f"graphsentry warm: {c.events} events, {built.counters.profiles_saved} profiles "
          f"stored in Redis ({c.late} late, {c.duplicates} duplicates, "
          f"{sum(c.signals.values())} signals and {sum(c.alerts.values())} alerts not "
          f"published) in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return 0


def _topic_flow(config: Config, args: argparse.Namespace, store: EnrichmentStore) -> Any:
    from dataflows import kafka_io
    from dataflows.detect import build_flow
    from dataflows.range_source import TimeRangeSource, parse_range, resolve_ranges
    from graphsentry import avro
    from graphsentry.progress import Progress

    start, end = parse_range(args.start, args.end)
    consumer = {str(k): v for k, v in config.kafka.consumer.items()}
    ranges = resolve_ranges(config.kafka.bootstrap, args.topic, start, end, consumer)
    bar = Progress(sum(r.size for r in ranges), "warm", force=args.progress or None)
    source = TimeRangeSource(config.kafka.bootstrap, args.topic, start, end,
                             ranges=tuple(ranges), batch_size=config.bytewax.batch_size,
                             add_config=consumer, on_read=bar.advance)

    def decode(item: Any) -> dict[str, Any]:
        return kafka_io.decode_message(item, avro.decode_activity)

    return build_flow(config, source, _sinks(), lambda: store, decode=decode, warm=True,
                      flow_id="graphsentry_warm")
