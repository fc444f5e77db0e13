"""The legacy Azure AD Graph API (graph.windows.net) as ``AzureADGraphActivityLogs`` records,
and a ROADtools ``roadrecon gather`` run that only that log shows.

Record shape (Elastic's ``aadgraphactivitylogs`` test records, see ../shared/docs/
graph-activity-logs.md §4.3): category ``AzureADGraphActivityLogs``, operation
``AAD Graph Activity``, and in ``properties`` the sibling names ``httpMethod``,
``httpStatusCode``, ``issuedAt`` (US format, ``5/7/2026 1:50:39 PM``), a *relative*
``requestUri`` (``/{tenant}/users?api-version=1.61-internal``), ``responseSizeBytes: -1``,
integer ``clientAuthMethod`` and ``durationMs``, ``actorType``, ``sessionId``.

What roadrecon requests (``roadrecon/gather.py``): phase 1 lists every object type, phase 2
walks links per object (group members and owners via ``$links``, directory role members,
service principals' ``appRoleAssignedTo``/``appRoleAssignments``, owners by ``$expand``,
role assignments per role definition, ``applicationRefs`` per app id, key credentials), at
up to 600 requests a second, with ``api-version=1.61-internal``.
"""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime
from typing import Any

from graphsentry.simulate.bench_tenant import Workforce
from graphsentry.simulate.clock import Day, Pacer
from graphsentry.simulate.records import Caller, RecordBuilder, Request, delegated, format_ticks
from graphsentry.simulate.tenant import Tenant, new_guid, opaque_token

AAD_LOG = "AzureADGraphActivityLogs"
AAD_POWERSHELL = "1b730954-1685-4b74-9bfd-dac224a7b894"  # roadrecon's default client id
AIOHTTP_UA = "Python/3.11 aiohttp/3.9.5"
API_VERSION = "1.61-internal"
PHASE_ONE = ("users", "tenantDetails", "policies", "servicePrincipals", "groups",
             "administrativeUnits", "applications", "devices", "directoryRoles",
             "roleDefinitions", "contacts", "oauth2PermissionGrants", "authorizationPolicy",
             "settings")


def us_time(ts: float) -> str:
    """``issuedAt`` as the log writes it: ``5/7/2026 1:50:39 PM``."""
    moment = datetime.fromtimestamp(int(ts), UTC)
    hour = moment.hour % 12 or 12
    half = "AM" if moment.hour < 12 else "PM"
    return (f"{moment.month}/{moment.day}/{moment.year} {hour}:{moment.minute:02d}:"
            f"{moment.second:02d} {half}")


def build_aad_record(builder: RecordBuilder, req: Request) -> dict[str, Any]:
    """One ``AzureADGraphActivityLogs`` record for ``req`` (its path is the relative URI)."""
    rng, caller, tenant_id = builder.rng, req.caller, builder.tenant.tenant_id
    request_id = new_guid(rng)
    time = format_ticks(req.ts)
    token = req.token or caller.token_at(req.ts)
    sid = base64.b64encode(rng.getrandbits(128).to_bytes(16, "big")).decode("ascii")
    delegated_call = caller.identity_type == "delegated"
    props: dict[str, Any] = {
        "__UDI_RequiredFields_RegionScope": "EU",
        "__UDI_RequiredFields_TenantId": tenant_id,
        "__UDI_RequiredFields_UniqueId": request_id,
        "actorType": "User" if delegated_call else "Application",
        "apiVersion": API_VERSION,
        "appId": caller.app_id,
        "callerIpAddress": req.ip,
        "clientAuthMethod": caller.client_auth_method,
        "deviceId": "",
        "directAccessSource": "Gateway",
        "durationMs": int(rng.lognormvariate(3.8, 0.6)),
        "env_cloud_role": "restdirectoryservice",
        "httpMethod": req.method,
        "httpStatusCode": req.status,
        "identityProvider": builder.tenant.identity_provider,
        "issuedAt": us_time(token.issued_at),
        "location": "West Europe",
        "requestId": request_id,
        "requestUri": req.path,
        "responseSizeBytes": -1,
        "roles": caller.roles,
        "scopes": caller.scopes,
        "servicePrincipalId": caller.service_principal_id or "",
        "sessionId": new_guid(rng) if delegated_call else "",
        "signInActivityId": sid,
        "tenantId": tenant_id,
        "timeGenerated": time,
        "userAgent": caller.user_agent,
        "userId": caller.user_id or "",
        "wids": caller.wids,
    }
    return {"time": time, "resourceId": builder.resource_id,
            "operationName": "AAD Graph Activity", "category": AAD_LOG, "location": "West Europe",
            "tenantId": tenant_id, "correlationId": request_id, "properties": props}


def roadrecon_caller(tenant: Tenant, index: int) -> Caller:
    return delegated(tenant.users[index], AAD_POWERSHELL, AIOHTTP_UA, "user_impersonation")


def roadrecon_gather(rng: random.Random, tenant: Tenant, wf: Workforce, day: Day
                     ) -> tuple[Caller, list[Request]]:
    """``roadrecon gather`` with a phished user's token, from her home network, 17:20."""
    index = 27
    caller = roadrecon_caller(tenant, index)
    ip = tenant.users[index].home_ip
    t = tenant.tenant_id
    pace = Pacer(rng, day.at(17.33), (0.01, 0.08))

    def get(path: str, query: str = "") -> Request:
        return Request(pace.next(), caller, ip, "GET",
                       f"/{t}/{path}?api-version={API_VERSION}{query}", 200, -1, log=AAD_LOG)

    out = [get(kind) for kind in PHASE_ONE]
    pages = max(1, len(tenant.users) // 100)
    out += [get("users", f"&$skiptoken=X'{opaque_token(rng, 20)}'") for _ in range(pages - 1)]
    for group in tenant.groups:
        out += [get(f"groups/{group}/$links/members"), get(f"groups/{group}/$links/owners")]
    for role in tenant.role_definitions[:12]:
        out.append(get(f"directoryRoles/{role}/$links/members"))
    for sp in tenant.principals.values():
        out += [get(f"servicePrincipals/{sp.sp_id}/appRoleAssignedTo"),
                get(f"servicePrincipals/{sp.sp_id}/appRoleAssignments"),
                get(f"applicationRefs/{sp.app_id}")]
    out += [get("servicePrincipals", "&$expand=owners"), get("applications", "&$expand=owners"),
            get("devices", "&$expand=registeredOwners")]
    for role in tenant.role_definitions:
        out.append(get("roleAssignments", f"&$filter=roleDefinitionId%20eq%20'{role}'"))
        out.append(get("eligibleRoleAssignments", f"&$filter=roleDefinitionId%20eq%20'{role}'"))
    out += [get("servicePrincipals", "&$select=keyCredentials,objectId"),
            get("applications", "&$select=keyCredentials,objectId")]
    return caller, out
