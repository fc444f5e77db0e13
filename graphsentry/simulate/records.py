"""Callers, requests and their rendering as raw Graph activity records (Event Hub shape).

A generator describes *what happened* as :class:`Request` values; :class:`RecordBuilder` turns
each into the record Entra's diagnostic setting would deliver, quirks included: string
``durationMs``/``resultSignature``/``clientAuthMethod`` at the top level, space-separated claims,
and the three forms of "empty" (absent key, ``null``, ``""``) for the unused identity fields.
"""

from __future__ import annotations

import base64
import hashlib
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from graphsentry.simulate.tenant import (
    GLOBAL_ADMIN_WID,
    MEMBER_WID,
    ServicePrincipal,
    Tenant,
    User,
    new_guid,
)

GRAPH = "https://graph.microsoft.com"
GRAPH_LOG = "MicrosoftGraphActivityLogs"
TICKS_PER_SECOND = 10_000_000
ABSENT = object()
EMPTY_FORMS: tuple[object, ...] = (ABSENT, None, "")


@dataclass(frozen=True)
class Token:
    issued_at: float
    sign_in_activity_id: str


@dataclass(frozen=True)
class Caller:
    """Who calls Graph: an app, acting either for a user (delegated) or as itself (app-only)."""

    app_id: str
    user_agent: str
    client_auth_method: int
    token_lifetime: float
    user_id: str | None = None
    service_principal_id: str | None = None
    roles: str = ""
    scopes: str = ""
    wids: str = ""

    @property
    def identity_type(self) -> str:
        return "delegated" if self.user_id else "app_only"

    @property
    def principal_id(self) -> str:
        return self.user_id or self.service_principal_id or f"app:{self.app_id}"

    def token_at(self, ts: float) -> Token:
        """The token this caller holds at ``ts``: renewed every ``token_lifetime`` seconds at a
        phase of its own, with a sign-in id that is stable for the token's lifetime."""
        key = f"{self.app_id}|{self.principal_id}"
        digest = hashlib.sha256(key.encode()).digest()
        phase = int.from_bytes(digest[:4], "big") % int(self.token_lifetime)
        index = int((ts - phase) // self.token_lifetime)
        issued = index * self.token_lifetime + phase
        sid = hashlib.sha256(f"{key}|{index}".encode()).digest()[:16]
        return Token(float(int(issued)), base64.urlsafe_b64encode(sid).decode().rstrip("="))


def delegated(user: User, app_id: str, user_agent: str, scopes: str, *,
              admin: bool = False) -> Caller:
    wids = f"{GLOBAL_ADMIN_WID} {MEMBER_WID}" if admin else MEMBER_WID
    return Caller(app_id=app_id, user_agent=user_agent, client_auth_method=0,
                  token_lifetime=4500.0, user_id=user.id, scopes=scopes, wids=wids)


def app_only(sp: ServicePrincipal, *, managed_identity: bool = False) -> Caller:
    # Managed identity tokens are cached for 24 h; daemons with a certificate renew hourly.
    return Caller(app_id=sp.app_id, user_agent=sp.user_agent, client_auth_method=2,
                  token_lifetime=86400.0 if managed_identity else 3600.0,
                  service_principal_id=sp.sp_id, roles=sp.roles, wids=MEMBER_WID)


@dataclass
class Request:
    """One Graph request as a generator describes it (``path`` starts with /v1.0 or /beta)."""

    ts: float
    caller: Caller
    ip: str
    method: str
    path: str
    status: int = 200
    size: int = 0
    operation_id: str | None = None
    token: Token | None = None
    log: str = GRAPH_LOG
    """``MicrosoftGraphActivityLogs``, or ``AzureADGraphActivityLogs`` (path relative to
    graph.windows.net, rendered by :mod:`graphsentry.simulate.aadgraph`)."""


def format_ticks(ts: float) -> str:
    """ISO-8601 UTC with seven fractional digits, as Entra writes ``timeGenerated``."""
    ticks = round(ts * TICKS_PER_SECOND)
    seconds, fraction = divmod(ticks, TICKS_PER_SECOND)
    base = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{fraction:07d}Z"


def _put_claim(props: dict[str, Any], key: str, value: str, rng: random.Random) -> None:
    """Set a claim, or one of the three forms of empty when the caller has none."""
    if value:
        props[key] = value
        return
    form = rng.choice(EMPTY_FORMS)
    if form is not ABSENT:
        props[key] = form


class RecordBuilder:
    """Renders requests as raw records; ids and durations come from ``rng``."""

    def __init__(self, tenant: Tenant, rng: random.Random) -> None:
        self.tenant = tenant
        self.rng = rng
        self.resource_id = f"/TENANTS/{tenant.tenant_id.upper()}/PROVIDERS/MICROSOFT.AADIAM"

    def _duration(self, status: int) -> int:
        base = self.rng.lognormvariate(12.2, 0.7)  # ~200k, the magnitudes real records show
        return int(base / 4) if status in (302, 403, 404, 429) else int(base)

    def build(self, req: Request) -> dict[str, Any]:
        if req.log != GRAPH_LOG:
            from graphsentry.simulate.aadgraph import build_aad_record

            return build_aad_record(self, req)
        rng = self.rng
        caller = req.caller
        request_id = new_guid(rng)
        operation_id = req.operation_id or request_id
        client_request_id = operation_id if rng.random() < 0.3 else new_guid(rng)
        version = "beta" if req.path.startswith("/beta") else "v1.0"
        location = "West Europe" if rng.random() < 0.85 else "North Europe"
        time = format_ticks(req.ts)
        duration = self._duration(req.status)
        token = req.token or caller.token_at(req.ts)
        props: dict[str, Any] = {
            "timeGenerated": time,
            "requestId": request_id,
            "operationId": operation_id,
            "clientRequestId": client_request_id,
            "apiVersion": version,
            "requestMethod": req.method,
            "requestUri": GRAPH + req.path,
            "responseStatusCode": req.status,
            "responseSizeBytes": req.size,
            "durationMs": duration,
            "tenantId": self.tenant.tenant_id,
            "ipAddress": req.ip,
            "userAgent": caller.user_agent if rng.random() < 0.9 else "",
            "location": location,
            "appId": caller.app_id,
        }
        _put_claim(props, "userId", caller.user_id or "", rng)
        _put_claim(props, "servicePrincipalId", caller.service_principal_id or "", rng)
        props["UserPrincipalObjectID"] = caller.principal_id
        _put_claim(props, "roles", caller.roles, rng)
        _put_claim(props, "scopes", caller.scopes, rng)
        props["wids"] = caller.wids
        props["tokenIssuedAt"] = format_ticks(token.issued_at)
        props["signInActivityId"] = token.sign_in_activity_id
        props["identityProvider"] = self.tenant.identity_provider
        props["clientAuthMethod"] = str(caller.client_auth_method)
        props["C_Idtyp"] = "user" if caller.identity_type == "delegated" else "app"
        props["atContent"] = ""
        return {
            "time": time,
            "resourceId": self.resource_id,
            "operationName": "Microsoft Graph Activity",
            "operationVersion": version,
            "category": "MicrosoftGraphActivityLogs",
            "resultSignature": str(req.status),
            "durationMs": str(duration),
            "callerIpAddress": req.ip,
            "correlationId": request_id,
            "level": "Informational",
            "location": location,
            "tenantId": self.tenant.tenant_id,
            "properties": props,
        }
