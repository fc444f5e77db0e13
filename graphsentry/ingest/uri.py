"""RequestUri analysis: resource template, family, category, targets and query flags.

The template is the path without scheme, host, API version, query or duplicate slashes, with
every identifier replaced: GUIDs, numbers, drive ids (``b!…``), item/message ids and other
opaque tokens become ``{id}``; UPNs and e-mail addresses ``{upn}``; path-based addressing
(``root:/Documents/a.txt:``) ``{path}``; key arguments (``applications(appId='…')``) ``{id}``.
A segment counts as a word (kept verbatim) when it looks like a Graph name: camelCase with at
most one group of up to three digits (``oauth2PermissionGrants``, ``x509Certificate``), a
Capitalised well-known name (``Inbox``), ``$value``/``$batch``/… or a cast
(``microsoft.graph.*``; Azure AD Graph's ``Microsoft.DirectoryServices.*``).
Case is preserved; compare templates case-insensitively.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import unquote

from graphsentry.ingest.limits import MAX_INT32

API_VERSIONS = frozenset({"v1.0", "beta"})
_new_tuple = tuple.__new__  # builds a NamedTuple from its fields without the keyword handling

_WORD = re.compile(
    r"\$[A-Za-z]+|[a-z]+[0-9]{0,3}[A-Za-z]*|[A-Z][a-z]+(?:[A-Z][a-z]+)*"
    r"|microsoft\.graph\.[A-Za-z][A-Za-z0-9]*|Microsoft\.DirectoryServices\.[A-Za-z]+",
    re.ASCII,
)
_CAST_PREFIXES = ("microsoft.graph.", "microsoft.directoryservices.")  # (the second: AAD Graph)
_MAX_WORD_CHARS = 64
_UPN = re.compile(r"[^@:/\s]+@[^@:/\s]+\.[^@:/\s]+")
_PATH_ADDRESS = re.compile(r":(/[^:]*)(:?)")
_PII_TAG = re.compile(r"</?pii>", re.IGNORECASE)
_WORDS: dict[str, str] = {}  # segment -> its lower-case word, for segments seen to be words
_WORD_SEGMENTS: dict[str, str] = {}  # the same segments, each mapped to itself
_WORD_CACHE_MAX = 50_000

STORAGE, DIRECTORY, MAIL, OTHER = "storage", "directory", "mail", "other"
AUTH_METHODS = "authentication_methods"

DIRECTORY_FAMILIES = (
    "organization", "users", "groups", "applications", "servicePrincipals", "directoryRoles",
    "directoryRoleTemplates", "roleManagement", "devices", "policies", "domains",
    "directoryObjects", "oauth2PermissionGrants", "administrativeUnits", "contacts", "identity",
    "identityGovernance", "identityProtection", "identityProviders", "invitations",
    "subscribedSkus", "schemaExtensions", "directory", "tenantRelationships", "auditLogs",
    "groupLifecyclePolicies", "groupSettings", "groupSettingTemplates", "applicationTemplates",
    "certificateBasedAuthConfiguration", "agreements", "me",
)
OTHER_FAMILIES = (
    "teams", "chats", "teamwork", "communications", "planner", "security", "deviceManagement",
    "deviceAppManagement", "reports", "subscriptions", "education", "solutions", "print",
    "external", "informationProtection", "privacy", "admin", "employeeExperience", "appCatalogs",
    "places", "storage", "connections", "compliance", "dataClassification", "copilot",
)
# Top-level path word (lower case) -> (family, category).
TOP_FAMILIES: dict[str, tuple[str, str]] = {
    **{name.lower(): (name, DIRECTORY) for name in DIRECTORY_FAMILIES},
    **{name.lower(): (name, OTHER) for name in OTHER_FAMILIES},
    "drives": ("onedrive", STORAGE), "drive": ("onedrive", STORAGE),
    "shares": ("onedrive", STORAGE), "sites": ("sharepoint", STORAGE),
    "search": ("search", "search"), "$batch": ("batch", "batch"),
}
# What a user's (/me, /users/{id}) sub-resource belongs to, by its first word (lower case).
USER_SUBRESOURCES: dict[str, tuple[str, str]] = {
    "drive": ("onedrive", STORAGE), "drives": ("onedrive", STORAGE),
    **{word: ("mail", MAIL) for word in (
        "messages", "mailfolders", "mailboxsettings", "sendmail", "events", "calendar",
        "calendars", "calendarview", "calendargroups", "contacts", "contactfolders",
        "inferenceclassification", "outlook")},
    "authentication": (AUTH_METHODS, AUTH_METHODS),
}
GROUP_SUBRESOURCES: dict[str, tuple[str, str]] = {
    "drive": ("sharepoint", STORAGE), "drives": ("sharepoint", STORAGE),
    "sites": ("sharepoint", STORAGE),
}
# POST actions that only read: not counted as writes.
READ_POST_ACTIONS = frozenset({
    "$batch", "estimateaccess", "getmemberobjects", "getmembergroups", "checkmembergroups",
    "checkmemberobjects", "getbyids", "getuserownedobjects", "validateproperties",
    "getavailableextensionproperties", "findmeetingtimes", "getschedule", "getmailtips",
    "runhuntingquery", "getstaffavailability", "preview", "delta", "getbypath",
    "getrecentnotebooks", "evaluate", "getobjectsbyobjectids", "ismemberof",
})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE", "MERGE"})


class PathInfo(NamedTuple):
    template: str
    family: str
    category: str
    target_user: str | None
    target_drive: str | None
    target_site: str | None
    target_item: str | None
    target_application: str | None
    read_post: bool
    """A POST to this path reads (search/query, $batch, estimateAccess, …)."""
    download: bool
    """A GET of this path downloads file content (…/content, drive item /$value)."""


# The shape of a plain path: its word segments, None for every other one.
Shape = tuple[str | None, ...]
# What a shape gives: its analysis, the positions that must be identifiers, and
# (PathInfo field, segment position) pairs to fill in.
ShapeInfo = tuple[PathInfo, tuple[int, ...], tuple[tuple[int, int], ...]]
_SHAPES: dict[Shape, ShapeInfo] = {}
_SHAPES_MAX = 4096
_PLACEHOLDER = "\x00"  # an identifier no path can hold: stands for the i-th segment


class UriInfo(NamedTuple):
    path: PathInfo
    query_top: int | None
    has_search: bool
    has_filter: bool


@lru_cache(maxsize=8192)  # list and polling calls repeat the same URI
def analyze_uri(uri: str) -> UriInfo:
    """Split a (repaired) RequestUri into path and query facts. Never raises."""
    cut = uri.find("#")
    if cut >= 0:
        uri = uri[:cut]
    path, _, query = uri.partition("?")
    if "://" in path[:12]:
        host_end = path.find("/", path.index("://") + 3)
        path = path[host_end:] if host_end >= 0 else "/"
    top, has_search, has_filter = analyze_query(query) if query else (None, False, False)
    return _new_tuple(UriInfo, (analyze_path(path), top, has_search, has_filter))


def clear_caches() -> None:
    """Forget every remembered URI, path, shape and word (benchmarks start cold with it)."""
    analyze_uri.cache_clear()
    _analyze_path.cache_clear()
    _SHAPES.clear()
    _WORDS.clear()
    _WORD_SEGMENTS.clear()


def is_write(method: str, info: PathInfo) -> bool:
    return method in WRITE_METHODS and not (method == "POST" and info.read_post)


def is_download(method: str, info: PathInfo) -> bool:
    return method == "GET" and info.download


def analyze_query(query: str) -> tuple[int | None, bool, bool]:
    """($top, has $search, has $filter) of a query string (without '?')."""
    top: int | None = None
    has_search = has_filter = False
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if "%" in key:
            key = unquote(key)
        key = key.strip().lstrip("$").lower()
        if key == "top":
            value = unquote(value).strip() if "%" in value else value.strip()
            if value.isascii() and value.isdigit() and len(value) <= 10 and int(value) <= MAX_INT32:
                top = int(value)
        elif key == "search":
            has_search = True
        elif key == "filter":
            has_filter = True
    return top, has_search, has_filter


def _word_of(segment: str) -> str | None:
    """The lower-case word a path segment names, or None for an identifier."""
    if ("-" in segment  # no word has one, every GUID does: a quick answer before the regex
            or len(segment) > _MAX_WORD_CHARS or not segment.isascii()
            or not _WORD.fullmatch(segment)):
        return None
    word = segment.lower()
    if word.startswith(_CAST_PREFIXES):
        word = word.partition(".")[2].partition(".")[2]
    if len(_WORDS) < _WORD_CACHE_MAX:
        _WORDS[segment] = word
        _WORD_SEGMENTS[segment] = segment
    return word


def _id_token(value: str) -> str:
    return "{upn}" if "@" in value and _UPN.fullmatch(value) else "{id}"


def _split_call(segment: str) -> tuple[str, list[tuple[str, str]] | None]:
    """``name(k='v',…)`` -> (name, [(k, v), …]); ``name('v')`` -> (name, [("", v)])."""
    if not segment.endswith(")") or "(" not in segment:
        return segment, None
    name, _, inner = segment[:-1].partition("(")
    args: list[tuple[str, str]] = []
    for arg in inner.split(","):
        key, sep, value = arg.partition("=")
        if not sep:
            key, value = "", arg
        value = value.strip().strip("'\"")
        if value:
            args.append((key.strip(), value))
    return name, args


def analyze_path(path: str) -> PathInfo:
    """Template, family, category and targets of one request path (without query).

    A plain path (no escapes, tags, addressing, calls or UPNs) is analysed once per shape:
    ``/users/{guid}/memberOf`` for every GUID costs a dictionary lookup and one identifier check
    per GUID. Anything else goes through :func:`_analyze_path`, which defines the result.
    """
    if "%" in path or "<" in path or ":" in path or ")" in path or "@" in path:
        return _analyze_path(path)
    segments = _segments(path)
    known = tuple(map(_WORD_SEGMENTS.get, segments))
    shape = _SHAPES.get(known)
    if shape is None:
        shape = _analyze_shape(known)
    info, identifiers, fill = shape
    for position in identifiers:
        if _word_of(segments[position]) is not None:  # a word seen for the first time
            return _analyze_path(path)
    if not fill:
        return info
    fields = list(info)
    for field, position in fill:
        fields[field] = segments[position]
    return _new_tuple(PathInfo, fields)


def _segments(path: str) -> list[str]:
    """Path segments without empty ones and without a leading API version."""
    segments = list(filter(None, path.split("/")))
    if segments and segments[0].lower() in API_VERSIONS:
        del segments[0]
    return segments


def _analyze_shape(known: Shape) -> ShapeInfo:
    """The analysis of a plain path whose non-word segments are placeholders (remembered)."""
    symbolic = [_PLACEHOLDER + str(i) if word is None else word for i, word in enumerate(known)]
    info = _analyze_path("/v1.0/" + "/".join(symbolic))  # one version, dropped as it would be
    identifiers = tuple(i for i, word in enumerate(known) if word is None)
    fill = tuple((field, int(value[1:])) for field, value in enumerate(info)
                 if isinstance(value, str) and value.startswith(_PLACEHOLDER))
    if len(_SHAPES) >= _SHAPES_MAX:
        _SHAPES.clear()
    shape = _SHAPES[known] = (info, identifiers, fill)
    return shape


@lru_cache(maxsize=4096)  # small: a large cache costs every full garbage collection
def _analyze_path(path: str) -> PathInfo:
    if "%" in path:
        path = unquote(path)
    if "<" in path:
        path = _PII_TAG.sub("", path)
    addressed: list[str] = []
    if ":/" in path:
        addressed = [match.group(1) for match in _PATH_ADDRESS.finditer(path)]
        path = _PATH_ADDRESS.sub(r":{path}\2", path)
    segments = _segments(path)
    tokens: list[str] = []
    words: list[str] = []  # lower-case word per position, "" for an identifier
    targets: dict[str, str] = {}
    in_drive = False
    previous = ""
    for segment in segments:
        suffix = ""
        value = segment
        if ":{path}" in segment:
            segment, _, rest = segment.partition(":")
            suffix = ":" + rest
            if addressed:
                value = f"{segment}:{addressed.pop(0)}"
        name, args = _split_call(segment) if segment[-1:] == ")" else (segment, None)
        word = _WORDS.get(name) or _word_of(name)
        if word is None:
            tokens.append(_id_token(segment) + suffix)
            words.append("")
            _note_target(targets, previous, value, in_drive)
            previous = ""
            continue
        if args is None:
            tokens.append(name + suffix)
        else:
            keys = ",".join(f"{k}={_id_token(v)}" if k else _id_token(v) for k, v in args)
            tokens.append(f"{name}({keys}){suffix}")
        words.append(word)
        if word == "drive" or word == "drives":
            in_drive = True
        elif suffix and word == "root" and in_drive:
            targets.setdefault("item", value)
        if args:  # a key argument stands for an identifier segment after the name
            words.append("")
            _note_target(targets, word, args[0][1], in_drive)
        previous = word
    family, category = _family(words)
    if words[:1] == ["me"]:
        targets.setdefault("user", "me")
    last = words[-1] if words else ""
    return PathInfo(  # (positional: keywords cost a quarter of a plain path's analysis)
        "/" + "/".join(tokens), family, category, targets.get("user"), targets.get("drive"),
        targets.get("site"), targets.get("item"), targets.get("application"),
        last in READ_POST_ACTIONS or family == "search",
        last == "content" or (last == "$value" and "item" in targets))


_TARGET_OF_WORD = {
    "users": "user", "drives": "drive", "sites": "site",
    "applications": "application", "serviceprincipals": "application",
}


def _note_target(targets: dict[str, str], word: str, value: str, in_drive: bool) -> None:
    """Record ``value`` as the target the preceding ``word`` names (first one wins)."""
    kind = _TARGET_OF_WORD.get(word)
    if kind is None and word == "items" and in_drive:
        kind = "item"
    if kind is not None and kind not in targets:
        targets[kind] = value


def _family(words: list[str]) -> tuple[str, str]:
    if not words or not words[0]:
        return OTHER, OTHER
    first = words[0]
    if first == "me":
        sub = USER_SUBRESOURCES.get(words[1]) if len(words) > 1 else None
        return sub or TOP_FAMILIES["me"]
    if first == "users" and len(words) > 2 and not words[1]:
        return USER_SUBRESOURCES.get(words[2]) or TOP_FAMILIES["users"]
    if first == "groups" and len(words) > 2 and not words[1]:
        return GROUP_SUBRESOURCES.get(words[2]) or TOP_FAMILIES["groups"]
    return TOP_FAMILIES.get(first, (OTHER, OTHER))
