"""One raw record (any delivery shape, already JSON-decoded) -> the strict normalized record.

Keys match case-insensitively; ``properties`` (Event Hub / storage shape) wins over top-level
duplicates. The three forms of empty (absent, null, "") are all ``None``. Every problem becomes
a :class:`Reject` with a stable reason code; ``normalize_record`` never raises.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from graphsentry.ingest.keys import merge_fields
from graphsentry.ingest.limits import (
    MAX_ARRAY_ITEMS,
    MAX_CLAIM_CHARS,
    MAX_DEPTH,
    MAX_INT32,
    MAX_INT64,
    MAX_STRING_CHARS,
    MAX_URI_CHARS,
    MAX_USER_AGENT_CHARS,
)
from graphsentry.ingest.reject import Reject, reject
from graphsentry.ingest.timeparse import parse_timestamp
from graphsentry.ingest.uri import analyze_uri, is_download, is_write
from schemas import field_names

__all__ = ["GRAPH_CATEGORY", "Reject", "normalize_record"]

GRAPH_CATEGORY = "microsoftgraphactivitylogs"
# Columns only a Log Analytics export has: there ``TenantId`` is the workspace, not the tenant.
_LOG_ANALYTICS_MARKERS = ("aadTenantId", "sourceSystem", "_BilledSize", "_IsBillable")
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
# (output field, input key, minimum, maximum) for optional integers.
_OPTIONAL_INTS = (
    ("response_size_bytes", "responseSizeBytes", 0, MAX_INT64),
    ("duration_ms", "durationMs", 0, MAX_INT64),
    ("client_auth_method", "clientAuthMethod", 0, MAX_INT32),
)
_OPTIONAL_STRING_FIELDS = tuple(field for field, _, _, _ in _OPTIONAL_STRINGS)
_OPTIONAL_STRING_KEYS = tuple(key for _, key, _, _ in _OPTIONAL_STRINGS)
_STR_OR_NONE = frozenset({str, type(None)})
_EMPTY_AS_NONE = {"": None}.get  # called as get(v, v): "" -> None, anything else -> itself
_BULK_STRING_LIMIT = min(limit for _, _, _, limit in _OPTIONAL_STRINGS)
_CLAIMS = ("roles", "scopes", "wids")  # output field == input key; space-separated strings
_RECORD_TEMPLATE: dict[str, Any] = dict.fromkeys(field_names("graph_activity"))
_IDENTITY_BY_IDTYP = {"app": "app_only", "user": "delegated"}
_CONTAINERS = (dict, list)
_CONTAINER_TYPES = frozenset(_CONTAINERS)


class _Invalid(Exception):
    """Internal: carries a reject reason out of the nested helpers."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail


def normalize_record(obj: object, source: str = "") -> dict[str, Any] | Reject:
    """The normalized record (schema field names) for one raw record, or a Reject. Never raises."""
    try:
        return _normalize(obj)
    except _Invalid as exc:
        return reject(exc.code, exc.detail, obj, source)
    except RecursionError:
        return reject("too_deep", f"nesting deeper than {MAX_DEPTH}", obj, source)
    except Exception as exc:  # a bug must not stop the stream: report it as a reject
        return reject("internal_error", f"{type(exc).__name__}: {exc}", obj, source)


def _normalize(obj: object) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise _Invalid("not_an_object", f"a {_json_type(obj)} where a record object was expected")
    flat, enveloped = _fold_keys(obj)
    get = flat.get
    category = get("category")
    if category.__class__ is str and category and category.lower() != GRAPH_CATEGORY:
        raise _Invalid("unsupported_category", f"category {category[:64]!r}")

    time_generated = _timestamp(get("timeGenerated") or get("time"), "timeGenerated")
    if time_generated is None:
        raise _Invalid("missing_field", "timeGenerated")
    # A copy of the template: schema field order, and no resizing while it fills up.
    record = _RECORD_TEMPLATE.copy()
    record["time_generated"] = time_generated
    record["request_id"] = _required_string(get("requestId"), "requestId", MAX_STRING_CHARS)
    record["request_method"] = _method(get("requestMethod"))
    record["response_status_code"] = _status(get("responseStatusCode"), get("resultSignature"))
    record["tenant_id"] = _required_string(_tenant(obj, flat, enveloped), "tenantId",
                                           MAX_STRING_CHARS)
    record["app_id"] = _required_string(get("appId"), "appId", MAX_STRING_CHARS)
    record["token_issued_at"] = _timestamp(get("tokenIssuedAt"), "tokenIssuedAt")
    uri = _required_string(get("requestUri"), "requestUri", MAX_URI_CHARS)
    if "\\u0026" in uri:  # double-escaped '&' seen in real records
        uri = uri.replace("\\u0026", "&")
    record["request_uri"] = uri

    _optional_strings(get, record)
    for field, key, low, high in _OPTIONAL_INTS:
        value = get(key)
        if value is None or value == "":
            record[field] = None
        elif value.__class__ is int and low <= value <= high:
            record[field] = value
        else:
            record[field] = _integer(value, key, low, high)
    for key in _CLAIMS:
        value = get(key)
        if value is None or value == "":
            record[key] = None
        elif value.__class__ is str and len(value) <= MAX_STRING_CHARS and value.isascii():
            items = value.split()  # no item can be longer than the whole string
            record[key] = (items or None) if len(items) <= MAX_ARRAY_ITEMS else _claims(value, key)
        else:
            record[key] = _claims(value, key)

    _derive_identity(record, get("C_Idtyp"), get("UserPrincipalObjectID"))
    _derive_resource(record)
    return record


