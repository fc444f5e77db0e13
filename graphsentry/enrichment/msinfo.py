"""Refresh the shipped Microsoft snapshot (``detectors/data/microsoft_info/``) from
``merill/microsoft-info`` (MIT): first-party application ids and Graph permissions.

Reads the four upstream CSVs and the licence from a base URL (default: the repository's
``main`` on raw.githubusercontent.com; upstream paths ``_info/…`` and ``customdata/…``) or a
local directory (those files side by side, as in ``../shared/data/microsoft-info``, or a clone
with the upstream layout). It normalises them (lower-case GUIDs, whitespace and mis-decoded
non-breaking spaces in names, upstream's " [Community Contributed]" suffix dropped), drops what
is not a first-party app id (malformed ids, Graph permission ids, placeholder GUIDs listed in
Microsoft's documentation such as ``00000000-…`` or ``11111111-…``, ids listed twice: first
listing wins, as upstream's precedence Graph > Learn/EntraDocs > GitHub), checks the result,
and writes sorted CSVs, ``MANIFEST.json`` (commit, date, sha256 of the upstream files, counts),
the licence and a README, each file replaced atomically.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import sys
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from detectors import microsoft
from graphsentry.errors import GraphsentryError

UPSTREAM_REPO = "merill/microsoft-info"
UPSTREAM_BASE = f"https://raw.githubusercontent.com/{UPSTREAM_REPO}/main"
# file name -> its path in the upstream repository
UPSTREAM_FILES = {
    "MicrosoftApps.csv": "_info/MicrosoftApps.csv",
    "OtherMicrosoftApps.csv": "customdata/OtherMicrosoftApps.csv",
    "GraphAppRoles.csv": "_info/GraphAppRoles.csv",
    "GraphDelegateRoles.csv": "_info/GraphDelegateRoles.csv",
    "LICENSE": "LICENSE",
}
APP_COLUMNS = ("AppId", "AppDisplayName")
ROLE_COLUMNS = {"GraphAppRoles.csv": ("Id", "Value", "DisplayName", "Description"),
                "GraphDelegateRoles.csv": ("Id", "Value", "AdminConsentDisplayName",
                                           "AdminConsentDescription")}
MIN_APPS = 100
MIN_PERMISSIONS = 100  # per kind
MAX_SHRINK = 0.5  # refuse (without --force) a snapshot with under half the current rows
MAX_DOWNLOAD_BYTES = 32 << 20
TIMEOUT_S = 30.0
COMMUNITY_SUFFIX = " [Community Contributed]"
_WELL_KNOWN = re.compile(r"^0000[0-9a-f]{4}-0000-0(?:000-c000|ff1-ce00)-000000000000$")
_RUN = re.compile(r"(.)\1{5}")
_COMMIT = re.compile(r"commit\s+([0-9a-f]{40})(?:\s*\((\d{4}-\d{2}-\d{2})\))?")
_SHA = re.compile(r"^[0-9a-f]{40}$")


@dataclass
class Upstream:
    """The upstream files' text and where they came from."""

    origin: str
    texts: dict[str, str]
    sha256: dict[str, str]
    commit: str | None = None
    commit_date: str | None = None
    ref: str | None = None


@dataclass
class Snapshot:
    apps: list[tuple[str, str, str]]  # (app_id, display_name, source), sorted by app_id
    permissions: list[tuple[str, str, str, str, str]]  # sorted by (name, kind)
    excluded: Counter[str] = field(default_factory=Counter)


def is_placeholder(app_id: str) -> bool:
    """A documentation placeholder or low-entropy GUID (nil, ``11111111-…``, ``1aaaaaa1-…``)
    rather than an issued id; Microsoft's well-known service ids (``0000000x-0000-0000-c000-…``,
    ``0000000x-0000-0ff1-ce00-…``) excepted. Random GUIDs have ~13 distinct hex digits."""
    if _WELL_KNOWN.match(app_id):
        return False
    digits = app_id.replace("-", "")
    return len(set(digits)) <= 3 or _RUN.search(digits) is not None


def clean_text(value: str | None) -> str:
    """Whitespace collapsed, UTF-8 non-breaking spaces mis-decoded as Latin-1 ("Â\\xa0") fixed."""
    return " ".join((value or "").replace("\u00c2\u00a0", " ").split())


def clean_id(value: str | None) -> str:
    return "".join((value or "").replace("\u00c2", "").split()).lower()


# -- reading ------------------------------------------------------------------------------

