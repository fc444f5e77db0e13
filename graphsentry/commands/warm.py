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
    from graphsentry.config import load_config
    from graphsentry.enrichment.redis_store import RedisStore
    from graphsentry.ingest.reject import Reject

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
    rejects: Counter[str] = Counter()

    def on_reject(rej: Any) -> None:  # an ingest Reject, or a reject dict of the flow
        body = rej.to_json() if isinstance(rej, Reject) else rej
        rejects[str(body["reason"]).split(":", 1)[0]] += 1

    if args.topic:
        built, bar = _topic_flow(config, args, store, show, _sinks(on_reject))
    else:
        from graphsentry.ingest import iter_records
        from graphsentry.ingest.readers import check_paths

        check_paths(args.paths)
        bar = Progress(None, "warm: records read", force=show)
        records = _counted(iter_records(args.paths, on_reject=on_reject), bar.advance)
        built = build_flow(config, records_source(records, config.bytewax.batch_size),
                           _sinks(on_reject), lambda: store, warm=True,
                           flow_id="graphsentry_warm")
    with bar:
        run_in_process(built.flow, {})
    c = built.engine.counters
    print(f"graphsentry warm: {c.events} events, {built.counters.profiles_saved} profiles "
          f"stored in Redis ({c.late} late, {c.duplicates} duplicates, "
          f"{sum(rejects.values())} rejects, {sum(c.signals.values())} signals and "
          f"{sum(c.alerts.values())} alerts not published) in "
          f"{time.perf_counter() - started:.1f}s", file=sys.stderr)
    if rejects:
        print("rejects: " + ", ".join(f"{r} {n}" for r, n in rejects.most_common()),
              file=sys.stderr)
    return 0


def _counted(items: Iterable[Any], advance: Callable[[int], None]) -> Iterator[Any]:
    for item in items:
        advance(1)
        yield item


def _topic_flow(config: Config, args: argparse.Namespace, store: EnrichmentStore,
                show: bool | None, sinks: Any) -> tuple[Any, Progress]:
    """The flow over the topic range, and its progress line (messages read / in range)."""
    from dataflows import kafka_io
    from dataflows.detect import build_flow
    from dataflows.range_source import TimeRangeSource, parse_range, resolve_ranges
    from graphsentry import avro

    start, end = parse_range(args.start, args.end)
    consumer = {str(k): v for k, v in config.kafka.consumer.items()}
    ranges = resolve_ranges(config.kafka.bootstrap, args.topic, start, end, consumer)
    bar = Progress(sum(r.size for r in ranges), "warm", force=show)
    source = TimeRangeSource(config.kafka.bootstrap, args.topic, start, end,
                             ranges=tuple(ranges), batch_size=config.bytewax.batch_size,
                             add_config=consumer, on_read=bar.advance)

    def decode(item: Any) -> dict[str, Any]:
        return kafka_io.decode_message(item, avro.decode_activity)

    return build_flow(config, source, sinks, lambda: store, decode=decode, warm=True,
                      flow_id="graphsentry_warm"), bar
