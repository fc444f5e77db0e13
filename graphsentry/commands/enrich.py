"""``graphsentry enrich``: load the ASN table and the app directory into Redis; show an app."""

from __future__ import annotations

import argparse
import sys

HELP = ("load enrichment data into Redis (load-asn, load-apps), show what it knows (show-app), "
        "refresh the shipped Microsoft snapshot (refresh-msinfo)")


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
    show = sub.add_parser("show-app", help="print what detection knows about one app id: its "
                          "app-directory entry in Redis, else the shipped Microsoft first-party "
                          "snapshot's (JSON with its source); exit 1 when neither knows it")
    show.add_argument("app_id", metavar="APP_ID")
    msinfo = sub.add_parser(
        "refresh-msinfo", help="refresh the shipped Microsoft first-party app ids and Graph "
        "permissions from merill/microsoft-info (MIT): its GitHub files, or a local copy")
    msinfo.add_argument("--from", dest="source", metavar="DIR_OR_URL", default=None,
                        help="a directory holding the upstream CSVs and LICENSE, or a base URL "
                        "(default: https://raw.githubusercontent.com/merill/microsoft-info/main)")
    msinfo.add_argument("--output", metavar="DIR", default=None,
                        help="write here instead of the package's detectors/data/microsoft_info")
    msinfo.add_argument("--force", action="store_true",
                        help="accept a snapshot under half the size of the current one")


def run(args: argparse.Namespace) -> int:
    import json

    from graphsentry.config import load_config
    from graphsentry.enrichment.apps import first_party_app, load_apps
    from graphsentry.enrichment.asn import load_asn
    from graphsentry.enrichment.redis_store import RedisStore, app_to_hash
    from graphsentry.errors import GraphsentryError, redact

    if args.action == "refresh-msinfo":  # local files only: no configuration, no Redis
        from pathlib import Path

        from graphsentry.enrichment import msinfo

        msinfo.refresh(args.source or msinfo.UPSTREAM_BASE,
                       Path(args.output) if args.output else None, force=args.force)
        return 0
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
            app_id = args.app_id.lower()
            fields = store.app_fields(app_id)
            source = "app directory (Redis)"
            if not fields:  # what detection falls back to: the shipped Microsoft snapshot
                info = first_party_app(app_id)
                if info is None:
                    print(f"app {args.app_id}: unknown (not in the app directory nor in the "
                          "Microsoft first-party snapshot)", file=sys.stderr)
                    return 1
                fields, source = app_to_hash(info), "Microsoft first-party snapshot"
            print(json.dumps({"app_id": app_id, "source": source, **fields}, indent=2))
    finally:
        store.close()
    return 0