def _optional_strings(get: Any, record: dict[str, Any]) -> None:
    """The optional string fields, "" -> None, with the envelope fallbacks."""
    values = list(map(get, _OPTIONAL_STRING_KEYS))
    # Bulk fast path, all in C: only None or short ASCII strings (every field's usual state).
    if _STR_OR_NONE.issuperset(map(type, values)):
        present = list(filter(None, values))
        if max(map(len, present), default=0) <= _BULK_STRING_LIMIT and "".join(present).isascii():
            record.update(zip(_OPTIONAL_STRING_FIELDS, map(_EMPTY_AS_NONE, values, values),
                              strict=True))
            for field, key, fallback, limit in _OPTIONAL_STRINGS:
                if fallback and record[field] is None:
                    record[field] = _optional_string(get(fallback), key, limit)
            return
    for field, key, fallback, limit in _OPTIONAL_STRINGS:
        value = get(key)
        if (value is None or value == "") and fallback:
            value = get(fallback)
        record[field] = _optional_string(value, key, limit)


def _optional_string(value: object, key: str, limit: int) -> str | None:
    return None if value is None or value == "" else _string(value, key, limit)


def _fold_keys(obj: dict[Any, Any]) -> tuple[dict[str, Any], bool]:
    """Canonical keys with ``properties`` merged (see keys.py); nesting depth checked."""
    try:
        flat, enveloped = merge_fields(obj)
    except AttributeError as exc:  # a non-string key: only possible from Python callers
        raise _Invalid("bad_type", "a key that is not a string") from exc
    if not _CONTAINER_TYPES.isdisjoint(map(type, flat.values())):
        for value in flat.values():
            if isinstance(value, _CONTAINERS):
                _check_depth(value, 2)
    return flat, enveloped


def _check_depth(value: dict[Any, Any] | list[Any], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise _Invalid("too_deep", f"nesting deeper than {MAX_DEPTH}")
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


def _string(value: object, key: str, limit: int) -> str:
    if value.__class__ is not str:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise _Invalid("bad_type", f"{key} is a {_json_type(value)}, expected a string")
        value = str(value)
    assert isinstance(value, str)
    if len(value) > limit:
        raise _Invalid("field_too_large", f"{key} has {len(value)} characters (limit {limit})")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _Invalid("invalid_utf8", f"{key} holds a lone surrogate") from exc
    return value


def _required_string(value: object, key: str, limit: int) -> str:
    if value.__class__ is str and 0 < len(value) <= limit and value.isascii():
        return value
    if value is None or value == "":
        raise _Invalid("missing_field", key)
    return _string(value, key, limit)


def _integer(value: object, key: str, low: int, high: int) -> int:
    number: int
    if isinstance(value, bool):
        raise _Invalid("bad_type", f"{key} is a boolean, expected an integer")
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        number = int(value)
    elif isinstance(value, str) and len(value) <= 24:
        try:
            number = int(value.strip())
        except ValueError:
            raise _Invalid("bad_type", f"{key} {value!r} is not an integer") from None
    else:
        raise _Invalid("bad_type", f"{key} is a {_json_type(value)}, expected an integer")
    if not low <= number <= high:
        raise _Invalid("out_of_range", f"{key} {number} outside {low}..{high}")
    return number


def _timestamp(value: object, key: str) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _Invalid("bad_timestamp", f"{key} is a {_json_type(value)}, expected a string")
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        raise _Invalid("bad_timestamp", f"{key}: {exc}") from None


def _method(value: object) -> str:
    method = _required_string(value, "requestMethod", MAX_STRING_CHARS).upper()
    if not (method.isascii() and method.isalpha() and len(method) <= 16):
        raise _Invalid("bad_value", f"requestMethod {method[:32]!r} is not an HTTP method")
    return method


def _status(value: object, fallback: object) -> int:
    if value.__class__ is int and 100 <= value <= 599:
        return value
    if value is None or value == "":
        value = fallback
    if value is None or value == "":
        raise _Invalid("missing_field", "responseStatusCode")
    return _integer(value, "responseStatusCode", 100, 599)


def _claims(value: object, key: str) -> list[str] | None:
    if isinstance(value, str):
        if len(value) > MAX_CLAIM_CHARS:
            raise _Invalid("field_too_large", f"{key} has {len(value)} characters")
        items = value.split()
    elif isinstance(value, list):
        items = []
        for item in value:
            if not isinstance(item, str):
                raise _Invalid("bad_type", f"{key} holds a {_json_type(item)}, expected strings")
            items.extend(item.split())
    else:
        raise _Invalid("bad_type", f"{key} is a {_json_type(value)}, expected a string")
    if not items:
        return None
    if len(items) > MAX_ARRAY_ITEMS:
        raise _Invalid("field_too_large", f"{key} has {len(items)} items (limit {MAX_ARRAY_ITEMS})")
    for item in items:
        _string(item, key, MAX_STRING_CHARS)
    return items


def _derive_identity(record: dict[str, Any], idtyp: object, object_id: object) -> None:
    """identity_type from C_Idtyp when present, else from which caller id is set."""
    app_id = record["app_id"]
    service_principal = record["service_principal_id"]
    user = record["user_id"]
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
    record["identity_type"] = identity
    record["principal_id"] = principal or f"app:{app_id}"


def _derive_resource(record: dict[str, Any]) -> None:
    info = analyze_uri(record["request_uri"])
    path = info.path
    method = record["request_method"]
    record["resource_template"] = path.template
    record["resource_family"] = path.family
    record["resource_category"] = path.category
    record["target_user"] = path.target_user
    record["target_drive"] = path.target_drive
    record["target_site"] = path.target_site
    record["target_item"] = path.target_item
    record["target_application"] = path.target_application
    record["is_write"] = is_write(method, path)
    record["is_download"] = is_download(method, path)
    record["query_top"] = info.query_top
    record["has_search"] = info.has_search
    record["has_filter"] = info.has_filter
