"""What graphsentry knows about Microsoft: first-party apps, Graph permission tiers, and the
requests Microsoft clients make when they start.

Package data under ``detectors/data/``, read lazily (``importlib.resources``) on first use and
kept for the life of the process (``reload()`` forgets it):

* ``microsoft_info/first_party_apps.csv`` (``app_id,display_name,source``) and
  ``microsoft_info/graph_permissions.csv`` (``name,kind,id,display_name,description``, kind
  ``application`` for app roles, ``delegated`` for scopes): a normalised snapshot of
  ``merill/microsoft-info`` (MIT; provenance in ``microsoft_info/MANIFEST.json``, licence and
  refresh instructions beside it), written by ``graphsentry enrich refresh-msinfo``.
* ``permission_tiers.json``: how a permission's tier is derived, and the override table.
* ``client_startup.csv`` (``method,template,note``): requests Microsoft clients send on every
  launch, after elastic/detection-rules #5860 (rule 2a3f38a8…, exclusions of 2026-03-20).

Tiers, low to high (:data:`TIERS`): ``low`` (the signed-in user's own data, narrowly granted
access, basic reads, the sign-in scopes), ``medium`` (tenant-wide reads), ``high`` (tenant-wide
writes, tenant-wide reads of sensitive content such as mail, files, chats), ``critical``
(can take over the tenant or grant itself more). Rules in ``permission_tiers.json``; see
:func:`permission_tier`. Pure Python: no Bytewax, Kafka or Redis.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Literal, cast

from detectors.templates import canonical_template

Tier = Literal["low", "medium", "high", "critical"]
PermissionKind = Literal["application", "delegated"]
TIERS: tuple[Tier, ...] = ("low", "medium", "high", "critical")
"""The tiers in ascending order of privilege."""
KINDS: tuple[PermissionKind, ...] = ("application", "delegated")
PRIVILEGED_TIER: Tier = "medium"
"""The lowest tier whose permissions :class:`Privileges` lists as privileged."""

APPS_FILE = "first_party_apps.csv"
PERMISSIONS_FILE = "graph_permissions.csv"
APPS_COLUMNS = ("app_id", "display_name", "source")
PERMISSIONS_COLUMNS = ("name", "kind", "id", "display_name", "description")
STARTUP_COLUMNS = ("method", "template", "note")
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
SUBTREE = "/**"
"""A start-up pattern ending in this matches the template and everything below it."""

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_PERMISSION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]*(?:\.[A-Za-z][A-Za-z0-9-]*){1,2}$")


@dataclass(frozen=True, slots=True)
class Permission:
    """One Graph permission of the snapshot."""

    name: str
    kind: PermissionKind
    id: str
    display_name: str
    description: str


@dataclass(frozen=True, slots=True)
class Privileges:
    """What a token's ``roles`` / ``scopes`` claims allow, summarised.

    ``tier``: the highest tier among the permissions (``low`` when there are none).
    ``privileged``: the names at :data:`PRIVILEGED_TIER` or above, sorted, without duplicates.
    ``app_only``: True for an app-only token (roles, no scopes), False for a delegated one or
    when both claims are empty. ``unknown``: the names the snapshot does not list, sorted.
    """

    tier: Tier
    privileged: tuple[str, ...]
    app_only: bool
    unknown: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TierRules:
    """``permission_tiers.json``, parsed (field meanings there and in :func:`derive_tier`)."""

    default_tier: Tier
    tenant_constraints: frozenset[str]
    narrow_constraints: frozenset[str]
    delegated_tenant_words: frozenset[str]
    delegated_own_phrases: tuple[str, ...]
    read_operations: frozenset[str]
    basic_operations: frozenset[str]
    sensitive_resources: frozenset[str]
    overrides: Mapping[tuple[str, PermissionKind], tuple[Tier, str]]


# -- parsing (also used by graphsentry's refresh to validate what it writes) ------------------

def _rows(text: str, columns: tuple[str, ...], what: str) -> Iterable[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or tuple(header) != columns:
        raise ValueError(f"{what}: header must be {','.join(columns)}, got {header}")
    for number, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) != len(columns):
            raise ValueError(f"{what} line {number}: {len(row)} fields, expected {len(columns)}")
        yield number, row


def parse_first_party_apps(text: str, what: str = APPS_FILE) -> dict[str, tuple[str, str]]:
    """``app_id -> (display_name, source)`` from the apps CSV; ValueError on a bad line."""
    apps: dict[str, tuple[str, str]] = {}
    for number, (app_id, name, source) in _rows(text, APPS_COLUMNS, what):
        if not GUID.match(app_id):
            raise ValueError(f"{what} line {number}: app_id is not a lower-case GUID: {app_id!r}")
        if app_id in apps:
            raise ValueError(f"{what} line {number}: duplicate app_id {app_id}")
        apps[app_id] = (name, source)
    return apps


def parse_permissions(text: str, what: str = PERMISSIONS_FILE) -> list[Permission]:
    """The permissions CSV; ValueError on a bad line or a duplicate (name, kind)."""
    seen: set[tuple[str, str]] = set()
    permissions: list[Permission] = []
    for number, (name, kind, pid, display, description) in _rows(text, PERMISSIONS_COLUMNS,
                                                                 what):
        if kind not in KINDS:
            raise ValueError(f"{what} line {number}: kind must be one of {KINDS}: {kind!r}")
        if not name or (name.lower(), kind) in seen:
            raise ValueError(f"{what} line {number}: empty or duplicate permission {name!r}")
        seen.add((name.lower(), kind))
        permissions.append(Permission(name, kind, pid, display, description))
    return permissions


def _str_list(data: Mapping[str, object], key: str) -> list[str]:
    value = data.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"permission_tiers.json: {key} must be a list of strings")
    return cast(list[str], value)


def _tier(value: object, where: str) -> Tier:
    if value not in TIERS:
        raise ValueError(f"permission_tiers.json: {where}: tier must be one of {TIERS}: {value!r}")
    return value


def parse_tier_rules(text: str) -> TierRules:
    """``permission_tiers.json``; ValueError naming the bad field or override."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("permission_tiers.json: expected an object")
    overrides: dict[tuple[str, PermissionKind], tuple[Tier, str]] = {}
    entries = data.get("overrides")
    if not isinstance(entries, list):
        raise ValueError("permission_tiers.json: overrides must be a list")
    for index, entry in enumerate(entries):
        where = f"overrides[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("permission"), str) \
                or not isinstance(entry.get("reason"), str) or not entry["reason"].strip():
            raise ValueError(f"permission_tiers.json: {where} needs permission and reason")
        kind = entry.get("kind", "any")
        kinds = KINDS if kind == "any" else (kind,)
        if not set(kinds) <= set(KINDS):
            raise ValueError(f"permission_tiers.json: {where}: kind must be any, application "
                             f"or delegated: {kind!r}")
        for one in kinds:
            key = (entry["permission"].lower(), one)
            if key in overrides:
                raise ValueError(f"permission_tiers.json: {where}: {entry['permission']} "
                                 "overridden twice")
            overrides[key] = (_tier(entry.get("tier"), where), entry["reason"])
    return TierRules(
        default_tier=_tier(data.get("default_tier"), "default_tier"),
        tenant_constraints=frozenset(_str_list(data, "tenant_constraints")),
        narrow_constraints=frozenset(_str_list(data, "narrow_constraints")),
        delegated_tenant_words=frozenset(w.lower() for w in
                                         _str_list(data, "delegated_tenant_words")),
        delegated_own_phrases=tuple(p.lower() for p in _str_list(data, "delegated_own_phrases")),
        read_operations=frozenset(_str_list(data, "read_operations")),
        basic_operations=frozenset(_str_list(data, "basic_operations")),
        sensitive_resources=frozenset(_str_list(data, "sensitive_resources")),
        overrides=overrides,
    )


