"""An in-process enrichment store: the embedded mode's store and the Redis store's twin.

Apps it does not hold are answered from the shipped Microsoft snapshot when it lists them
(``graphsentry.enrichment.apps.first_party_app``); an app put with ``put_apps`` wins.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from typing import Any

from detectors.base import AppInfo
from graphsentry.enrichment.apps import first_party_app
from graphsentry.enrichment.store import (
    PROFILE_VERSIONS,
    AppEntry,
    AsnRange,
    Lookup,
    app_entry,
    ip_key,
    pick_version,
    version_field,
)


class MemoryStore:
    """Apps, ASN ranges and profile versions in dicts and sorted lists; always available, not
    durable (nothing outlives the process)."""

    def __init__(self) -> None:
        self.apps: dict[str, AppInfo] = {}
        self._starts: dict[int, list[int]] = {4: [], 6: []}
        self._ranges: dict[int, list[AsnRange]] = {4: [], 6: []}
        self._profiles: dict[str, dict[str, dict[str, Any]]] = {}

    @property
    def available(self) -> bool:
        return True

    @property
    def durable(self) -> bool:
        return False

    def lookup(self, app_ids: Iterable[str], ips: Iterable[str],
               profiles_before: Mapping[str, float]) -> Lookup:
        result = Lookup(available=True)
        for app_id in app_ids:
            info = self.get_app(app_id)
            if info is not None:
                result.apps[app_id] = info
        for ip in ips:
            found = self.asn_of(ip)
            if found is not None:
                result.asns[ip] = (found.asn, found.name)
        for key, before in profiles_before.items():
            result.profiles[key] = self.profile(key, before)
        return result

    def asn_of(self, ip: str) -> AsnRange | None:
        parsed = ip_key(ip)
        if parsed is None:
            return None
        version, value = parsed
        index = bisect.bisect_right(self._starts[version], value) - 1
        if index < 0:
            return None
        candidate = self._ranges[version][index]
        return candidate if candidate.end >= value else None

    def profile(self, key: str, before: float = float("inf")) -> Any:
        """The newest stored version of ``key``'s profile older than ``before`` (or None)."""
        from detectors.profile import Profile

        data = pick_version(self._profiles.get(key, {}), before)
        return None if data is None else Profile.from_dict(data)

    def save_profiles(self, profiles: Mapping[str, Any]) -> int:
        for key, profile in profiles.items():
            versions = self._profiles.setdefault(key, {})
            versions[version_field(profile.last_seen)] = profile.to_dict()
            for name in sorted(versions)[:-PROFILE_VERSIONS]:
                del versions[name]
        return len(profiles)

    def put_apps(self, apps: Iterable[AppEntry]) -> int:
        count = 0
        for item in apps:
            info, _ = app_entry(item)
            self.apps[info.app_id] = info
            count += 1
        return count

    def put_asn_ranges(self, ranges: Iterable[AsnRange]) -> int:
        """Replace the ranges with ``ranges`` (as a reload of the table does)."""
        by_version: dict[int, list[AsnRange]] = {4: [], 6: []}
        for item in ranges:
            by_version[item.version].append(item)
        for version, items in by_version.items():
            items.sort(key=lambda r: r.start)
            self._ranges[version] = items
            self._starts[version] = [r.start for r in items]
        return sum(len(v) for v in by_version.values())

    def get_app(self, app_id: str) -> AppInfo | None:
        """The directory's entry, else the shipped first-party knowledge, else None."""
        info = self.apps.get(app_id)
        return info if info is not None else first_party_app(app_id)

    def close(self) -> None:
        return None
