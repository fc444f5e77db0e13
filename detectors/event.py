"""The compact event every detector reads.

Built once per normalized record (``schemas/graph_activity.avsc``) so that detector state and
cross-worker transfer stay small. Field meanings are those of the schema; ``ts`` is
``time_generated`` as epoch seconds (float, UTC).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from operator import attrgetter
from typing import Any

DENIED_STATUSES = frozenset({401, 403})
MICROSOFT_GRAPH = "MicrosoftGraphActivityLogs"
"""``source`` of Microsoft Graph requests (the other logs: AADGraphActivityLogs for the legacy
Azure AD Graph API, GraphApiAuditEvents from Defender XDR)."""


RECORD_FIELDS = (
    "time_generated", "request_id", "tenant_id", "app_id", "principal_id", "identity_type",
    "request_method", "request_uri", "resource_template", "resource_family", "resource_category",
    "response_status_code", "response_size_bytes", "operation_id", "service_principal_id",
    "user_id", "ip_address", "user_agent", "target_user", "target_drive", "target_site",
    "target_item", "target_application", "is_write", "is_download", "query_top", "has_search",
    "has_filter", "roles", "scopes", "unique_token_id", "sign_in_activity_id", "source")
"""The record fields :meth:`GraphEvent.from_record` reads (the others may be left out)."""


@dataclass(slots=True, unsafe_hash=True)
class GraphEvent:
    """Treat as immutable (detectors never change an event). Not ``frozen``: a frozen
    dataclass sets each of its 29 fields through ``object.__setattr__``, which doubled the
    cost of building one per record; ``unsafe_hash`` keeps it hashable by value."""

    ts: float
    request_id: str
    tenant_id: str
    app_id: str
    principal_id: str
    identity_type: str
    method: str
    uri: str
    template: str
    family: str
    category: str
    status: int
    size: int = 0
    operation_id: str | None = None
    service_principal_id: str | None = None
    user_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    target_user: str | None = None
    target_drive: str | None = None
    target_site: str | None = None
    target_item: str | None = None
    target_application: str | None = None
    is_write: bool = False
    is_download: bool = False
    query_top: int | None = None
    has_search: bool = False
    has_filter: bool = False
    roles: tuple[str, ...] | None = None
    """Application permissions of the token (app-only calls), None when it has none."""
    scopes: tuple[str, ...] | None = None
    """Delegated permissions of the token (delegated calls), None when it has none."""
    token_id: str | None = None
    """The access token's identity: ``unique_token_id``, else ``sign_in_activity_id`` (one
    sign-in: the token and its refreshes)."""
    source: str = MICROSOFT_GRAPH
    """The log the request was recorded in (schema field ``source``)."""

    @property
    def denied(self) -> bool:
        return self.status in DENIED_STATUSES

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status < 400

    @property
    def principal_key(self) -> str:
        """The key of the principal's state: ``tenant_id/principal_id`` (a delegated user
        across every app of the tenant, or one service principal)."""
        return f"{self.tenant_id}/{self.principal_id}"

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> GraphEvent:
        """Build from a normalized record (schema field names, :data:`RECORD_FIELDS`; time as
        datetime or epoch µs, the same ``ts`` for both)."""
        tg = record["time_generated"]
        ts = tg.timestamp() if isinstance(tg, datetime) else tg / 1_000_000  # (exact: int / int)
        get = record.get
        return cls(  # positional, in field order: a third cheaper than keywords
            ts, record["request_id"], record["tenant_id"], record["app_id"],
            record["principal_id"], str(record["identity_type"]), record["request_method"],
            record["request_uri"], record["resource_template"], record["resource_family"],
            record["resource_category"], int(record["response_status_code"]),
            int(get("response_size_bytes") or 0), get("operation_id"),
            get("service_principal_id"), get("user_id"), get("ip_address"), get("user_agent"),
            get("target_user"), get("target_drive"), get("target_site"), get("target_item"),
            get("target_application"), bool(get("is_write")), bool(get("is_download")),
            get("query_top"), bool(get("has_search")), bool(get("has_filter")),
            _names(get("roles")), _names(get("scopes")),
            get("unique_token_id") or get("sign_in_activity_id"),
            get("source") or MICROSOFT_GRAPH,
        )

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as the class and its field values in order, without the field names of the
        slots default: on several processes Bytewax pickles every item it sends to another
        process (``bench/bench_exchange.py``). Events pickled the default way still load."""
        return (GraphEvent, event_values(self))


event_values: Callable[[GraphEvent], tuple[Any, ...]] = attrgetter(
    *(f.name for f in fields(GraphEvent)))
"""An event's field values in field order: ``GraphEvent(*event_values(e)) == e``."""


def _names(value: Any) -> tuple[str, ...] | None:
    """Permission names from the record (a list; a space-separated string is accepted too)."""
    if not value:
        return None
    return tuple(value.split()) if isinstance(value, str) else tuple(value)
