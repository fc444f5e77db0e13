"""Which log a raw record comes from, and its fields under the Microsoft Graph activity names.

Three logs record requests to Graph APIs; a normalized record names its log in ``source``:

``MicrosoftGraphActivityLogs``
    Microsoft Graph (graph.microsoft.com): Entra diagnostic settings (Event Hub, storage; category
    ``MicrosoftGraphActivityLogs``) or the Log Analytics table of that name.
``AADGraphActivityLogs``
    The legacy Azure AD Graph API (graph.windows.net): Event Hub / storage category
    ``AzureADGraphActivityLogs`` (keys ``httpMethod``, ``httpStatusCode``, ``issuedAt``,
    ``actorType``; comma-separated ``roles``/``wids``) or the Log Analytics table
    ``AADGraphActivityLogs`` (``RequestMethod``, ``ResponseStatusCode``, ``TokenIssuedAt``).
``GraphApiAuditEvents``
    Microsoft Defender XDR's advanced-hunting table (also its streaming API: category
    ``AdvancedHunting-GraphApiAuditEvents``): ``Timestamp``, ``ApplicationId``,
    ``AccountObjectId`` + ``EntityType``, ``IPAddress``, ``RequestDuration``, string
    ``ResponseStatusCode``, ``ResponseSize``, ``UniqueTokenIdentifier``.

:func:`source_of` decides from, in order: ``category`` (resource logs and Defender's streaming
API), the Log Analytics ``Type`` column, then which columns the record has. A recognised
category or table that holds no Graph requests raises :class:`~graphsentry.ingest.reject.Invalid`
naming it (``unsupported_category`` / ``unsupported_table``). :func:`to_graph_fields` then
renames the other logs' fields in place, so one validation path serves all three.
"""

from __future__ import annotations

from typing import Any

from graphsentry.ingest.reject import Invalid

MICROSOFT_GRAPH = "MicrosoftGraphActivityLogs"
AAD_GRAPH = "AADGraphActivityLogs"
DEFENDER = "GraphApiAuditEvents"
SOURCES = (MICROSOFT_GRAPH, AAD_GRAPH, DEFENDER)

DEFENDER_STREAMING_PREFIX = "advancedhunting-"
_BY_CATEGORY = {
    "microsoftgraphactivitylogs": MICROSOFT_GRAPH,
    "azureadgraphactivitylogs": AAD_GRAPH,
    DEFENDER_STREAMING_PREFIX + "graphapiauditevents": DEFENDER,
}
_BY_TABLE = {name.lower(): name for name in SOURCES}
# Columns only one log has (canonical spellings, graphsentry.ingest.keys): a record with no
# category and no Type column is read as the log whose columns it carries.
_DEFENDER_COLUMNS = frozenset({"ApplicationId", "AccountObjectId", "EntityType",
                               "RequestDuration"})
_AAD_COLUMNS = frozenset({"httpMethod", "httpStatusCode", "issuedAt", "actorType"})
# actorType (AAD Graph) / EntityType (Defender), lower case -> the C_Idtyp value it means.
_IDTYP = {"user": "user", "application": "app", "serviceprincipal": "app", "app": "app",
          "managedidentity": "app"}
_EMPTY = (None, "")

MISSING_TENANT_HINT = {
    DEFENDER: "tenantId (a GraphApiAuditEvents row carries no Entra tenant: add an AadTenantId "
              "column, e.g. `| extend AadTenantId = \"<tenant id>\"` in the hunting query)",
}
"""The ``missing_field`` detail for a record without tenant, per source (default ``tenantId``)."""


def source_of(flat: dict[str, Any]) -> str:
    """The log of one record (keys already canonical, ``properties`` merged).

    Raises Invalid(``unsupported_category`` | ``unsupported_table``) for a record of another log.
    """
    category = flat.get("category")
    if category.__class__ is str and category:
        lower = category.lower()
        found = _BY_CATEGORY.get(lower)
        if found is not None:
            return found
        if lower.startswith(DEFENDER_STREAMING_PREFIX):
            name = category[len(DEFENDER_STREAMING_PREFIX):][:64]
            raise Invalid("unsupported_category",
                          f"Defender XDR streaming table {name!r} (of Defender's tables only "
                          f"GraphApiAuditEvents holds Graph requests)")
        raise Invalid("unsupported_category", f"category {category[:64]!r}")
    table = flat.get("Type")
    if table.__class__ is str and table:
        known = _BY_TABLE.get(table.lower())
        if known is None:
            raise Invalid("unsupported_table", f"Log Analytics table {table[:64]!r}")
        return known
    keys = flat.keys()
    if not keys.isdisjoint(_DEFENDER_COLUMNS):
        return DEFENDER
    if not keys.isdisjoint(_AAD_COLUMNS):
        return AAD_GRAPH
    return MICROSOFT_GRAPH


def to_graph_fields(source: str, flat: dict[str, Any]) -> None:
    """Rename ``flat``'s fields (in place) to the Microsoft Graph activity names."""
    if source == AAD_GRAPH:
        _fill(flat, "requestMethod", "httpMethod")
        _fill(flat, "responseStatusCode", "httpStatusCode")
        _fill(flat, "tokenIssuedAt", "issuedAt")
        _fill_idtyp(flat, flat.get("actorType"))
        for claim in ("roles", "scopes", "wids"):  # " Group.Read.All," in the Event Hub shape
            value = flat.get(claim)
            if value.__class__ is str and "," in value:
                flat[claim] = value.replace(",", " ")
    elif source == DEFENDER:
        stamp = flat.get("Timestamp")  # when the request was recorded: wins over TimeGenerated
        if stamp not in _EMPTY:
            flat["timeGenerated"] = stamp
        _fill(flat, "requestId", "operationId")
        _fill(flat, "appId", "ApplicationId")
        _fill(flat, "durationMs", "RequestDuration")
        _fill(flat, "responseSizeBytes", "ResponseSize")
        _fill(flat, "signInActivityId", "UniqueTokenIdentifier")
        _fill(flat, "UserPrincipalObjectID", "AccountObjectId")
        if _fill_idtyp(flat, flat.get("EntityType")) == "user":
            _fill(flat, "userId", "AccountObjectId")


def _fill(flat: dict[str, Any], target: str, origin: str) -> None:
    """``flat[target] = flat[origin]`` unless target already has a value or origin has none."""
    if flat.get(target) in _EMPTY:
        value = flat.get(origin)
        if value not in _EMPTY:
            flat[target] = value


def _fill_idtyp(flat: dict[str, Any], kind: object) -> str | None:
    idtyp = _IDTYP.get(kind.lower()) if isinstance(kind, str) else None
    if idtyp is not None and flat.get("C_Idtyp") in _EMPTY:
        flat["C_Idtyp"] = idtyp
    return idtyp
