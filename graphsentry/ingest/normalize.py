"""One raw record (any delivery shape, already JSON-decoded) -> the strict normalized record.

Keys match case-insensitively; ``properties`` (Event Hub / storage shape) wins over top-level
duplicates. The three forms of empty (absent, null, "") are all ``None``; ``-1`` in a size or
duration means "unknown" (``None``). Records of the legacy Azure AD Graph log and of Defender
XDR's GraphApiAuditEvents are mapped onto the same fields (``graphsentry.ingest.sources``); the
record's ``source`` names its log. An over-long field is cut and listed in
``truncated_fields`` (``graphsentry.ingest.truncate``). Every problem becomes a :class:`Reject`
with a stable reason code; ``normalize_record`` never raises for bad input.
"""

from __future__ import annotations

from datetime import datetime
from time import time
from typing import Any

from graphsentry.ingest.aadgraph import analyze_aad_graph_uri
from graphsentry.ingest.aadgraph import clear_caches as _clear_aad_caches
from graphsentry.ingest.eventtime import LIMIT_CACHE as _FUTURE_CACHE
from graphsentry.ingest.eventtime import Clock, future_detail, future_limit
from graphsentry.ingest.keys import merge_fields
from graphsentry.ingest.limits import (
    MAX_ARRAY_ITEMS,
    MAX_CLAIM_CHARS,
    MAX_DEPTH,
    MAX_FUTURE_SKEW_SECONDS,
    MAX_INT32,
    MAX_INT64,
    MAX_STRING_CHARS,
    MAX_URI_CHARS,
    MAX_USER_AGENT_CHARS,
)
from graphsentry.ingest.reject import Invalid, Reject, reject
from graphsentry.ingest.sources import (
    AAD_GRAPH,
    MICROSOFT_GRAPH,
    MISSING_TENANT_HINT,
    source_of,
    to_graph_fields,
)
from graphsentry.ingest.timeparse import parse_timestamp
from graphsentry.ingest.truncate import shorten_uri
from graphsentry.ingest.uri import analyze_uri, is_download, is_write
from graphsentry.ingest.uri import clear_caches as _clear_uri_caches

__all__ = ["GRAPH_CATEGORY", "Clock", "Reject", "clear_caches", "future_limit", "normalize_record"]
GRAPH_CATEGORY = "microsoftgraphactivitylogs"
_GRAPH_CATEGORY_SPELLINGS = {"MicrosoftGraphActivityLogs": MICROSOFT_GRAPH}
"""``category`` as diagnostic settings spell it: the common case skips source detection."""
# Columns only a Log Analytics export has: there ``TenantId`` is the workspace, not the tenant.
_LOG_ANALYTICS_MARKERS = ("aadTenantId", "sourceSystem", "_BilledSize", "_IsBillable", "Type")
_LOG_ANALYTICS_KEYS = ("TimeGenerated", "RequestId", "AppId")

# (output field, input key, fallback key or "", max chars) for optional strings.
_OPTIONAL_STRINGS = (
    ("operation_id", "operationId", "", MAX_STRING_CHARS),
    ("client_request_id", "clientRequestId", "", MAX_STRING_CHARS),
    ("api_version", "apiVersion", "operationVersion", MAX_STRING_CHARS),
    ("ip_address", "ipAddress", "callerIpAddress", MAX_STRING_CHARS),
    ("user_agent", "userAgent", "", MAX_USER_AGENT_CHARS),
    ("location", "location", "", MAX_STRING_CHARS),
    ("user_id", "userId", "", MAX_STRING_CHARS),
    ("service_principal_id", "servicePrincipalId", "", MAX_STRING_CHARS),
    ("sign_in_activity_id", "signInActivityId", "", MAX_STRING_CHARS),
    ("identity_provider", "identityProvider", "", MAX_STRING_CHARS),
    ("device_id", "deviceId", "C_DeviceId", MAX_STRING_CHARS),
    ("session_id", "sessionId", "c_Sid", MAX_STRING_CHARS),
    ("unique_token_id", "uniqueTokenId", "", MAX_STRING_CHARS),
)
_FALLBACKS = tuple((index, field, key, fallback, limit)
                   for index, (field, key, fallback, limit) in enumerate(_OPTIONAL_STRINGS)
                   if fallback)
