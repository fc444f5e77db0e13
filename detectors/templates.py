"""One comparable form for resource templates, whatever spelling the request used.

Graph accepts the same endpoint as ``/applications/{id}/addPassword``,
``/applications(appId='…')/microsoft.graph.addPassword`` or with a trailing slash; tool
fingerprints and write rules compare templates in this canonical form: lower case, no API
version, no ``microsoft.graph.`` prefix on a final action or function and no type-cast segment
(``/applications/{id}/microsoft.graph.agentIdentityBlueprint/addPassword`` is an
``addPassword`` on the application), key segments ``name(key='v')`` split into
``name/{id}``, ``{upn}`` and raw GUIDs as ``{id}``.
"""

from __future__ import annotations

import re
from functools import lru_cache

_VERSION = re.compile(r"^/(?:v1\.0|beta)(?=/|$)", re.IGNORECASE)
_KEY_SEGMENT = re.compile(r"^([^()]+)\([^()]*\)$")
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_CAST_PREFIX = "microsoft.graph."
ID = "{id}"


def _canonical_segment(segment: str) -> list[str]:
    if segment.startswith(_CAST_PREFIX):
        segment = segment[len(_CAST_PREFIX):]
    if segment in (ID, "{upn}") or _GUID.match(segment):
        return [ID]
    keyed = _KEY_SEGMENT.match(segment)
    if keyed:
        return [keyed.group(1), ID]
    return [segment]


@lru_cache(maxsize=4096)
def canonical_template(template: str) -> str:
    """E.g. ``/Applications(appId='{id}')/microsoft.graph.addPassword/`` becomes
    ``/applications/{id}/addpassword``."""
    path = _VERSION.sub("", template.strip().lower().split("?", 1)[0])
    parts = [segment for segment in path.split("/") if segment]
    segments: list[str] = []
    for index, segment in enumerate(parts):
        if segment.startswith(_CAST_PREFIX) and index + 1 < len(parts):
            continue  # a type cast (…/microsoft.graph.user/…) narrows, it names nothing
        segments.extend(_canonical_segment(segment))
    return "/" + "/".join(segments)
