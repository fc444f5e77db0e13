"""``graphsentry hunt``: ad-hoc aggregations over activity for threat hunting.

``origins`` (where each app calls from), ``denied`` (what each app is refused), ``changes``
(what each app wrote). Input is files in any delivery shape or a time range of the normalized
topic; output an aligned table, CSV or JSON lines (``graphsentry/hunt/``). Every row names its
application: ``app_name`` next to ``app_id``, resolved as detection and ``enrich show-app``
resolve it (the app directory in Redis, else the shipped Microsoft first-party snapshot).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from graphsentry.commands._output import check_writable
from graphsentry.commands._topic_range import add_range_arguments, check_range, with_bootstrap
from graphsentry.errors import GraphsentryError

if TYPE_CHECKING:
    from graphsentry.config import Config
    from graphsentry.enrichment import EnrichmentStore

HELP = "hunt over activity: origins (networks per app), denied requests, successful changes"
HUNTS = ("origins", "denied", "changes")
NAME_COLUMN = "app_name"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("hunt", choices=HUNTS, help="origins | denied | changes")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="raw or normalized activity files ('-' for stdin)")
    p.add_argument("--topic", help="read the normalized topic instead (with --from/--to)")
    add_range_arguments(p)
    p.add_argument("--config", help="YAML configuration (default: $GRAPHSENTRY_CONFIG or "
                   "built-in defaults): Kafka, and the Redis app directory that names apps "
                   "(redis.url null: the Microsoft first-party snapshot alone)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table",
                   help="table (default), csv, or json (one object per line)")
    p.add_argument("--out", default="-", help="output file (default stdout)")
    p.add_argument("--app", metavar="APP_ID", help="only this application")
    p.add_argument("--top", type=int, metavar="N", help="at most N rows per application")
    asn = p.add_mutually_exclusive_group()
    asn.add_argument("--asn-table", nargs="+", metavar="FILE",
                     help="origins: ASNs from ip2asn TSV file(s)")
    asn.add_argument("--asn-store", action="store_true",
                     help="origins: ASNs from the configured enrichment store (Redis)")


def _file_records(paths: list[str]) -> Iterator[dict[str, Any]]:
    from graphsentry.ingest import iter_records

    rejects = [0]

    def count(_reject: Any) -> None:
        rejects[0] += 1

    yield from iter_records(paths, on_reject=count)
    if rejects[0]:
        print(f"graphsentry hunt: {rejects[0]} input record(s) rejected", file=sys.stderr)


def _topic_records(args: argparse.Namespace, config: Config) -> Iterator[dict[str, Any]]:
    from dataflows.range_source import parse_range, read_range
    from graphsentry.avro import decode_activity

    start, end = parse_range(args.start, args.end)
    bad = 0
    for message in read_range(config.kafka.bootstrap, args.topic, start, end,
                              add_config={str(k): v for k, v in config.kafka.consumer.items()}):
        try:
            yield decode_activity(message.value or b"")
        except Exception:  # a malformed payload is skipped and counted, never a crash
            bad += 1
    if bad:
        print(f"graphsentry hunt: {bad} message(s) could not be decoded", file=sys.stderr)


def _store(config: Config, *, required: bool) -> EnrichmentStore:
    """The configured enrichment store (Redis when ``redis.url`` is set), checked once. When
    Redis cannot be used, ``required`` (``--asn-store``) makes that an error; otherwise hunt
    goes on with an in-process store, which names apps from the shipped Microsoft first-party
    snapshot only, and says so on stderr."""
    from graphsentry.enrichment import MemoryStore, store_from_config
    from graphsentry.enrichment.redis_store import RedisStore

    store = store_from_config(config)
    if not isinstance(store, RedisStore):
        return store
    try:
        problem = store.probe()
    except GraphsentryError as exc:  # a configuration problem (password, database, TLS)
        problem = str(exc)
    if problem is None:
        return store
    store.close()
    if required:
        raise GraphsentryError(f"--asn-store: {problem}")
    print(f"graphsentry hunt: app names from the Microsoft first-party snapshot only, not the "
          f"app directory ({problem})", file=sys.stderr)
    return MemoryStore()


def app_names(store: EnrichmentStore, app_ids: Iterable[str]) -> dict[str, str]:
    """``app_id`` → display name, for the ids ``store`` names (others are left out).

    One ``store.lookup`` for all of them: what detection enriches events with, the app
    directory's entry first, else the shipped Microsoft first-party snapshot's (the resolution
    ``graphsentry enrich show-app`` prints). Ids match in any case. When the store stops
    answering half-way, the snapshot alone answers (a warning on stderr)."""
    from graphsentry.enrichment import MemoryStore

    wanted = {app_id: app_id.strip().lower() for app_id in app_ids}
    found = store.lookup(set(wanted.values()), [], {})
    if not found.available:
        print("graphsentry hunt: the app directory stopped answering; app names from the "
              "Microsoft first-party snapshot only", file=sys.stderr)
        found = MemoryStore().lookup(set(wanted.values()), [], {})
    names = {}
    for app_id, key in wanted.items():
        info = found.apps.get(key)
        if info is not None and info.display_name:
            names[app_id] = info.display_name
    return names


def with_app_names(columns: Sequence[str], rows: list[dict[str, Any]],
                   names: dict[str, str]) -> tuple[tuple[str, ...], list[dict[str, Any]]]:
    """``columns`` with ``app_name`` right after ``app_id``, and each row with its app's name
    from ``names`` (None, shown as ``-``, for an app nobody names: its id still identifies
    it)."""
    at = list(columns).index("app_id") + 1
    named = (*columns[:at], NAME_COLUMN, *columns[at:])
    return named, [{**row, NAME_COLUMN: names.get(row["app_id"])} for row in rows]


def _asn_lookup(args: argparse.Namespace, store: EnrichmentStore
                ) -> Callable[[str], tuple[int | None, str | None]] | None:
    if args.asn_table:
        from graphsentry.enrichment import MemoryStore
        from graphsentry.enrichment.asn import load_asn

        store = MemoryStore()
        report = load_asn(args.asn_table, store)
        print(f"graphsentry hunt: {report.summary('ASN ranges')}", file=sys.stderr)
    elif not args.asn_store:
        return None

    def lookup(ip: str) -> tuple[int | None, str | None]:
        found = store.lookup([], [ip], {}).asns.get(ip)
        return (found[0], found[1]) if found else (None, None)

    return lookup


def run(args: argparse.Namespace) -> int:
    from graphsentry.config import load_config
    from graphsentry.hunt import changes, denied, origins
    from graphsentry.hunt.tables import open_output, write_rows

    if bool(args.paths) == bool(args.topic):
        raise GraphsentryError("give input files or --topic with --from/--to (not both)")
    check_range(args)
    check_writable(args.out, "--out")
    if args.top is not None and args.top < 1:
        raise GraphsentryError(f"--top must be at least 1, got {args.top}")
    if (args.asn_table or args.asn_store) and args.hunt != "origins":
        raise GraphsentryError("--asn-table/--asn-store apply to origins only")
    config = with_bootstrap(load_config(args.config), args)
    store = _store(config, required=args.asn_store)
    try:
        records = _topic_records(args, config) if args.topic else _file_records(args.paths)
        columns: tuple[str, ...]
        if args.hunt == "origins":
            columns = origins.COLUMNS
            rows = origins.hunt_origins(records, app_id=args.app, top=args.top,
                                        asn_lookup=_asn_lookup(args, store))
        elif args.hunt == "denied":
            columns = denied.COLUMNS
            rows = denied.hunt_denied(records, app_id=args.app, top=args.top)
        else:
            columns = changes.COLUMNS
            rows = changes.hunt_changes(records, app_id=args.app, top=args.top)
        columns, rows = with_app_names(columns, rows,
                                       app_names(store, {row["app_id"] for row in rows}))
    finally:
        store.close()
    with open_output(args.out) as out:
        write_rows(columns, rows, args.format, out)
    print(f"graphsentry hunt {args.hunt}: {len(rows)} row(s)", file=sys.stderr)
    return 0
