"""Exceptions that expire: scoped, audited, applied to signals by event time.

An :class:`AlertException` names a scope — any combination of detector, app id, principal
id, network (CIDR), autonomous system and resource template (a glob on the canonical
template, ``detectors.templates``) — and why, by whom, when it was made and until when (event
time) it applies. A signal is *covered* when every scope field given matches it: for networks,
ASNs and templates, every value the signal rests on must match (a signal that also came from
elsewhere, from no address, or from an address whose autonomous system is unknown, is not
covered). So a provisional signal is covered whenever its final one is: suppression can only
lift as a window grows, which keeps the alert layer independent of arrival order. Covered
signals are kept and marked with the exception ids (``suppressed_by``); they add no risk and
the alerts resting only on them are ``suppressed``.

Validity is by event time: an exception applies to signals whose window starts in
``[starts, expires)`` (either end open when None), so replays of the same input give the same
result whenever they run. A permanent allow-list is an exception without expiry.
"""

from __future__ import annotations

import ipaddress
import json
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any

from detectors.base import Signal
from detectors.templates import canonical_template

SCOPE_FIELDS = ("detector", "app_id", "principal_id", "network", "asn", "template")
MAX_ASN = 4_294_967_295
"""The largest autonomous system number (32 bits, RFC 6793)."""


