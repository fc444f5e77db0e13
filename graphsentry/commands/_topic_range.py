"""The ``--from/--to/--bootstrap`` options shared by the commands that read a topic's time range
(replay, backtest, hunt), and what they all check and apply."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from graphsentry.errors import GraphsentryError

if TYPE_CHECKING:
    from graphsentry.config import Config


def add_range_arguments(p: argparse.ArgumentParser, *, required: bool = False) -> None:
    """Add ``--from``, ``--to`` (times of the range) and ``--bootstrap``."""
    when = "" if required else "with --topic: "
    p.add_argument("--from", dest="start", required=required, metavar="TIME",
                   help=f"{when}range start, inclusive: ISO-8601 (2026-11-03T08:00:00Z; no zone "
                   "= UTC) or relative to now (--from=-2h; also -30m, -1d)")
    p.add_argument("--to", dest="end", required=required, metavar="TIME",
                   help=f"{when}range end, exclusive (same formats)")
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (default: the config's)")


def check_range(args: argparse.Namespace) -> None:
    """A topic needs both ends of its range; files take no range."""
    if args.topic and not (args.start and args.end):
        raise GraphsentryError("--topic needs --from and --to")
    if not args.topic and (args.start or args.end):
        raise GraphsentryError("--from/--to apply to --topic only")


def with_bootstrap(config: Config, args: argparse.Namespace) -> Config:
    """``config`` with ``--bootstrap`` applied, when given (also for ``warm`` and
    ``simulate --kafka-topic``)."""
    return config.replace("kafka", bootstrap=args.bootstrap) if args.bootstrap else config
