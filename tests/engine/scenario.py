"""A small labelled workload for engine, flow and Kafka tests: one managed identity walks the
attack chain (directory discovery → mass downloads → addPassword on another app) among benign
principals that read a little, steadily. Records use the normalized schema's field names."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from schemas import field_names

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
TENANT = "11111111-1111-1111-1111-111111111111"
APP = "22222222-2222-2222-2222-222222222222"
ATTACKER = "33333333-3333-3333-3333-333333333333"
VICTIM_APP = "55555555-5555-5555-5555-555555555555"
BENIGN_APPS = ("66666666-6666-6666-6666-666666666661", "66666666-6666-6666-6666-666666666662")
GRAPH = "https://graph.microsoft.com/v1.0"
DIRECTORY = ("users", "groups", "applications", "servicePrincipals", "directoryRoles",
             "devices", "domains", "organization")
FIELDS = field_names("graph_activity")


def record(ts: float, request_id: str, principal: str, *, app: str = APP, method: str = "GET",
           path: str = "/users", template: str | None = None, family: str = "users",
           category: str = "directory", status: int = 200, ip: str = "203.0.113.10",
           **extra: Any) -> dict[str, Any]:
    rec: dict[str, Any] = dict.fromkeys(FIELDS)
    rec.update(
        time_generated=datetime.fromtimestamp(ts, UTC), request_id=request_id,
        request_method=method, request_uri=GRAPH + path, response_status_code=status,
        response_size_bytes=1000, tenant_id=TENANT, ip_address=ip,
        user_agent="azure-sdk-for-python/1.0", app_id=app, service_principal_id=principal,
        identity_type="app_only", principal_id=principal, resource_template=template or path,
        resource_family=family, resource_category=category, is_write=method != "GET",
        is_download=False, has_search=False, has_filter=False,
    )
    rec.update(extra)
    return rec


def attack(t0: float = T0, principal: str = ATTACKER) -> list[dict[str, Any]]:
    """Discovery at t0, downloads 30 min later, a credential on another app 60 min later."""
    out = [record(t0 + i * 2, f"atk-dir-{i}", principal, path=f"/{fam}", family=fam)
           for i, fam in enumerate(DIRECTORY * 5)]
    for i in range(40):
        drive, item = f"b!drive{i % 5}", f"item{i}"
        path = f"/drives/{drive}/items/{item}/content"
        out.append(record(t0 + 1800 + i * 3, f"atk-dl-{i}", principal, path=path,
                          template="/drives/{id}/items/{id}/content", family="onedrive",
                          category="files", status=302, is_download=True,
                          target_drive=drive, target_item=item))
    out.append(record(t0 + 3600, "atk-cred", principal, method="POST",
                      path=f"/applications/{VICTIM_APP}/addPassword",
                      template="/applications/{id}/addPassword", family="applications",
                      target_application=VICTIM_APP))
    return out


def benign(t0: float = T0, hours: float = 3.0, principals: int = 6) -> list[dict[str, Any]]:
    """Each principal reads one family every five minutes."""
    out = []
    for p in range(principals):
        principal = f"77777777-7777-7777-7777-{p:012d}"
        app = BENIGN_APPS[p % len(BENIGN_APPS)]
        for i in range(int(hours * 12)):
            out.append(record(t0 + i * 300 + p, f"ben-{p}-{i}", principal, app=app,
                              ip=f"198.51.100.{p + 1}"))
    return out


def workload(t0: float = T0) -> list[dict[str, Any]]:
    return sorted(attack(t0) + benign(t0), key=lambda r: (r["time_generated"], r["request_id"]))


def shuffled_within(records: list[dict[str, Any]], seconds: float,
                    seed: int = 1) -> list[dict[str, Any]]:
    """Arrival order perturbed: each record delayed by up to ``seconds`` (so no record arrives
    more than ``seconds`` after a newer one)."""
    rng = random.Random(seed)
    delayed = [(r["time_generated"].timestamp() + rng.uniform(0, seconds), i, r)
               for i, r in enumerate(records)]
    return [r for _, _, r in sorted(delayed)]
