"""``graphsentry enrich``: load the ASN table and the app directory into Redis; show an app."""

from __future__ import annotations

import argparse
import sys

HELP = "load enrichment data into Redis (load-asn, load-apps) or show what it knows (show-app)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML configuration (default: $GRAPHSENTRY_CONFIG)")
    p.add_argument("--redis-url", help="override redis.url (also: $REDIS_URL)")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    asn = sub.add_parser("load-asn", help="load an ip2asn TSV (IPv4 and/or IPv6, .gz ok); "
                         "replaces the current table")
    asn.add_argument("files", nargs="+", metavar="FILE")
    apps = sub.add_parser("load-apps", help="load applications/servicePrincipals (Graph JSON "
                          "export or CSV: appId, displayName, appOwnerOrganizationId, "
                          "servicePrincipalType)")
    apps.add_argument("file", metavar="FILE")
    show = sub.add_parser("show-app", help="print what Redis knows about one app id")
    show.add_argument("app_id", metavar="APP_ID")


def run(args: argparse.Namespace) -> int:
    import json

    from graphsentry.config import load_config
    from graphsentry.enrichment.apps import load_apps
    from graphsentry.enrichment.asn import load_asn
    from graphsentry.enrichment.redis_store import RedisStore
    from graphsentry.errors import GraphsentryError, redact

    config = load_config(args.config)
    url = args.redis_url or config.redis.url
    if not url:
        raise GraphsentryError("no Redis configured (redis.url is null); pass --redis-url")
    store = RedisStore.from_config(config.replace("redis", url=url).redis)
    where = redact(url)  # never print the password
    try:
        store.check()
        if args.action == "load-asn":
            print(load_asn(args.files, store).summary(f"asn -> {where}"), file=sys.stderr)
        elif args.action == "load-apps":
            print(load_apps(args.file, store).summary(f"apps -> {where}"), file=sys.stderr)
        else:
            fields = store.app_fields(args.app_id.lower())
            if not fields:
                print(f"app {args.app_id}: unknown", file=sys.stderr)
                return 1
            print(json.dumps({"app_id": args.app_id.lower(), **fields}, indent=2))
    finally:
        store.close()
    return 0
