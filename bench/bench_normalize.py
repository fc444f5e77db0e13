"""Normalization throughput on one core: json.loads alone vs the full ingest path.

Generates deterministic, realistic storage-account lines (one Event Hub record per line, the
shape of PT1H.json: top-level envelope fields + ``properties``, ~1.7 KB each, as bytes), then
measures, each over every line:

1. ``json.loads`` (the standard library: the floor the issue compares against);
2. the ingest JSON parser alone (``jsonparse.loads``: orjson when installed);
3. parse + normalize: ``readers.parse_payload`` (what the bridge calls per message value) +
   ``normalize_record`` (validate, derive);
4. full: the same + Avro encode (``encode_activity``);
5. full + de-duplication (what ``graphsentry normalize`` and the bridge do).

Times are CPU seconds of this process (``time.process_time``, one core); each measurement runs
``--repeat`` times from cold caches and the median counts, so that other work on the machine
disturbs the figures less. Run:
``python bench/bench_normalize.py [--records 200000] [--seed 7] [--repeat 5]``. Prints records/s
and µs per record for each, the per-stage costs, the ratios, and whether the 50k records/s
target is met (it reports; it never fails).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import load_note, print_header

from graphsentry.avro import encode_activity
from graphsentry.ingest import jsonparse
from graphsentry.ingest.dedup import Deduplicator, dedup_key
from graphsentry.ingest.normalize import Reject, clear_caches, normalize_record
from graphsentry.ingest.readers import parse_payload

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


def _measure(label: str, count: int, repeat: int, run: Callable[[], int]) -> float:
    """Median CPU seconds per record over ``repeat`` cold runs; prints the figures."""
    times = []
    for _ in range(repeat):
        clear_caches()  # every run starts cold
        gc.collect()
        started = time.process_time()
        produced = run()
        times.append(time.process_time() - started)
    per_record = statistics.median(times) / count
    print(f"{label:<44} {1 / per_record:>9,.0f} records/s  {per_record * 1e6:6.2f} µs/record"
          f"  (median of {repeat}; best {count / min(times):,.0f}/s; {produced:,} out)")
    return per_record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (median)")
    args = parser.parse_args(argv)

    print_header("bench_normalize: normalization throughput on one core vs json.loads")
    lines = [line.encode() for line in synthetic_lines(args.records, args.seed)]
    size = sum(map(len, lines)) / len(lines)
    print(f"{len(lines):,} synthetic record lines, {size:,.0f} bytes each on average; "
          f"JSON parser: {jsonparse.fast_parser()}")

    def parse_with(loads: Callable[[bytes], object]) -> int:
        return sum(1 for line in lines if loads(line))

    def ingest(encode: bool, dedup: Deduplicator | None) -> int:
        out = 0
        for number, line in enumerate(lines, 1):
            for item in parse_payload(line, f"bench:{number}"):
                record = item if isinstance(item, Reject) else normalize_record(*item)
                if isinstance(record, Reject):
                    raise SystemExit(f"synthetic record rejected: {record.reason}")
                if dedup is not None and dedup.seen(dedup_key(record)):
                    continue
                out += len(encode_activity(record)) > 0 if encode else 1
        return out

    count, repeat = len(lines), args.repeat
    baseline = _measure("json.loads only", count, repeat, lambda: parse_with(json.loads))
    parsed = _measure(f"ingest parser only ({jsonparse.fast_parser()})", count, repeat,
                      lambda: parse_with(jsonparse.loads))
    normalized = _measure("parse + validate + derive", count, repeat,
                          lambda: ingest(False, None))
    full = _measure("full: parse+validate+derive+Avro encode", count, repeat,
                    lambda: ingest(True, None))
    deduped = _measure("full + de-duplication", count, repeat,
                       lambda: ingest(True, Deduplicator()))
    stages = {"parse": parsed, "normalize": normalized - parsed, "Avro encode": full - normalized,
              "de-dup": deduped - full}
    costs = ", ".join(f"{name} {cost * 1e6:.2f} µs" for name, cost in stages.items())
    print(f"per record: {costs}")
    print(f"ratio full / json.loads: {full / baseline:.2f}x; "
          f"full + de-dup / json.loads: {deduped / baseline:.2f}x")
    verdict = "meets" if 1 / full >= TARGET_PER_SECOND else "MISSES"
    print(f"full normalization {verdict} the {TARGET_PER_SECOND:,} records/s target "
          f"({1 / full:,.0f}/s)")
    print(f"at end: {load_note()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
