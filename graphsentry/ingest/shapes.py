"""Query-API responses and other container documents: their rows, or a reject that names them.

Read (each row becomes one raw record; keys as the columns are named):

- **Log Analytics query API** (``api.loganalytics.io`` ``/v1/workspaces/{id}/query``, the Azure
  SDKs' raw responses): ``{"tables": [{"name", "columns": [{"name", "type"}], "rows": [[...]]}]}``.
  Row ``j`` of table ``i`` reads ``<source>#i#j``. A non-fatal query error comes as an
  ``error`` next to ``tables``: one ``query_error`` reject, then the rows that were returned.
- **Defender XDR advanced-hunting API** (``{"Schema": [...], "Results": [{...}]}``) and Microsoft
  Graph's ``security/runHuntingQuery`` (``{"schema": [...], "results": [{...}]}``): row ``j``
  reads ``<source>#j``.

Recognised, holding no activity records (one reject for the document, never a missing field):

- ``{"error": {"code", "message"}}`` without rows: ``query_error: <code>: <message>``;
- a Microsoft Graph collection response (``@odata.context`` + ``value``): ``unsupported_shape``;
- a Kusto v2 response frame (``FrameType``): ``unsupported_shape``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphsentry.ingest.reject import Reject, reject

Row = tuple[object, str] | Reject
MAX_CONTAINER_KEYS = 8
"""A document with more keys is a record (every container shape has a few)."""
_MARKERS = frozenset({"tables", "results", "error", "@odata.context", "frametype"})


def is_container(value: dict[Any, Any]) -> bool:
    """Whether ``value`` is one of the container documents above (not a record)."""
    return _kind(value) is not None


def rows_of(value: dict[Any, Any], source: str) -> Iterator[Row] | None:
    """The rows of a container document, or None when ``value`` is not one (a record)."""
    found = _kind(value)
    if found is None:
        return None
    kind, keys = found
    if kind == "tables":
        error = value[keys["error"]] if "error" in keys else None
        return _query_api(value[keys["tables"]], error, value, source)
    if kind == "results":
        return _hunting_api(value[keys["results"]], value, source)
    if kind == "error":
        return iter((_query_error(value[keys["error"]], value, source),))
    if kind == "odata":
        context = str(value[keys["@odata.context"]])[:160]
        return iter((reject("unsupported_shape",
                            f"a Microsoft Graph API collection response (@odata.context "
                            f"{context!r}), not activity log records", value, source),))
    frame = str(value[keys["frametype"]])[:64]
    return iter((reject("unsupported_shape",
                        f"a Kusto v2 query response frame (FrameType {frame!r}): query the v1 "
                        f"REST API, or export the rows as JSON or CSV", value, source),))


def _kind(value: dict[Any, Any]) -> tuple[str, dict[str, Any]] | None:
    """(which container, lower-case key -> key) or None for a record."""
    if len(value) > MAX_CONTAINER_KEYS:
        return None
    keys = {key.lower(): key for key in value if isinstance(key, str)}
    if _MARKERS.isdisjoint(keys):
        return None
    if "tables" in keys:
        return "tables", keys
    if "results" in keys and "schema" in keys:
        return "results", keys
    if "error" in keys and isinstance(value[keys["error"]], dict):
        return "error", keys
    if "@odata.context" in keys and "value" in keys:
        return "odata", keys
    if "frametype" in keys:
        return "frame", keys
    return None


def _query_api(tables: object, error: object, document: object, source: str) -> Iterator[Row]:
    if error is not None:
        yield _query_error(error, document, source)
    if not isinstance(tables, list):
        yield reject("invalid_table", "tables is not an array", document, source)
        return
    for index, table in enumerate(tables):
        where = f"{source}#{index}"
        columns = _column_names(table)
        rows = table.get("rows", table.get("Rows")) if isinstance(table, dict) else None
        if columns is None or not isinstance(rows, list):
            yield reject("invalid_table", "a table needs columns [{name, type}, ...] and rows "
                         "[[...], ...]", table, where)
            continue
        for number, row in enumerate(rows):
            if isinstance(row, list) and len(row) == len(columns):
                yield dict(zip(columns, row, strict=True)), f"{where}#{number}"
            else:
                size = f"{len(row)} values" if isinstance(row, list) else "not an array"
                yield reject("invalid_table", f"row {number}: {size} for {len(columns)} columns",
                             row, f"{where}#{number}")


def _column_names(table: object) -> list[str] | None:
    """Column names (``name``, or Kusto's ``ColumnName``), or None if they are unusable."""
    if not isinstance(table, dict):
        return None
    columns = table.get("columns", table.get("Columns"))
    if not isinstance(columns, list):
        return None
    names = []
    for column in columns:
        name = column.get("name", column.get("ColumnName")) if isinstance(column, dict) else None
        if not isinstance(name, str):
            return None
        names.append(name)
    return names


def _hunting_api(results: object, document: object, source: str) -> Iterator[Row]:
    if not isinstance(results, list):
        yield reject("invalid_table", "results is not an array", document, source)
        return
    for number, row in enumerate(results):
        yield row, f"{source}#{number}"


def _query_error(error: object, document: object, source: str) -> Reject:
    if isinstance(error, dict):
        code = error.get("code", error.get("Code", ""))
        message = error.get("message", error.get("Message", ""))
        detail = f"{str(code)[:64]}: {str(message)[:400]}"
    else:
        detail = str(error)[:400]
    return reject("query_error", detail, document, source)