def parse_client_startup(text: str) -> list[tuple[str, str, str]]:
    """``(method, template pattern, note)`` rows of ``client_startup.csv``; ValueError when a
    method is unknown, a note is empty or a template is not in canonical form."""
    entries: list[tuple[str, str, str]] = []
    for number, (method, template, note) in _rows(text, STARTUP_COLUMNS, "client_startup.csv"):
        base = template[:-len(SUBTREE)] if template.endswith(SUBTREE) else template
        if method not in HTTP_METHODS:
            raise ValueError(f"client_startup.csv line {number}: unknown method {method!r}")
        if not note.strip():
            raise ValueError(f"client_startup.csv line {number}: the note (source) is empty")
        if not base.startswith("/") or canonical_template(base) != base:
            raise ValueError(f"client_startup.csv line {number}: {template!r} is not canonical "
                             f"(expected {canonical_template(base)!r})")
        entries.append((method, template, note))
    return entries


# -- the shipped data, loaded once --------------------------------------------------------

def _read(*parts: str) -> str:
    return resources.files("detectors").joinpath("data", *parts).read_text(encoding="utf-8")


@cache
def _apps() -> dict[str, tuple[str, str]]:
    return parse_first_party_apps(_read("microsoft_info", APPS_FILE))


@cache
def _permissions() -> dict[tuple[str, PermissionKind], Permission]:
    return {(p.name.lower(), p.kind): p
            for p in parse_permissions(_read("microsoft_info", PERMISSIONS_FILE))}


