"""Normalization throughput on one core: json.loads alone vs the full ingest path.

Generates deterministic, realistic storage-account lines (one Event Hub record per line, the
shape of PT1H.json: top-level envelope fields + ``properties``, ~1.5 KB each), then measures:

1. ``json.loads`` of every line (the floor any parser pays);
2. full normalization: decode + validate + derive (``normalize_record``) + Avro encode;
3. the same plus de-duplication (what ``graphsentry normalize`` and the bridge do).

Times are CPU seconds of this process (``time.process_time``, one core), best of ``--repeat``
runs, so that other work on the machine disturbs the figures less. Run:
``python bench/bench_normalize.py [--records 200000] [--seed 7] [--repeat 3]``. Prints records/s
for each, the ratios, and whether the 50k records/s target is met.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graphsentry.avro import encode_activity
from graphsentry.ingest.dedup import Deduplicator, dedup_key
from graphsentry.ingest.normalize import Reject, normalize_record
from graphsentry.ingest.uri import analyze_path, analyze_uri

TARGET_PER_SECOND = 50_000
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
USER_AGENTS = (
    "python-requests/2.31.0", "azurehound/v2.1.7", "Microsoft Office/16.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.0.0 Safari/537.36 Edg/122.0.0.0", "",
)
REGIONS = ("West Europe", "UK South", "France Central", "East US", "Germany West Central")
ROLES = ("User.Read.All Directory.Read.All", "Files.Read.All Sites.Read.All",
         "Application.ReadWrite.All AppRoleAssignment.ReadWrite.All", "Mail.Read")
LIST_CALLS = ("/users?$top=999", "/groups?$top=999&$filter=securityEnabled eq true",
              "/servicePrincipals", "/applications?$top=99", "/organization", "/directoryRoles",
              "/devices?$select=id,displayName")
TOKEN_CHARS = "ABCDEFGHIJKLMNOPabcdefghijklmnop0123456789-_"
SCOPES = ("openid profile email User.Read", "Files.ReadWrite.All Sites.Read.All offline_access")


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _path(rng: random.Random, user: str) -> tuple[str, str]:
    """(method, path with query) drawn from a realistic mix of Graph calls."""
    pick = rng.random()
    if pick < 0.30:
        return "GET", rng.choice(LIST_CALLS)
    if pick < 0.50:
        return "GET", f"/users/{_guid(rng)}/memberOf"
    if pick < 0.70:
        drive = "b!" + "".join(rng.choices("abcdefghijklmnopqrstuvwxyzABCDEFGH0123456789_-", k=64))
        item = "01" + "".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", k=32))
        return "GET", f"/drives/{drive}/items/{item}/content"
    if pick < 0.80:
        return "GET", f"/users/{user}/mailFolders/Inbox/messages?$top=50&$select=subject"
    if pick < 0.88:
        return "POST", "/search/query"
    if pick < 0.94:
        return "POST", f"/applications/{_guid(rng)}/addPassword"
    return "POST", "/$batch"


def synthetic_line(rng: random.Random, index: int) -> str:
    """One storage-account style record (Event Hub element shape) as a JSON line."""
    tenant, app = _guid(rng), _guid(rng)
    app_only = rng.random() < 0.7
    principal = _guid(rng)
    request_id = _guid(rng)
    when = START + timedelta(microseconds=index * 5_000 + rng.randrange(5_000))
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"  # 7 fractional digits, as delivered
    method, path = _path(rng, principal)
    version = rng.choice(("v1.0", "beta"))
    status = rng.choice((200, 200, 200, 302, 403, 404, 429))
    ip = f"{rng.randrange(1, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"
    properties = {
        "timeGenerated": stamp, "location": rng.choice(REGIONS), "requestId": request_id,
        "operationId": request_id, "clientRequestId": _guid(rng), "apiVersion": version,
        "requestMethod": method, "responseStatusCode": status,
        "tenantId": tenant, "durationMs": rng.randrange(10_000, 2_000_000),
        "responseSizeBytes": rng.randrange(0, 50_000),
        "requestUri": f"https://graph.microsoft.com/{version}{path}",
        "signInActivityId": "".join(rng.choices(TOKEN_CHARS, k=22)),
        "ipAddress": ip, "userAgent": rng.choice(USER_AGENTS), "appId": app,
        "userId": None if app_only else principal,
        "servicePrincipalId": principal if app_only else "",
        "roles": rng.choice(ROLES) if app_only else "",
        "scopes": "" if app_only else rng.choice(SCOPES),
        "wids": "0997a1d0-0d1d-4acb-b408-d5ca73121e90", "tokenIssuedAt": stamp[:19] + "Z",
        "identityProvider": f"https://sts.windows.net/{tenant}/",
        "clientAuthMethod": "2" if app_only else "0", "atContent": "",
        "C_Idtyp": "app" if app_only else "user", "UserPrincipalObjectID": principal,
        "isReplay": False, "policyEvaluated": False, "__UDI_RequiredFields_TenantId": tenant,
    }
    record = {
        "time": stamp, "resourceId": f"/TENANTS/{tenant.upper()}/PROVIDERS/MICROSOFT.AADIAM",
        "operationName": "Microsoft Graph Activity", "operationVersion": version,
        "category": "MicrosoftGraphActivityLogs", "resultSignature": str(status),
        "durationMs": str(properties["durationMs"]), "callerIpAddress": ip,
        "correlationId": request_id, "level": "Informational", "location": properties["location"],
        "tenantId": tenant, "properties": properties,
    }
    return json.dumps(record, separators=(",", ":"))


def synthetic_lines(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [synthetic_line(rng, i) for i in range(count)]


def _rate(label: str, count: int, repeat: int, run: Callable[[], int]) -> float:
    best = float("inf")
    for _ in range(repeat):
        analyze_uri.cache_clear()  # every run starts cold
        analyze_path.cache_clear()
        gc.collect()
        started = time.process_time()
        produced = run()
        best = min(best, time.process_time() - started)
    rate = count / best
    print(f"{label:<46} {rate:>10,.0f} records/s  ({best:.2f} s CPU, {produced:,} out)")
    return rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best wins)")
    args = parser.parse_args(argv)

    lines = synthetic_lines(args.records, args.seed)
    size = sum(map(len, lines)) / len(lines)
    print(f"{len(lines):,} synthetic record lines, {size:,.0f} bytes each on average")

    def loads_only() -> int:
        loads = json.loads
        return sum(1 for line in lines if loads(line))

    def normalize_and_encode(dedup: Deduplicator | None) -> int:
        loads, out = json.loads, 0
        for number, line in enumerate(lines, 1):
            record = normalize_record(loads(line), f"bench:{number}")
            if isinstance(record, Reject):
                raise SystemExit(f"synthetic record rejected: {record.reason}")
            if dedup is None or not dedup.seen(dedup_key(record)):
                out += len(encode_activity(record)) > 0
        return out

    count, repeat = len(lines), args.repeat
    baseline = _rate("json.loads only", count, repeat, loads_only)
    full = _rate("full: parse+validate+derive+Avro encode", count, repeat,
                 lambda: normalize_and_encode(None))
    deduped = _rate("full + de-duplication", count, repeat,
                    lambda: normalize_and_encode(Deduplicator()))
    print(f"ratio json.loads / full: {baseline / full:.2f}x; "
          f"json.loads / full + de-dup: {baseline / deduped:.2f}x")
    verdict = "meets" if full >= TARGET_PER_SECOND else "MISSES"
    print(f"full normalization {verdict} the {TARGET_PER_SECOND:,} records/s target")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
