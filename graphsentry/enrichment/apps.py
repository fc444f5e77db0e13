"""Loader for the app directory: a Graph export of applications / servicePrincipals or a CSV.

JSON: an array of objects or Graph's ``{"value": [...]}`` page (one per line also works), with
``appId``, ``displayName``, ``appOwnerOrganizationId`` and ``servicePrincipalType``. CSV: a
header with those column names. Optional graphsentry extras (either form): ``allowed``
(true/false: allow-listed app, its findings never alert) and ``suppressedDetectors``
(detector ids, comma separated in CSV). Apps owned by Microsoft's tenants are first-party, and
so are apps without an owner whose id the shipped Microsoft snapshot lists
(``detectors.microsoft``), which also names them when the export does not.

Apps the directory does not hold at all are answered from that snapshot by the stores
(:func:`first_party_app`); a directory entry always wins.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from detectors import microsoft
from detectors.base import AppInfo
from graphsentry.enrichment.asn import open_text
from graphsentry.enrichment.store import FIRST_PARTY_TENANTS, EnrichmentStore, LoadReport
from graphsentry.errors import GraphsentryError

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
TRUE = {"1", "true", "yes", "y"}


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() in TRUE


def app_from_object(obj: Mapping[str, Any]) -> tuple[AppInfo, str | None] | str:
    """(AppInfo, servicePrincipalType) from one exported object, or the reason it is bad."""
    app_id = str(obj.get("appId") or "").strip()
    if not GUID.match(app_id):
        return f"appId is missing or not a GUID: {app_id!r}"
    owner = str(obj.get("appOwnerOrganizationId") or "").strip().lower() or None
    shipped = owner is None and microsoft.is_first_party(app_id)
    suppressed = obj.get("suppressedDetectors") or []
    if isinstance(suppressed, str):
        suppressed = [s.strip() for s in suppressed.split(",")]
    info = AppInfo(
        app_id=app_id.lower(),
        display_name=(str(obj.get("displayName") or "").strip()
                      or microsoft.first_party_name(app_id)),
        owner_tenant_id=owner,
        first_party=owner in FIRST_PARTY_TENANTS or shipped,
        allowed=_truthy(obj.get("allowed", False)),
        suppressed_detectors=frozenset(s for s in suppressed if s),
    )
    sp_type = str(obj.get("servicePrincipalType") or "").strip() or None
    return info, sp_type


def first_party_app(app_id: str) -> AppInfo | None:
    """What the shipped Microsoft snapshot says about ``app_id``, for an app the directory does
    not hold: ``AppInfo(first_party=True, display_name=…)``, or None for other apps."""
    if not microsoft.is_first_party(app_id):
        return None
    return AppInfo(app_id=app_id, display_name=microsoft.first_party_name(app_id),
                   first_party=True)


def _json_objects(text: str) -> Iterator[tuple[int, Any]]:
    """(item number, object) from a JSON array, a Graph page, or JSON lines."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg != "Extra data":
            raise GraphsentryError(f"not valid JSON (line {exc.lineno}): {exc.msg}") from exc
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    yield number, json.loads(line)
                except json.JSONDecodeError:
                    yield number, None
        return
    if isinstance(data, Mapping) and isinstance(data.get("value"), list):
        data = data["value"]
    if isinstance(data, Mapping):
        data = [data]
    if not isinstance(data, list):
        raise GraphsentryError("expected a JSON array of applications or {\"value\": [...]}")
    yield from enumerate(data, start=1)


def parse_apps(text: str, report: LoadReport) -> Iterator[tuple[AppInfo, str | None]]:
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        items: Iterable[tuple[int, Any]] = _json_objects(text)
    else:  # CSV: line numbers count the header as line 1
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or "appId" not in reader.fieldnames:
            raise GraphsentryError("CSV needs a header with an appId column")
        items = ((number, row) for number, row in enumerate(reader, start=2))
    for number, obj in items:
        if not isinstance(obj, Mapping):
            report.reject(number, "not a JSON object")
            continue
        parsed = app_from_object(obj)
        if isinstance(parsed, str):
            report.reject(number, parsed)
            continue
        report.loaded += 1
        yield parsed


def load_apps(path: str, store: EnrichmentStore) -> LoadReport:
    report = LoadReport()
    with open_text(path) as stream:
        text = stream.read()
    store.put_apps(parse_apps(text, report))
    return report
