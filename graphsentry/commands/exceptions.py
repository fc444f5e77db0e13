"""``graphsentry exceptions add|list|remove``: exceptions that expire, stored in Redis.

An exception covers the signals in its scope (any of detector, app, principal, network/CIDR,
ASN, resource template) whose windows start before its expiry (event time): they are kept and
marked, add no risk, and alerts resting only on them are ``suppressed``
(``graphsentry.alerting.exceptions``). ``remove`` keeps the record (who removed it, when) for
the audit trail. Exceptions can also be given in the configuration (``alerts.exceptions``);
running detection reads Redis again every minute.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from typing import Any

from graphsentry.errors import GraphsentryError

HELP = "manage exceptions (scoped, expiring alert suppressions) stored in Redis"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML configuration (default: $GRAPHSENTRY_CONFIG or "
                   "built-in defaults): where Redis is")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="add an exception")
    add.add_argument("--reason", required=True, help="why (a ticket, a change, a decision)")
    add.add_argument("--author", required=True, help="who decided it")
    add.add_argument("--expires", help="end of validity in event time: ISO-8601 time or a "
                     "duration from now (30d, 12h); default: never (a permanent allow-list)")
    add.add_argument("--starts", help="start of validity in event time (default: always)")
    add.add_argument("--detector", help="detector id")
    add.add_argument("--app-id", help="application (client) id")
    add.add_argument("--principal-id", help="principal: user id or service principal id")
    add.add_argument("--network", help="CIDR every source IP of a signal must be in")
    add.add_argument("--asn", type=int, help="autonomous system every event must come from")
    add.add_argument("--template", help="resource template glob, e.g. '/reports/*'")
    listing = sub.add_parser("list", help="list exceptions (active and future by default)")
    listing.add_argument("--all", action="store_true",
                         help="include expired and removed ones")
    listing.add_argument("--json", action="store_true", help="JSON lines")
    remove = sub.add_parser("remove", help="remove an exception (kept for the audit trail)")
    remove.add_argument("id", help="exception id (exc-...)")
    remove.add_argument("--author", required=True, help="who removes it")


def parse_time(text: str, now: float) -> float:
    """An ISO-8601 time or a duration from ``now`` (``30d``, ``12h``, ``90m``) → epoch s."""
    match = _DURATION.match(text.strip())
    if match:
        return now + float(match.group(1)) * _UNITS[match.group(2)]
    from graphsentry.ingest.timeparse import parse_timestamp

    try:
        return parse_timestamp(text).timestamp()
    except (ValueError, TypeError):
        raise GraphsentryError(f"not a time or duration: {text!r} (ISO-8601, or e.g. 30d, "
                               f"12h)") from None


def _store(args: argparse.Namespace) -> Any:
    from graphsentry.config import load_config
    from graphsentry.enrichment.redis_store import ExceptionStore, RedisStore

    config = load_config(args.config)
    if not config.redis.url:
        raise GraphsentryError("exceptions are stored in Redis, and redis.url is null; give "
                               "them in the configuration (alerts.exceptions) instead")
    store = RedisStore.from_config(config.redis)
    store.check()
    return ExceptionStore(store)


def _describe(item: Any, now: float) -> str:
    from graphsentry.alerting.exceptions import SCOPE_FIELDS
    from graphsentry.alerts import iso, to_datetime

    scope = ", ".join(f"{name}={getattr(item, name)}" for name in SCOPE_FIELDS
                      if getattr(item, name) is not None)
    expires = "never" if item.expires is None else iso(to_datetime(item.expires))
    starts = "" if item.starts is None else f"starts {iso(to_datetime(item.starts))}  "
    state = ("removed" if item.removed is not None
             else "expired" if item.expires is not None and item.expires <= now else "active")
    removed = ("" if item.removed is None else
               f"; removed by {item.removed_by}, {iso(to_datetime(item.removed))[:19]}Z")
    return (f"{item.id}  {state:7}  {starts}expires {expires}  {scope}  — {item.reason} "
            f"({item.author}, {iso(to_datetime(item.created))[:19]}Z{removed})")


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from graphsentry.alerting.exceptions import new_exception

    store = _store(args)
    now = time.time()
    if args.action == "add":
        scope = {k: v for k, v in (("detector", args.detector), ("app_id", args.app_id),
                                   ("principal_id", args.principal_id),
                                   ("network", args.network), ("asn", args.asn),
                                   ("template", args.template)) if v is not None}
        if args.detector:
            from detectors.catalog import DETECTOR_IDS

            if args.detector not in DETECTOR_IDS:
                raise GraphsentryError(f"unknown detector {args.detector!r} (known: "
                                       f"{', '.join(DETECTOR_IDS)})")
        try:
            item = new_exception(
                reason=args.reason, author=args.author, now=now,
                expires=parse_time(args.expires, now) if args.expires else None,
                starts=parse_time(args.starts, now) if args.starts else None, **scope)
        except ValueError as exc:
            raise GraphsentryError(str(exc)) from None
        store.put(item)
        print(_describe(item, now))
        return 0
    items = store.load()
    if args.action == "list":
        shown = [i for i in items if args.all or (
            i.removed is None and (i.expires is None or i.expires > now))]
        for item in shown:
            print(json.dumps(item.to_dict(), sort_keys=True) if args.json
                  else _describe(item, now))
        if not shown and not args.json:
            print("no exceptions", file=sys.stderr)
        return 0
    found = next((i for i in items if i.id == args.id), None)
    if found is None:
        raise GraphsentryError(f"no exception {args.id!r}")
    if found.removed is not None:
        raise GraphsentryError(f"exception {args.id} was removed already "
                               f"(by {found.removed_by})")
    removed = replace(found, removed=now, removed_by=args.author)
    store.put(removed)
    print(_describe(removed, now))
    return 0
