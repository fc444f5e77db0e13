"""Azure AD Graph (graph.windows.net) request URIs: the same facts as for Microsoft Graph.

AzureADGraphActivityLogs logs ``requestUri`` relative to the host and addressed to a tenant:
``/{tenant}/users?api-version=1.6``, ``/myorganization/groups/{id}/$links/members``,
``/contoso.onmicrosoft.com/tenantDetails``; records from Microsoft's gateway add a ``/v2``
prefix (``/v2/{tenant}/users``). The template is the path after those two segments, analysed
like a Microsoft Graph path (``graphsentry.ingest.uri``), so ``/groups/{id}/$links/members``,
``/directoryObjects/{id}/Microsoft.DirectoryServices.User``.

Families use the Microsoft Graph names wherever Azure AD Graph has an equivalent, so that the
directory detectors count one family per kind of object whichever API was used:
``tenantDetails`` is ``organization``; ``roleDefinitions``, ``roleAssignments`` and
``eligibleRoleAssignments`` are ``roleManagement``; ``authorizationPolicy`` is ``policies``;
``settings`` is ``groupSettings``; ``applicationRefs`` is ``applications``. All of them are in
the ``directory`` category, as are users, groups, servicePrincipals, applications, devices,
directoryRoles, contacts, oauth2PermissionGrants, policies, administrativeUnits, domains and
directoryObjects (the Microsoft Graph table).
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urlsplit

from graphsentry.ingest.uri import DIRECTORY, TOP_FAMILIES, UriInfo, analyze_path, analyze_query

# Azure AD Graph top-level word (lower case) -> (family, category) where it differs from
# Microsoft Graph's TOP_FAMILIES.
AAD_FAMILIES: dict[str, tuple[str, str]] = {
    "tenantdetails": ("organization", DIRECTORY),
    "roledefinitions": ("roleManagement", DIRECTORY),
    "roleassignments": ("roleManagement", DIRECTORY),
    "eligibleroleassignments": ("roleManagement", DIRECTORY),
    "authorizationpolicy": ("policies", DIRECTORY),
    "settings": ("groupSettings", DIRECTORY),
    "applicationrefs": ("applications", DIRECTORY),
    "serviceprincipalsbyappid": ("servicePrincipals", DIRECTORY),
    "deleteddirectoryobjects": ("directoryObjects", DIRECTORY),
    "getobjectsbyobjectids": ("directoryObjects", DIRECTORY),
    "ismemberof": ("groups", DIRECTORY),
}
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
_GATEWAY_PREFIX = re.compile(r"v\d+(?:\.\d+)?", re.I)


@lru_cache(maxsize=4096)
def analyze_aad_graph_uri(uri: str) -> UriInfo:
    """Template, family, category, targets and query facts of one Azure AD Graph RequestUri
    (relative or absolute). Never raises."""
    try:
        parts = urlsplit(uri)
        path, query = parts.path, parts.query
    except ValueError:  # e.g. an unbalanced "[" taken for an IPv6 host: keep the path part
        path, _, query = uri.partition("#")[0].partition("?")
    segments = [segment for segment in path.split("/") if segment]
    start = 1 if len(segments) > 1 and _GATEWAY_PREFIX.fullmatch(segments[0]) else 0
    if start < len(segments) and _is_tenant(segments[start]):
        start += 1
    rest = segments[start:]
    info = analyze_path("/" + "/".join(rest))
    top = rest[0].partition("(")[0].lower() if rest else ""
    family = AAD_FAMILIES.get(top)
    if family is not None:
        info = info._replace(family=family[0], category=family[1])
    top_n, has_search, has_filter = analyze_query(query) if query else (None, False, False)
    return UriInfo(info, top_n, has_search, has_filter)


def _is_tenant(segment: str) -> bool:
    """A tenant address: its id, a verified domain, or ``myorganization`` (never ``me``)."""
    lower = segment.lower()
    if lower in TOP_FAMILIES or lower in AAD_FAMILIES:
        return False
    return lower == "myorganization" or "." in lower or _GUID.fullmatch(lower) is not None


def clear_caches() -> None:
    analyze_aad_graph_uri.cache_clear()