@cache
def tier_rules() -> TierRules:
    """The shipped ``permission_tiers.json``."""
    return parse_tier_rules(_read("permission_tiers.json"))


@cache
def _startup() -> tuple[frozenset[tuple[str, str]], tuple[tuple[str, str], ...]]:
    exact: set[tuple[str, str]] = set()
    subtrees: list[tuple[str, str]] = []
    for method, template, _ in parse_client_startup(_read("client_startup.csv")):
        if template.endswith(SUBTREE):
            subtrees.append((method, template[:-len(SUBTREE)]))
        else:
            exact.add((method, template))
    return frozenset(exact), tuple(subtrees)


def snapshot_manifest() -> dict[str, object]:
    """``microsoft_info/MANIFEST.json``: upstream repository, commit, date, files, counts."""
    data = json.loads(_read("microsoft_info", "MANIFEST.json"))
    if not isinstance(data, dict):
        raise ValueError("MANIFEST.json: expected an object")
    return cast(dict[str, object], data)


def reload() -> None:
    """Forget the loaded data (after a refresh of the snapshot in this process)."""
    for cached in (_apps, _permissions, tier_rules, _startup):
        cached.cache_clear()
    for memo in (_tier_of, privileges):
        memo.cache_clear()


# -- first-party applications -------------------------------------------------------------

def _app_key(app_id: str | None) -> str:
    return (app_id or "").strip().lower()


def is_first_party(app_id: str | None) -> bool:
    """True when ``app_id`` (any case, surrounding spaces ignored) is a Microsoft first-party
    application of the shipped snapshot."""
    return _app_key(app_id) in _apps()


def first_party_name(app_id: str | None) -> str | None:
    """The display name of a first-party ``app_id`` (None when unknown or unnamed)."""
    found = _apps().get(_app_key(app_id))
    return (found[0] or None) if found else None


def first_party_count() -> int:
    """How many first-party app ids the snapshot holds."""
    return len(_apps())


# -- permissions --------------------------------------------------------------------------

def permission(name: str, kind: PermissionKind) -> Permission | None:
    """The snapshot's entry for ``name`` (case-insensitive) of ``kind``, or None."""
    return _permissions().get((name.strip().lower(), kind))


def permissions() -> list[Permission]:
    """Every permission of the snapshot, in file order (sorted by name, then kind)."""
    return list(_permissions().values())


