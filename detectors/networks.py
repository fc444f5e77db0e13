"""Client IP → network prefix, the unit in which a principal's usual origins are remembered.

An IPv4 /24 or an IPv6 /48 is roughly one site or one provider allocation: a principal moving
between addresses of its own egress pool stays on a known network, a replayed token from
elsewhere does not. IPv4-mapped IPv6 addresses count as IPv4.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

IPV4_PREFIX = 24
IPV6_PREFIX = 48


@lru_cache(maxsize=65536)
def network_of(ip: str | None) -> str | None:
    """``203.0.113.10`` → ``203.0.113.0/24``; ``2001:db8:1:2::5`` → ``2001:db8:1::/48``.

    Returns None for a missing or unparsable address (never raises).
    """
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = IPV4_PREFIX if address.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))