_OPTIONAL_STRING_KEYS = tuple(key for _, key, _, _ in _OPTIONAL_STRINGS)
# (input key, minimum, maximum, whether -1 means unknown) for the optional integers, in
# schema order.
_OPTIONAL_INTS = (
    ("responseSizeBytes", 0, MAX_INT64, True),
    ("durationMs", 0, MAX_INT64, True),
    ("clientAuthMethod", 0, MAX_INT32, False),
)
_OPTIONAL_INT_KEYS = tuple(key for key, _, _, _ in _OPTIONAL_INTS)
_UNKNOWN = (-1, "-1")
_SMALL_INTS = {str(n): n for n in range(10)}  # clientAuthMethod arrives as "0", "1" or "2"
_STR_OR_NONE = frozenset({str, type(None)})
_BULK_STRING_LIMIT = min(limit for _, _, _, limit in _OPTIONAL_STRINGS)
_IDENTITY_BY_IDTYP = {"app": "app_only", "user": "delegated"}
_METHODS = {name: name.upper() for upper in (
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS") for name in (upper, upper.lower())}
"""Spellings _method accepts as they are (or upper-cased): a dictionary hit skips its checks."""
_CONTAINERS = (dict, list)
_CONTAINER_TYPES = frozenset(_CONTAINERS)
_TOKEN_TIMES: dict[str, datetime] = {}
_TOKEN_TIMES_MAX = 4096


def normalize_record(obj: object, source: str = "",
                     max_future_skew: float | None = MAX_FUTURE_SKEW_SECONDS,
                     now: Clock | None = None) -> dict[str, Any] | Reject:
    """The normalized record (schema field names, in order) for one raw record, or a Reject.

    ``source`` is where the record was read (``path:line#i``, ``topic/partition/offset``): it
    goes into a reject; the record's own ``source`` field names its log. A record whose event
    time lies more than ``max_future_skew`` seconds ahead of the wall clock (``now()``, default
    the system clock) is a ``future_timestamp`` reject; ``None`` turns the check off. Never
    raises for bad input; ValueError for a negative or non-finite ``max_future_skew``.
    """
    try:
        try:
            record = _normalize(obj, None)
        except _Truncation:  # (rare) a field to cut: again, noting what is cut
            record = _normalize(obj, {})
    except Invalid as exc:
        return reject(exc.code, exc.detail, obj, source)
    except RecursionError:
        return reject("too_deep", f"nesting deeper than {MAX_DEPTH}", obj, source)
    except Exception as exc:  # a bug must not stop the stream: report it as a reject
        return reject("internal_error", f"{type(exc).__name__}: {exc}", obj, source)
    if max_future_skew is not None:
        until, skew, limit = _FUTURE_CACHE  # future_limit's cache, read inline: the hot path
        if now is not None or skew != max_future_skew or time() >= until:
            limit = future_limit(max_future_skew, now)
        if record["time_generated"] > limit:
            return reject("future_timestamp",
                          future_detail(record["time_generated"], limit, max_future_skew),
                          obj, source)
    return record


def clear_caches() -> None:
    """Forget remembered token times and URI analyses (benchmarks start cold with it)."""
    _TOKEN_TIMES.clear()
    _clear_uri_caches()
    _clear_aad_caches()


class _Truncation(Exception):
    """A field must be cut, and no dict was given to note it in: normalize again with one (the
    common record allocates none)."""


Cuts = dict[str, int] | None
"""Truncated field -> original size, or None on the first attempt (see _Truncation)."""


def _note_cut(cut: Cuts, field: str, size: int) -> None:
    if cut is None:
        raise _Truncation
    cut.setdefault(field, size)


def _normalize(obj: object, cut: Cuts) -> dict[str, Any]:
    if obj.__class__ is not dict and not isinstance(obj, dict):
        raise Invalid("not_an_object", f"a {_json_type(obj)} where a record object was expected")
    flat, enveloped = _fold_keys(obj)
    category = flat.get("category")
    source = _GRAPH_CATEGORY_SPELLINGS.get(category) if category.__class__ is str else None
    if source is None:
        source = source_of(flat)  # (raises for a record of another log)
        if source != MICROSOFT_GRAPH:
            to_graph_fields(source, flat)
    get = flat.get

    # The checks run in this order, so a record with several problems always gets the same
    # reject. Each "x.__class__ is str ..." test is only a shortcut past its helper.
    time_generated = _timestamp(get("timeGenerated") or get("time"), "timeGenerated")
    if time_generated is None:
        raise Invalid("missing_field", "timeGenerated")
    request_id = get("requestId")
    if not (request_id.__class__ is str and 0 < len(request_id) <= MAX_STRING_CHARS
            and request_id.isascii()):
        request_id = _required_string(request_id, "requestId", MAX_STRING_CHARS)
    method = get("requestMethod")
    method = _METHODS.get(method) if method.__class__ is str else None
    if method is None:
        method = _method(get("requestMethod"))
    status = get("responseStatusCode")
    if not (status.__class__ is int and 100 <= status <= 599):
        status = _status(status, get("resultSignature"))
    tenant_id = get("tenantId") if enveloped and get("aadTenantId") is None else _tenant(
        obj, flat, enveloped)  # (the shortcut is _tenant's answer for Event Hub records)
    if not (tenant_id.__class__ is str and 0 < len(tenant_id) <= MAX_STRING_CHARS
            and tenant_id.isascii()):
        if tenant_id is None or tenant_id == "":
            raise Invalid("missing_field", MISSING_TENANT_HINT.get(source, "tenantId"))
        tenant_id = _required_string(tenant_id, "tenantId", MAX_STRING_CHARS)
    app_id = get("appId")
    if not (app_id.__class__ is str and 0 < len(app_id) <= MAX_STRING_CHARS and app_id.isascii()):
        app_id = _required_string(app_id, "appId", MAX_STRING_CHARS)
    token_issued_at = _token_time(get("tokenIssuedAt"))
    uri = get("requestUri")
    if not (uri.__class__ is str and 0 < len(uri) <= MAX_URI_CHARS and uri.isascii()):
        uri = _uri(uri, cut)
    elif "\\u0026" in uri:  # double-escaped '&' seen in real records
        uri = uri.replace("\\u0026", "&")

    (operation_id, client_request_id, api_version, ip_address, user_agent, location, user_id,
     service_principal_id, sign_in_activity_id, identity_provider, device_id, session_id,
     unique_token_id) = _optional_strings(get, cut)
    size, duration, auth_method = map(get, _OPTIONAL_INT_KEYS)
    if not (size.__class__ is int and 0 <= size <= MAX_INT64):
        size = _optional_int(_OPTIONAL_INTS[0], size)
    if not (duration.__class__ is int and 0 <= duration <= MAX_INT64):
        duration = _optional_int(_OPTIONAL_INTS[1], duration)
    auth_method = _optional_int(_OPTIONAL_INTS[2], auth_method)  # usually a string: "2"
    roles = _claim_list("roles", get("roles"), cut)
    scopes = _claim_list("scopes", get("scopes"), cut)
    wids = _claim_list("wids", get("wids"), cut)

    identity_type, principal_id = _identity(get("C_Idtyp"), get("UserPrincipalObjectID"),
                                            service_principal_id, user_id, app_id)
    path, query_top, has_search, has_filter = (
        analyze_uri(uri) if source != AAD_GRAPH else analyze_aad_graph_uri(uri))
    (template, family, category, target_user, target_drive, target_site, target_item,
     target_application, _, _) = path
    return {  # schema field order (a test compares it with graph_activity.avsc)
        "time_generated": time_generated, "request_id": request_id,
        "operation_id": operation_id or None, "client_request_id": client_request_id or None,
        "api_version": api_version or None, "request_method": method, "request_uri": uri,
        "response_status_code": status, "response_size_bytes": size,
        "duration_ms": duration, "tenant_id": tenant_id, "ip_address": ip_address or None,
        "user_agent": user_agent or None, "location": location or None, "app_id": app_id,
        "user_id": user_id or None, "service_principal_id": service_principal_id or None,
        "roles": roles, "scopes": scopes, "wids": wids, "token_issued_at": token_issued_at,
        "sign_in_activity_id": sign_in_activity_id or None,
        "identity_provider": identity_provider or None,
        "client_auth_method": auth_method, "device_id": device_id or None,
        "session_id": session_id or None, "unique_token_id": unique_token_id or None,
        "identity_type": identity_type, "principal_id": principal_id,
        "resource_template": template, "resource_family": family,
        "resource_category": category, "target_user": target_user,
        "target_drive": target_drive, "target_site": target_site,
        "target_item": target_item, "target_application": target_application,
        "is_write": is_write(method, path), "is_download": is_download(method, path),
        "query_top": query_top, "has_search": has_search, "has_filter": has_filter,
        "source": source, "truncated_fields": cut or None,
    }


def _uri(value: object, cut: Cuts) -> str:
    """requestUri off the fast path: checked, ``\\u0026`` repaired, shortened when too long."""
    uri = _required_string(value, "requestUri", None)
    logged = len(uri)
    if "\\u0026" in uri:
        uri = uri.replace("\\u0026", "&")
    if len(uri) > MAX_URI_CHARS:
        _note_cut(cut, "request_uri", logged)
        uri = shorten_uri(uri, MAX_URI_CHARS)
    return uri


def _optional_strings(get: Any, cut: Cuts) -> list[str | None]:
    """The optional string fields in _OPTIONAL_STRINGS order, envelope fallbacks applied.

    A field may come back as "" (the fast path skips mapping it): "" and None both mean null,
    and the record is built with ``value or None``. Over-long values are cut (noted in ``cut``).
    """
    values = list(map(get, _OPTIONAL_STRING_KEYS))
    # Bulk fast path, all in C: only None or short ASCII strings (every field's usual state).
    if _STR_OR_NONE.issuperset(map(type, values)):
        joined = "".join(filter(None, values))
        if (len(joined) <= _BULK_STRING_LIMIT  # then no single one is longer
                or max(map(len, filter(None, values))) <= _BULK_STRING_LIMIT) and joined.isascii():
            for index, field, key, fallback, limit in _FALLBACKS:
                if not values[index] and (value := get(fallback)) is not None:
                    values[index] = _optional_string(value, key, limit, field, cut)
            return values
    for index, (field, key, fallback, limit) in enumerate(_OPTIONAL_STRINGS):
        value = values[index]
        if (value is None or value == "") and fallback:
            value = get(fallback)
        values[index] = _optional_string(value, key, limit, field, cut)
    return values


def _optional_int(spec: tuple[str, int, int, bool], value: object) -> int | None:
    key, low, high, minus_one_unknown = spec
    if value.__class__ is int and low <= value <= high:
        return value
    if value is None or value == "" or (minus_one_unknown and value in _UNKNOWN):
        return None
    small = _SMALL_INTS.get(value) if value.__class__ is str else None
    if small is not None and low <= small <= high:
        return small
    return _integer(value, key, low, high)


def _claim_list(key: str, value: object, cut: Cuts) -> list[str] | None:
    if value is None or value == "":
        return None
    if value.__class__ is str and len(value) <= MAX_STRING_CHARS and value.isascii():
        items = value.split()  # no item can be longer than the whole string
        return (items or None) if len(items) <= MAX_ARRAY_ITEMS else _claims(value, key, cut)
    return _claims(value, key, cut)


def _token_time(value: object) -> datetime | None:
    """tokenIssuedAt: many requests share one token, so parsed times are remembered."""
    if value.__class__ is not str:
        return _timestamp(value, "tokenIssuedAt")
    parsed = _TOKEN_TIMES.get(value)
    if parsed is None:
        parsed = _timestamp(value, "tokenIssuedAt")
        if parsed is not None:
            if len(_TOKEN_TIMES) >= _TOKEN_TIMES_MAX:
                _TOKEN_TIMES.clear()
            _TOKEN_TIMES[value] = parsed
    return parsed


def _optional_string(value: object, key: str, limit: int, field: str,
                     cut: Cuts) -> str | None:
    return None if value is None or value == "" else _string(value, key, limit, field, cut)


def _fold_keys(obj: dict[Any, Any]) -> tuple[dict[str, Any], bool]:
    """Canonical keys with ``properties`` merged (see keys.py); nesting depth checked."""
    try:
        flat, enveloped = merge_fields(obj)
    except AttributeError as exc:  # a non-string key: only possible from Python callers
        raise Invalid("bad_type", "a key that is not a string") from exc
    if not _CONTAINER_TYPES.isdisjoint(map(type, flat.values())):
        for value in flat.values():
            if isinstance(value, _CONTAINERS):
                _check_depth(value, 2)
    return flat, enveloped


def _check_depth(value: dict[Any, Any] | list[Any], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise Invalid("too_deep", f"nesting deeper than {MAX_DEPTH}")
    children = value.values() if isinstance(value, dict) else value
    for child in children:
        if isinstance(child, _CONTAINERS):
            _check_depth(child, depth + 1)


def _tenant(obj: dict[Any, Any], flat: dict[str, Any], enveloped: bool) -> object:
    """Entra tenant: tenantId (Event Hub/storage) or AadTenantId; never LA's TenantId."""
    aad = flat.get("aadTenantId")
    if aad is not None and aad != "":
        return aad
    is_log_analytics = not enveloped and (
        any(marker in flat for marker in _LOG_ANALYTICS_MARKERS)
        or any(key in obj for key in _LOG_ANALYTICS_KEYS)
    )
    return None if is_log_analytics else flat.get("tenantId")


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _string(value: object, key: str, limit: int | None, field: str = "",
            cut: Cuts = None) -> str:
    """A string field: numbers coerced, lone surrogates refused; beyond ``limit`` characters
    cut and noted in ``cut`` under ``field`` (without a ``field``: refused)."""
    if value.__class__ is not str:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise Invalid("bad_type", f"{key} is a {_json_type(value)}, expected a string")
        value = str(value)
    assert isinstance(value, str)
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise Invalid("invalid_utf8", f"{key} holds a lone surrogate") from exc
    if limit is not None and len(value) > limit:
        if not field:
            raise Invalid("field_too_large", f"{key} has {len(value)} characters (limit {limit})")
        _note_cut(cut, field, len(value))
        value = value[:limit]
    return value


def _required_string(value: object, key: str, limit: int | None) -> str:
    if (value.__class__ is str and len(value) > 0 and (limit is None or len(value) <= limit)
            and value.isascii()):
        return value
    if value is None or value == "":
        raise Invalid("missing_field", key)
    return _string(value, key, limit)


def _integer(value: object, key: str, low: int, high: int) -> int:
    number: int
    if isinstance(value, bool):
        raise Invalid("bad_type", f"{key} is a boolean, expected an integer")
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        number = int(value)
    elif isinstance(value, str) and len(value) <= 24:
        try:
            number = int(value.strip())
        except ValueError:
            raise Invalid("bad_type", f"{key} {value!r} is not an integer") from None
    else:
        raise Invalid("bad_type", f"{key} is a {_json_type(value)}, expected an integer")
    if not low <= number <= high:
        raise Invalid("out_of_range", f"{key} {number} outside {low}..{high}")
    return number


def _timestamp(value: object, key: str) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Invalid("bad_timestamp", f"{key} is a {_json_type(value)}, expected a string")
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        raise Invalid("bad_timestamp", f"{key}: {exc}") from None


def _method(value: object) -> str:
    method = _required_string(value, "requestMethod", MAX_STRING_CHARS).upper()
    if not (method.isascii() and method.isalpha() and len(method) <= 16):
        raise Invalid("bad_value", f"requestMethod {method[:32]!r} is not an HTTP method")
    return method


def _status(value: object, fallback: object) -> int:
    if value.__class__ is int and 100 <= value <= 599:
        return value
    if value is None or value == "":
        value = fallback
    if value is None or value == "":
        raise Invalid("missing_field", "responseStatusCode")
    return _integer(value, "responseStatusCode", 100, 599)


def _claims(value: object, key: str, cut: Cuts) -> list[str] | None:
    """roles/scopes/wids off the fast path: a string (or list of strings) split on whitespace.

    Beyond MAX_CLAIM_CHARS the string is cut (its last, partial item dropped); beyond
    MAX_ARRAY_ITEMS the first items are kept; an item beyond MAX_STRING_CHARS is cut. Each is
    noted in ``cut`` (the original characters, or items).
    """
    if isinstance(value, str):
        if len(value) > MAX_CLAIM_CHARS:
            _note_cut(cut, key, len(value))
            kept = value[:MAX_CLAIM_CHARS]
            items = kept.split()
            if items and not value[MAX_CLAIM_CHARS].isspace() and not kept[-1].isspace():
                items.pop()  # cut in the middle of an item
        else:
            items = value.split()
    elif isinstance(value, list):
        items = []
        for item in value:
            if not isinstance(item, str):
                raise Invalid("bad_type", f"{key} holds a {_json_type(item)}, expected strings")
            items.extend(item.split())
    else:
        raise Invalid("bad_type", f"{key} is a {_json_type(value)}, expected a string")
    if not items:
        return None
    if len(items) > MAX_ARRAY_ITEMS:
        _note_cut(cut, key, len(items))
        del items[MAX_ARRAY_ITEMS:]
    return [_string(item, key, MAX_STRING_CHARS, key, cut) for item in items]


def _identity(idtyp: object, object_id: object, service_principal: str | None,
              user: str | None, app_id: str) -> tuple[str, str]:
    """(identity_type, principal_id): C_Idtyp decides when present, else which caller id is set."""
    oid = object_id if isinstance(object_id, str) and object_id else None
    identity = _IDENTITY_BY_IDTYP.get(idtyp.lower()) if isinstance(idtyp, str) else None
    if identity is None:
        identity = "app_only" if service_principal else "delegated" if user else "unknown"
    if identity == "app_only":
        principal = service_principal or oid
    elif identity == "delegated":
        principal = user or oid
    else:
        principal = None
    return identity, principal or f"app:{app_id}"
