"""Over-long fields cut to their limits, keeping what detection reads.

Microsoft Graph hands out ``users/delta`` and paging links of more than 8,000 characters, and a
caller chooses its User-Agent: a record is never lost for an over-long field. The field is cut,
and the normalized record says so in ``truncated_fields`` (field name -> original size).
"""

from __future__ import annotations

from urllib.parse import unquote

from graphsentry.ingest.limits import MAX_QUERY_VALUE_CHARS

KEY_QUERY_OPTIONS = frozenset({
    "top", "filter", "search", "select", "expand", "orderby", "count", "api-version"})
"""Query options kept whole when a request URI is shortened (``$`` and case ignored)."""


def shorten_uri(uri: str, limit: int) -> str:
    """``uri`` in at most ``limit`` characters, keeping what detection reads from it.

    The scheme, host and path stay whole (cut only if they alone exceed ``limit``; the query
    then goes). Query parameters longer than MAX_QUERY_VALUE_CHARS (``$skiptoken``,
    ``$deltatoken``, a long ``$filter``) are cut, longest first and only as much as needed, but
    never below that length; if that is not enough, parameters other than the key options
    (KEY_QUERY_OPTIONS) are dropped, last first; a last resort cuts the end. The resource
    template, ``$top``, ``$search`` and ``$filter`` of the result are those of ``uri``.
    """
    if len(uri) <= limit:
        return uri
    base, mark, query = uri.partition("?")
    if not mark or len(base) >= limit:
        return base[:limit]
    params: list[str | None] = list(query.split("&"))
    excess = len(uri) - limit
    for index in sorted(range(len(params)), key=lambda i: -len(params[i] or "")):
        param = params[index] or ""
        if excess <= 0 or len(param) <= MAX_QUERY_VALUE_CHARS:
            break
        keep = max(MAX_QUERY_VALUE_CHARS, len(param) - excess)
        excess -= len(param) - keep
        params[index] = param[:keep]
    for index in range(len(params) - 1, -1, -1):
        kept = params[index]
        if excess <= 0:
            break
        if kept is not None and _option(kept) not in KEY_QUERY_OPTIONS:
            excess -= len(kept) + 1
            params[index] = None
    shortened = base + "?" + "&".join(p for p in params if p is not None)
    return shortened[:limit]


def _option(param: str) -> str:
    key = param.partition("=")[0]
    if "%" in key:
        key = unquote(key)
    return key.strip().lstrip("$").lower()