def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _download(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "graphsentry refresh-msinfo"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            data: bytes = response.read(MAX_DOWNLOAD_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise GraphsentryError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise GraphsentryError(f"cannot download {url}: {reason} (offline? refresh from a "
                               "local copy with --from DIR)") from exc
    if len(data) > MAX_DOWNLOAD_BYTES:
        raise GraphsentryError(f"{url} is larger than {MAX_DOWNLOAD_BYTES >> 20} MiB")
    return data


def _github_ref(base: str) -> tuple[str, str] | None:
    """(owner/repo, ref) of a raw.githubusercontent.com base URL."""
    match = re.match(r"^https://raw\.githubusercontent\.com/([^/]+/[^/]+)/(.+?)/?$", base)
    return (match.group(1), match.group(2)) if match else None


def _resolve_commit(repo: str, ref: str) -> tuple[str | None, str | None]:
    """Best effort (GitHub's API may be unreachable or rate-limited): (sha, date) of ``ref``."""
    if _SHA.match(ref):
        return ref, None
    try:
        data = json.loads(_download(f"https://api.github.com/repos/{repo}/commits/{ref}"))
        return str(data["sha"]), str(data["commit"]["committer"]["date"])[:10]
    except (GraphsentryError, ValueError, KeyError, TypeError):
        return None, None


def read_upstream(source: str, progress: Any = None) -> Upstream:
    """The upstream files from a base URL or a local directory (GraphsentryError when one is
    missing or cannot be downloaded)."""
    raw: dict[str, bytes] = {}
    if _is_url(source):
        base = source.rstrip("/")
        for name, path in UPSTREAM_FILES.items():
            if progress:
                progress(f"downloading {base}/{path}")
            raw[name] = _download(f"{base}/{path}")
    else:
        folder = Path(source)
        if not folder.is_dir():
            raise GraphsentryError(f"{source} is not a directory (nor an http(s) URL)")
        for name, path in UPSTREAM_FILES.items():
            candidates = [folder / name, folder / path]
            found = next((c for c in candidates if c.is_file()), None)
            if found is None:
                raise GraphsentryError(f"{source} has no {name} (nor {path})")
            raw[name] = found.read_bytes()
    texts = {name: data.decode("utf-8-sig", errors="replace") for name, data in raw.items()}
    upstream = Upstream(origin=source, texts=texts,
                        sha256={n: hashlib.sha256(d).hexdigest() for n, d in raw.items()})
    if _is_url(source):
        located = _github_ref(source.rstrip("/"))
        if located:
            upstream.ref = located[1]
            upstream.commit, upstream.commit_date = _resolve_commit(*located)
    else:
        sources_md = Path(source) / "SOURCES.md"
        if sources_md.is_file():
            match = _COMMIT.search(sources_md.read_text(encoding="utf-8", errors="replace"))
            if match:
                upstream.commit, upstream.commit_date = match.group(1), match.group(2)
    return upstream


# -- normalising --------------------------------------------------------------------------

def _dict_rows(name: str, text: str, columns: tuple[str, ...]) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in columns if c not in (reader.fieldnames or [])]
    if missing:
        raise GraphsentryError(f"{name}: missing columns {', '.join(missing)} (got "
                               f"{', '.join(reader.fieldnames or []) or 'no header'}); "
                               "is this the upstream CSV?")
    return list(reader)


def build_snapshot(upstream: Upstream) -> Snapshot:
    """Normalise and filter the upstream files (GraphsentryError when they look wrong)."""
    if "MIT License" not in upstream.texts["LICENSE"]:
        raise GraphsentryError("the upstream LICENSE is no longer the MIT License: review the "
                               "new terms before shipping its data")
    permissions: dict[tuple[str, str], tuple[str, str, str, str, str]] = {}
    permission_ids: set[str] = set()
    for file, kind in (("GraphAppRoles.csv", "application"),
                       ("GraphDelegateRoles.csv", "delegated")):
        id_col, value_col, display_col, description_col = ROLE_COLUMNS[file]
        for row in _dict_rows(file, upstream.texts[file], ROLE_COLUMNS[file]):
            name = clean_text(row[value_col])
            permission_ids.add(clean_id(row[id_col]))
            if name and (name.lower(), kind) not in permissions:
                permissions[(name.lower(), kind)] = (
                    name, kind, clean_id(row[id_col]), clean_text(row[display_col]),
                    clean_text(row[description_col]))
    snapshot = Snapshot(apps=[], permissions=sorted(permissions.values(),
                                                    key=lambda p: (p[0].lower(), p[1])))
    apps: dict[str, tuple[str, str, str]] = {}
    for file in ("MicrosoftApps.csv", "OtherMicrosoftApps.csv"):
        for row in _dict_rows(file, upstream.texts[file], APP_COLUMNS):
            app_id = clean_id(row["AppId"])
            source = clean_text(row.get("Source")) or "GitHub"
            name = clean_text(row["AppDisplayName"])
            name = name[:-len(COMMUNITY_SUFFIX)] if name.endswith(COMMUNITY_SUFFIX) else name
            if not microsoft.GUID.match(app_id):
                snapshot.excluded["malformed ids"] += 1
            elif app_id in permission_ids:
                snapshot.excluded["Graph permission ids"] += 1
            elif source != "Graph" and is_placeholder(app_id):
                snapshot.excluded["placeholder GUIDs"] += 1
            elif app_id in apps:
                snapshot.excluded["ids listed twice"] += 1
            else:
                apps[app_id] = (app_id, name, source)
    snapshot.apps = sorted(apps.values())
    kinds = Counter(p[1] for p in snapshot.permissions)
    if len(snapshot.apps) < MIN_APPS or min(kinds[k] for k in microsoft.KINDS) < MIN_PERMISSIONS:
        raise GraphsentryError(
            f"the upstream files look truncated: {len(snapshot.apps)} apps, "
            f"{kinds['application']} application and {kinds['delegated']} delegated "
            f"permissions (expected at least {MIN_APPS} and {MIN_PERMISSIONS} of each)")
    return snapshot


# -- writing ------------------------------------------------------------------------------

def default_output() -> Path:
    """The package's own snapshot directory (the repository's in an editable install)."""
    return Path(microsoft.__file__).resolve().parent / "data" / "microsoft_info"


def _csv_text(columns: tuple[str, ...], rows: list[Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue()


def _readme(manifest: dict[str, Any]) -> str:
    counts = manifest["counts"]
    by_kind = ", ".join(f"{n} {kind}" for kind, n in counts["permissions"].items())
    by_source = ", ".join(f"{n} {source}" for source, n in counts["apps_by_source"].items())
    excluded = ", ".join(f"{n} {why}" for why, n in counts["excluded"].items()) or "none"
    apps = f"{counts['first_party_apps']}: {by_source}"
    return f"""# Microsoft first-party applications and Graph permissions (third-party data)

Derived from [{UPSTREAM_REPO}](https://github.com/{UPSTREAM_REPO}) by Merill Fernando, MIT
License (full text in `LICENSE` here): `_info/MicrosoftApps.csv`,
`customdata/OtherMicrosoftApps.csv`, `_info/GraphAppRoles.csv`, `_info/GraphDelegateRoles.csv`
at upstream commit `{manifest["upstream_commit"] or "unknown"}`
({manifest["upstream_commit_date"] or "date unknown"}), read from `{manifest["retrieved_from"]}`
on {manifest["refreshed"][:10]}. Upstream rebuilds them twice a day from Microsoft Graph
(service principals owned by Microsoft's tenants; the Graph service principal's app roles and
delegated scopes), Microsoft Learn / Entra documentation and community contributions.

Changed here by `graphsentry enrich refresh-msinfo` (`graphsentry/enrichment/msinfo.py`):
columns reduced to what graphsentry uses, ids lower-cased, whitespace and mis-decoded
non-breaking spaces fixed, upstream's " [Community Contributed]" suffix dropped, rows sorted so
that refreshes give readable diffs. Not kept as first-party apps: {excluded} (documentation
placeholders are low-entropy GUIDs such as `00000000-…` or `11111111-…`).

| file | rows |
|---|---|
| `first_party_apps.csv` (`app_id,display_name,source`) | {apps} |
| `graph_permissions.csv` (`name,kind,id,display_name,description`) | {by_kind} |

The `EntraDocs` rows are GUIDs listed next to a name in Entra documentation: first-party apps
(Microsoft Office, Azure PowerShell, …) but also licence SKU, Azure role and authenticator ids.
They are kept because such ids are never issued as application ids, so they cannot mislabel an
app. `MANIFEST.json` records the sha256 of each upstream file. To refresh (network), or rebuild
from a local copy, then review the diff and run the tests:

```sh
graphsentry enrich refresh-msinfo     # from {UPSTREAM_BASE}
graphsentry enrich refresh-msinfo --from ../shared/data/microsoft-info
```
"""


def write_snapshot(snapshot: Snapshot, upstream: Upstream, output: Path,
                   force: bool = False) -> dict[str, Any]:
    """Validate and write the snapshot into ``output``; the manifest, with a ``changes``
    summary against what was there."""
    apps_text = _csv_text(microsoft.APPS_COLUMNS, snapshot.apps)
    permissions_text = _csv_text(microsoft.PERMISSIONS_COLUMNS, snapshot.permissions)
    new_apps = microsoft.parse_first_party_apps(apps_text)  # what readers will see
    new_permissions = {(p.name, p.kind) for p in microsoft.parse_permissions(permissions_text)}
    old_apps, old_permissions = _current(output)
    if not force and old_apps and (len(new_apps) < MAX_SHRINK * len(old_apps)
                                   or len(new_permissions) < MAX_SHRINK * len(old_permissions)):
        raise GraphsentryError(
            f"refusing to replace {len(old_apps)} apps / {len(old_permissions)} permissions "
            f"with {len(new_apps)} / {len(new_permissions)}; check the source or pass --force")
    manifest: dict[str, Any] = {
        "upstream": f"https://github.com/{UPSTREAM_REPO}",
        "license": "MIT",
        "upstream_commit": upstream.commit,
        "upstream_commit_date": upstream.commit_date,
        "upstream_ref": upstream.ref,
        "retrieved_from": upstream.origin,
        "refreshed": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "files": {UPSTREAM_FILES[n]: {"sha256": s} for n, s in sorted(upstream.sha256.items())},
        "counts": {
            "first_party_apps": len(new_apps),
            "apps_by_source": dict(sorted(Counter(s for _, s in new_apps.values()).items())),
            "permissions": dict(sorted(Counter(k for _, k in new_permissions).items())),
            "excluded": dict(sorted(snapshot.excluded.items())),
        },
    }
    files = {
        microsoft.APPS_FILE: apps_text,
        microsoft.PERMISSIONS_FILE: permissions_text,
        "LICENSE": upstream.texts["LICENSE"],
        "MANIFEST.json": json.dumps(manifest, indent=2) + "\n",
        "README.md": _readme(manifest),
    }
    try:
        output.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            temporary = output / f".{name}.tmp"
            temporary.write_text(text, encoding="utf-8")
            os.replace(temporary, output / name)
    except OSError as exc:
        raise GraphsentryError(f"cannot write the snapshot into {output}: {exc.strerror} "
                               "(pass --output DIR)") from exc
    manifest["changes"] = {
        "apps_added": len(new_apps.keys() - old_apps),
        "apps_removed": len(old_apps - new_apps.keys()),
        "permissions_added": len(new_permissions - old_permissions),
        "permissions_removed": len(old_permissions - new_permissions),
    }
    return manifest


def _current(output: Path) -> tuple[set[str], set[tuple[str, microsoft.PermissionKind]]]:
    try:
        apps = set(microsoft.parse_first_party_apps(
            (output / microsoft.APPS_FILE).read_text(encoding="utf-8")))
        permissions = {(p.name, p.kind) for p in microsoft.parse_permissions(
            (output / microsoft.PERMISSIONS_FILE).read_text(encoding="utf-8"))}
    except (OSError, ValueError):
        return set(), set()
    return apps, permissions


def missing_overrides(permission_rows: list[tuple[str, str, str, str, str]]) -> list[str]:
    """Override-table entries (``permission_tiers.json``) naming no permission of the rows."""
    present = {(name.lower(), kind) for name, kind, *_ in permission_rows}
    return sorted(f"{name} ({kind})" for name, kind in microsoft.tier_rules().overrides
                  if (name, kind) not in present)


def refresh(source: str, output: Path | None = None, force: bool = False) -> dict[str, Any]:
    """Read, normalise, validate and write; progress and the summary on stderr."""
    def say(message: str) -> None:
        print(f"refresh-msinfo: {message}", file=sys.stderr)

    upstream = read_upstream(source, progress=say)
    snapshot = build_snapshot(upstream)
    target = output or default_output()
    manifest = write_snapshot(snapshot, upstream, target, force=force)
    if target.resolve() == default_output():
        microsoft.reload()
    counts, changes = manifest["counts"], manifest["changes"]
    excluded = ", ".join(f"{n} {why}" for why, n in counts["excluded"].items()) or "none"
    say(f"{UPSTREAM_REPO} at {(upstream.commit or upstream.ref or 'unknown commit')[:12]} "
        f"({upstream.commit_date or 'date unknown'}) -> {target}")
    say(f"first-party apps {counts['first_party_apps']} (+{changes['apps_added']} "
        f"-{changes['apps_removed']}; not apps: {excluded}); permissions "
        f"{counts['permissions'].get('application', 0)} application, "
        f"{counts['permissions'].get('delegated', 0)} delegated "
        f"(+{changes['permissions_added']} -{changes['permissions_removed']})")
    for entry in missing_overrides(snapshot.permissions):
        say(f"warning: permission_tiers.json overrides {entry}, which upstream no longer lists")
    return manifest