@dataclass(frozen=True, slots=True)
class AlertException:
    """One exception (see the module docstring). Times are epoch seconds (UTC)."""

    id: str
    reason: str
    author: str
    created: float
    expires: float | None = None
    """End of validity in event time (exclusive); None: never expires."""
    starts: float | None = None
    """Start of validity in event time; None: from the beginning."""
    detector: str | None = None
    app_id: str | None = None
    principal_id: str | None = None
    network: str | None = None
    """A CIDR (``203.0.113.0/24``) every source IP of the signal must be in."""
    asn: int | None = None
    template: str | None = None
    """A glob on canonical templates (``/reports/*``) every template must match."""
    removed: float | None = None
    """When it was removed (kept for the audit trail; a removed exception never applies)."""
    removed_by: str | None = None
    source: str = "redis"
    """Where it lives: ``redis`` (``graphsentry exceptions``), ``config`` or ``directory``."""

    def __post_init__(self) -> None:
        if not self.reason.strip() or not self.author.strip():
            raise ValueError("reason and author are required")
        if not any(getattr(self, name) is not None for name in SCOPE_FIELDS):
            raise ValueError(f"give at least one scope field ({', '.join(SCOPE_FIELDS)})")
        # A blank value is no scope: an empty principal_id would match every principal
        # without a user id (or without a service principal id), i.e. suppress them all.
        blank = [name for name in SCOPE_FIELDS
                 if isinstance(getattr(self, name), str) and not getattr(self, name).strip()]
        if blank:
            raise ValueError(f"empty {', '.join(blank)}: leave a scope field out instead")
        if self.asn is not None and not 0 <= self.asn <= MAX_ASN:
            raise ValueError(f"asn {self.asn} is not an autonomous system number "
                             f"(0..{MAX_ASN})")
        if self.network is not None:
            object.__setattr__(self, "network",
                               str(ipaddress.ip_network(self.network, strict=False)))
        if self.template is not None:
            object.__setattr__(self, "template", canonical_template(self.template))
        if self.expires is not None and self.starts is not None and self.expires <= self.starts:
            raise ValueError("expires must be after starts")

    def active_at(self, ts: float) -> bool:
        return (self.removed is None and (self.starts is None or ts >= self.starts)
                and (self.expires is None or ts < self.expires))

    def covers(self, signal: Signal) -> bool:
        """Whether this exception applies to ``signal`` (scope and event time)."""
        who = signal.who
        if not self.active_at(signal.window_start):
            return False
        if self.detector is not None and self.detector != signal.detector:
            return False
        if self.app_id is not None and self.app_id.lower() != who.app_id.lower():
            return False
        if self.principal_id is not None and self.principal_id.lower() not in (
                who.principal_id.lower(), (who.user_id or "").lower(),
                (who.service_principal_id or "").lower()):
            return False
        if self.asn is not None:
            asns = signal.context.asns
            if not asns or signal.context.asn_unknown or any(a != self.asn for a in asns):
                return False
        if self.network is not None:
            ips = _values(signal.evidence, "source_ips", "ip")
            if ips is None or not ips or not all(_in_network(ip, self.network) for ip in ips):
                return False
        if self.template is not None:
            templates = _values(signal.evidence, "templates", "template")
            if templates is None or not templates or not all(
                    fnmatchcase(canonical_template(t), self.template) for t in templates):
                return False
        return True

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertException:
        """From stored or configured data; raises ValueError naming the problem."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"exception {data.get('id', '?')}: unknown field(s) "
                             f"{', '.join(unknown)}")
        missing = [name for name in ("id", "reason", "author", "created") if name not in data]
        if missing:
            raise ValueError(f"exception {data.get('id', '?')}: missing field(s) "
                             f"{', '.join(missing)}")
        values = dict(data)
        try:
            for name in ("created", "expires", "starts", "removed"):
                if values.get(name) is not None:
                    values[name] = _epoch(values[name])
            if values.get("asn") is not None:
                values["asn"] = int(values["asn"])
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"exception {data.get('id', '?')}: {exc}") from None


def _epoch(value: Any) -> float:
    """Epoch seconds from a number, an ISO-8601 string or a datetime (YAML gives those)."""
    from datetime import datetime

    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            from graphsentry.ingest.timeparse import parse_timestamp

            return parse_timestamp(value).timestamp()
    return float(value)


def new_exception(*, reason: str, author: str, expires: float | None = None,
                  starts: float | None = None, now: float | None = None,
                  **scope: Any) -> AlertException:
    """A new exception with a fresh id (``exc-`` + 12 hex digits), created now."""
    return AlertException(id=f"exc-{uuid.uuid4().hex[:12]}", reason=reason, author=author,
                          created=time.time() if now is None else now, expires=expires,
                          starts=starts, **scope)


@dataclass(slots=True)
class ExceptionSet:
    """The exceptions in force (active or not yet, by event time), matched per signal."""

    items: tuple[AlertException, ...] = ()
    by_detector: dict[str | None, tuple[AlertException, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        grouped: dict[str | None, list[AlertException]] = {}
        for item in self.items:
            if item.removed is None:
                grouped.setdefault(item.detector, []).append(item)
        self.by_detector = {k: tuple(v) for k, v in grouped.items()}

    def covering(self, signal: Signal) -> tuple[str, ...]:
        """Ids (sorted) of the exceptions that cover ``signal``."""
        found = [e.id for key in (None, signal.detector)
                 for e in self.by_detector.get(key, ()) if e.covers(signal)]
        return tuple(sorted(found))


def _values(evidence: Mapping[str, Any], summary_key: str, single_key: str) -> list[str] | None:
    """The values a signal rests on: a windowed evidence summary (None when not all values
    are known: capped, or some events had none) or a single-event value."""
    summary = evidence.get(summary_key)
    if isinstance(summary, Mapping):
        if (summary.get("capped") or summary.get("missing")
                or summary.get("count", 0) > len(summary.get("sample", []))):
            return None
        return [str(v) for v in summary.get("sample", [])]
    single = evidence.get(single_key)
    return [str(single)] if single else []


@lru_cache(maxsize=65_536)
def _in_network(ip: str, network: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(network)
    except ValueError:
        return False


def dumps(items: Iterable[AlertException]) -> str:
    """JSON lines of exceptions (for ``graphsentry exceptions list --json``)."""
    return "\n".join(json.dumps(e.to_dict(), sort_keys=True) for e in items)
