"""Where each application's requests come from: networks (/24 for IPv4, /48 for IPv6), their
addresses, ASNs when a lookup is given, request counts, identity types, first and last seen."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from graphsentry.hunt import TALLY_COLUMNS, Record, Tally, for_app, top_per_app

COLUMNS = ("app_id", "network", "asn", "asn_name", "requests", "denied", "ips", "ip_sample",
           *TALLY_COLUMNS)
IP_SAMPLE = 5
NO_ADDRESS = "(none)"
AsnLookup = Callable[[str], tuple[int | None, str | None]]


def network_of(ip: str | None) -> str:
    """The /24 (IPv4) or /48 (IPv6) holding ``ip``; the raw text when it is not an address."""
    if not ip:
        return NO_ADDRESS
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return ip.strip()
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


@dataclass(slots=True)
class _Origin:
    tally: Tally = field(default_factory=Tally)
    ips: set[str] = field(default_factory=set)
    denied: int = 0


def hunt_origins(records: Iterable[Record], *, app_id: str | None = None, top: int | None = None,
                 asn_lookup: AsnLookup | None = None) -> list[dict[str, Any]]:
    """One row per (application, network), most requests first within each application."""
    groups: dict[tuple[str, str], _Origin] = {}
    for record in for_app(records, app_id):
        ip = record.get("ip_address")
        key = (str(record.get("app_id")), network_of(ip))
        origin = groups.get(key)
        if origin is None:
            origin = groups[key] = _Origin()
        origin.tally.add(record)
        if ip:
            origin.ips.add(str(ip))
        origin.denied += record.get("response_status_code") in (401, 403)
    rows = []
    for (app, network), origin in groups.items():
        sample = sorted(origin.ips)[:IP_SAMPLE]
        asn, asn_name = (None, None)
        if asn_lookup is not None and sample:
            asn, asn_name = asn_lookup(sample[0])
        rows.append({
            "app_id": app, "network": network, "asn": asn, "asn_name": asn_name,
            "requests": origin.tally.count, "denied": origin.denied, "ips": len(origin.ips),
            "ip_sample": sample, **origin.tally.columns(),
        })
    rows.sort(key=lambda r: (r["app_id"], -r["requests"], r["network"]))
    return top_per_app(rows, top)
