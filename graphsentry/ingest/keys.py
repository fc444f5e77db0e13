"""Key spellings: one canonical name per input key that normalization reads.

Graph activity records mostly use camelCase, but ``UserPrincipalObjectID``, ``C_Idtyp``,
``C_DeviceId``, ``c_Sid``, ``Level`` and Log Analytics' and Defender's PascalCase columns occur
too: keys match case-insensitively. Records whose keys are all spelled as Event Hub delivers
them (the common case) skip the per-key folding entirely.
"""

from __future__ import annotations

from typing import Any

# Canonical (Event Hub) spelling of every key that normalization reads.
READ_KEYS = (
    "properties", "category", "timeGenerated", "time", "requestId", "operationId",
    "clientRequestId", "apiVersion", "operationVersion", "requestMethod", "requestUri",
    "responseStatusCode", "resultSignature", "responseSizeBytes", "durationMs", "tenantId",
    "aadTenantId", "ipAddress", "callerIpAddress", "userAgent", "location", "appId", "userId",
    "servicePrincipalId", "roles", "scopes", "wids", "tokenIssuedAt", "signInActivityId",
    "identityProvider", "clientAuthMethod", "deviceId", "C_DeviceId", "sessionId", "c_Sid",
    "uniqueTokenId", "C_Idtyp", "UserPrincipalObjectID",
    # Log Analytics only: their presence marks a row whose TenantId is the workspace.
    "sourceSystem", "_BilledSize", "_IsBillable", "Type",
    # AzureADGraphActivityLogs (Event Hub spelling; Log Analytics uses the names above).
    "httpMethod", "httpStatusCode", "issuedAt", "actorType",
    # Defender XDR GraphApiAuditEvents.
    "Timestamp", "ApplicationId", "AccountObjectId", "EntityType", "RequestDuration",
    "ResponseSize", "UniqueTokenIdentifier",
)
# Keys Event Hub records carry that normalization ignores (exact spelling).
IGNORED_KEYS = (
    "resourceId", "operationName", "correlationId", "level", "Level", "atContent", "ATContentH",
    "ATContentP", "isReplay", "policyEvaluated", "__UDI_RequiredFields_TenantId",
    "__UDI_RequiredFields_EventTime", "__UDI_RequiredFields_RegionScope",
    "__UDI_RequiredFields_UniqueId", "directAccessSource", "env_cloud_role",
)
KNOWN_KEYS = frozenset(READ_KEYS + IGNORED_KEYS)
_CANONICAL_BY_LOWER = {name.lower(): name for name in READ_KEYS}
_MAX_REMEMBERED = 10_000


class _CanonicalNames(dict[str, str]):
    """Raw key -> canonical name, remembered (bounded) so repeated spellings cost one lookup."""

    def __missing__(self, key: str) -> str:
        lower = key.lower()
        name = _CANONICAL_BY_LOWER.get(lower, lower)
        if len(self) < _MAX_REMEMBERED:
            self[key] = name
        return name


canonical_name = _CanonicalNames().__getitem__


def merge_fields(record: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Keys under their canonical names, ``properties`` merged over the top level.

    Returns the merged dict and whether the record had a ``properties`` object (the Event Hub /
    storage shape). Raises AttributeError for a key that is not a string.
    """
    properties = record.get("properties")
    # Fast path: every key already spelled canonically ("properties" is a known key, so one
    # check of the merged keys covers both levels).
    if properties.__class__ is dict:
        merged = record.copy()
        del merged["properties"]
        merged.update(properties)
        if merged.keys() <= KNOWN_KEYS:
            return merged, True
    elif properties is None and record.keys() <= KNOWN_KEYS:
        return record.copy(), False
    merged = dict(zip(map(canonical_name, record), record.values(), strict=False))
    properties = merged.pop("properties", None)
    if isinstance(properties, dict):
        merged.update(zip(map(canonical_name, properties), properties.values(), strict=False))
        return merged, True
    if properties is not None:
        merged["properties"] = properties  # not an object: an unknown value, kept for checks
    return merged, False