def derive_tier(name: str, kind: PermissionKind, description: str | None,
                rules: TierRules) -> Tier:
    """The tier of one permission by ``rules`` (``permission_tiers.json``):

    1. an override for (name, kind) wins;
    2. a name that is not ``Resource.Operation[.Constraint]`` gets ``default_tier``;
    3. breadth: a constraint in ``narrow_constraints`` (or the ``Selected`` operation) is
       narrow; application permissions are otherwise tenant-wide (no signed-in user bounds
       them); delegated ones are tenant-wide with a constraint in ``tenant_constraints``, or
       when the description names the organization/tenant/directory and not the user's own
       data, else the user's own;
    4. narrow or own → ``low``; tenant-wide: write (an operation that is neither ``Read…``
       without ``Write``/``Update`` nor in ``read_operations``) → ``high``; basic read
       (``basic_operations``) → ``low``; read of a ``sensitive_resources`` resource →
       ``high``; other reads → ``medium``.
    """
    key = (name.lower(), kind)
    if key in rules.overrides:
        return rules.overrides[key][0]
    if not _PERMISSION_NAME.match(name):
        return rules.default_tier
    resource, operation, *rest = name.split(".")
    constraint = rest[0] if rest else ""
    if constraint in rules.narrow_constraints or operation.startswith("Selected"):
        return "low"
    if kind == "delegated" and constraint not in rules.tenant_constraints \
            and not _tenant_wide_description(description, rules):
        return "low"
    reads = (operation.startswith("Read") and "Write" not in operation
             and "Update" not in operation) or operation in rules.read_operations
    if not reads:
        return "high"
    if operation in rules.basic_operations:
        return "low"
    return "high" if resource in rules.sensitive_resources else "medium"


def _tenant_wide_description(description: str | None, rules: TierRules) -> bool:
    if not description:
        return False
    text = description.lower().replace("\u2019", "'")
    if any(phrase in text for phrase in rules.delegated_own_phrases):
        return False
    words = set(re.findall(r"[a-z]+", text))  # "organization's" counts as "organization"
    return not words.isdisjoint(rules.delegated_tenant_words)


@lru_cache(maxsize=8192)
def _tier_of(name: str, kind: PermissionKind) -> tuple[Tier, bool]:
    found = permission(name, kind)
    tier = derive_tier(found.name if found else name, kind,
                       found.description if found else None, tier_rules())
    return tier, found is not None


def permission_tier(name: str, kind: PermissionKind) -> Tier:
    """The privilege tier of the Graph permission ``name`` granted as ``kind`` (an app role in
    ``roles`` is ``application``, a scope in ``scopes`` is ``delegated``). Names the snapshot
    does not list are derived from the name alone (see :func:`derive_tier`)."""
    return _tier_of(name.strip(), kind)[0]


def tier_rank(tier: Tier) -> int:
    """0 for ``low`` … 3 for ``critical`` (for comparisons)."""
    return TIERS.index(tier)


@lru_cache(maxsize=4096)
def privileges(roles: str | None, scopes: str | None) -> Privileges:
    """Summarise a Graph activity record's ``roles`` and ``scopes`` claims (space-separated
    permission names; None or "" when absent; see ../shared/docs/graph-activity-logs.md 4.4).
    They say what the token *could* do, not what the request used."""
    role_names = sorted(set((roles or "").split()))
    scope_names = sorted(set((scopes or "").split()))
    best = 0
    privileged: set[str] = set()
    unknown: set[str] = set()
    threshold = tier_rank(PRIVILEGED_TIER)
    pairs = [(n, "application") for n in role_names] + [(n, "delegated") for n in scope_names]
    for name, kind in pairs:
        tier, known = _tier_of(name, cast(PermissionKind, kind))
        rank = tier_rank(tier)
        best = max(best, rank)
        if rank >= threshold:
            privileged.add(name)
        if not known:
            unknown.add(name)
    return Privileges(tier=TIERS[best], privileged=tuple(sorted(privileged)),
                      app_only=bool(role_names) and not scope_names,
                      unknown=tuple(sorted(unknown)))


# -- Microsoft clients' start-up requests -------------------------------------------------

def is_client_startup(method: str, template: str) -> bool:
    """True when ``method`` + resource ``template`` (any spelling ``canonical_template``
    accepts: ``/v1.0/me/photos/{id}/$value`` …) is a request Microsoft clients send on every
    launch (``client_startup.csv``): profile photo, licence details, organization, regional
    settings, Copilot upload folder, sensitivity labels, DLP policies."""
    verb = method.strip().upper()
    canonical = canonical_template(template)
    exact, subtrees = _startup()
    if (verb, canonical) in exact:
        return True
    return any(verb == m and (canonical == base or canonical.startswith(base + "/"))
               for m, base in subtrees)


def client_startup_patterns() -> list[tuple[str, str, str]]:
    """The shipped ``(method, template pattern, note)`` rows."""
    return parse_client_startup(_read("client_startup.csv"))
