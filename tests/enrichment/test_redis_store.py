"""The Redis store on a real Redis: batched lookups, the local cache, loaders, profile versions,
and an outage with reconnection (on a redis-server of the test's own)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from detectors.base import AppInfo
from detectors.profile import Profile
from graphsentry.detection import run_embedded
from graphsentry.enrichment.asn import load_asn
from graphsentry.enrichment.memory import MemoryStore
from graphsentry.enrichment.redis_store import RedisStore
from graphsentry.errors import StoreWriteError
from tests.enrichment.conftest import RedisServer, free_port

APP = "22222222-2222-2222-2222-222222222222"
T0 = 1_790_000_000.0


def profile_until(last: float) -> Profile:
    """A small profile whose newest event is at ``last``."""
    profile = Profile()
    for i, ts in enumerate((last - 7200, last - 3600, last)):
        profile.observe(ts, f"198.51.100.{i + 1}", 64500, "python-requests/2.31.0", APP)
    return profile


def activity(count: int = 40) -> list[dict[str, Any]]:
    """Normalized records of one app-only principal reading users (enough for a run)."""
    from datetime import UTC, datetime

    return [{"time_generated": datetime.fromtimestamp(T0 + 30 * i, UTC),
             "request_id": f"req-{i:04d}", "tenant_id": "11111111-1111-1111-1111-111111111111",
             "app_id": APP, "principal_id": "44444444-4444-4444-4444-444444444444",
             "identity_type": "app_only", "request_method": "GET",
             "request_uri": f"https://graph.microsoft.com/v1.0/users/{i:08d}",
             "resource_template": "/users/{id}", "resource_family": "users",
             "resource_category": "directory", "response_status_code": 200,
             "response_size_bytes": 1200, "ip_address": "203.0.113.7",
             "service_principal_id": "44444444-4444-4444-4444-444444444444"}
            for i in range(count)]

IPS = ["203.0.113.77", "20.1.2.3", "1.0.0.1", "1.0.2.1", "2001:db8::5", "2001:db8:1::9",
       "2001:db8:2::1", "::ffff:203.0.113.1", "bogus"]


def test_asn_lookups_match_the_memory_store(store: RedisStore, ip2asn_file: Path) -> None:
    memory = MemoryStore()
    assert load_asn([str(ip2asn_file)], store).loaded == load_asn([str(ip2asn_file)],
                                                                  memory).loaded == 5
    before = store.round_trips
    got = store.lookup([], IPS, {})
    assert store.round_trips == before + 1  # one pipelined round trip for the whole batch
    assert got.available
    assert got.asns == memory.lookup([], IPS, {}).asns
    assert got.asns["2001:db8:1::9"] == (64502, "EXAMPLE-V6-SUB")
    assert "1.0.2.1" not in got.asns and "bogus" not in got.asns


def test_reloading_replaces_the_table(store: RedisStore, ip2asn_file: Path,
                                      tmp_path: Path) -> None:
    load_asn([str(ip2asn_file)], store)
    smaller = tmp_path / "v4only.tsv"
    smaller.write_text("198.51.100.0\t198.51.100.255\t64999\tZZ\tOTHER\n")
    load_asn([str(smaller)], store)
    got = store.lookup([], ["203.0.113.77", "198.51.100.4", "2001:db8::5"], {})
    assert got.asns == {"198.51.100.4": (64999, "OTHER")}


def test_cache_serves_repeats_without_a_round_trip(store: RedisStore,
                                                   redis_client: redis.Redis) -> None:
    store.put_apps([AppInfo(APP, display_name="Runner", owner_tenant_id="t")])
    store._cache = type(store._cache)(100, 300)  # forget what put_apps cached
    first = store.lookup([APP, "unknown-app"], ["203.0.113.5"], {})
    trips = store.round_trips
    second = store.lookup([APP, "unknown-app"], ["203.0.113.5"], {})
    assert store.round_trips == trips  # apps and IPs (known or not) came from the cache
    assert first.apps == second.apps and set(first.apps) == {APP}
    assert second.apps[APP].display_name == "Runner"
    stored = redis_client.hgetall(f"{store.prefix}app:{APP}")
    assert stored[b"display_name"] == b"Runner"


def test_profile_versions_round_trip_with_a_ttl(store: RedisStore,
                                                 redis_client: redis.Redis) -> None:
    key = "tenant/principal"
    versions = [profile_until(T0 + day * 86_400) for day in range(4)]
    for profile in versions:
        assert store.save_profiles({key: profile}) == 1
    fields = redis_client.hkeys(f"{store.prefix}prof:{key}")
    assert len(fields) == 3  # the newest PROFILE_VERSIONS are kept
    ttl = redis_client.ttl(f"{store.prefix}prof:{key}")
    assert 29 * 86_400 < ttl <= 30 * 86_400
    # the newest version whose newest event is older than the time asked for
    got = store.lookup([], [], {key: T0 + 2 * 86_400 + 1, "tenant/nobody": T0}).profiles
    assert got["tenant/nobody"] is None
    assert got[key] == versions[2]
    assert store.lookup([], [], {key: T0 + 2 * 86_400}).profiles[key] == versions[1]
    assert store.lookup([], [], {key: T0 + 86_400}).profiles[key] is None  # trimmed away
    redis_client.hset(f"{store.prefix}prof:bad", "0000000001.000000", "{not json")
    assert store.lookup([], [], {"bad": T0}).profiles["bad"] is None


def test_outage_degrades_quickly_and_reconnects(own_redis: RedisServer) -> None:
    store = RedisStore(own_redis.url, retry_seconds=0.3, socket_timeout_seconds=0.2)
    store.put_apps([AppInfo(APP, display_name="Runner")])
    assert store.lookup(["other-app"], [], {}).available
    own_redis.stop()
    started = time.monotonic()
    down = store.lookup(["yet-another-app"], ["198.51.100.1"], {"t/p": T0})
    assert not down.available and time.monotonic() - started < 1.0
    assert not store.available
    profile = profile_until(T0)
    waits: list[float] = []
    store.sleep = waits.append  # the in-place retries, without waiting
    with pytest.raises(StoreWriteError, match="did not acknowledge 1 profile write"):
        store.save_profiles({"t/p": profile})  # an error, never a count
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0]  # 6 tries, backing off
    started = time.monotonic()
    for _ in range(100):  # during the back-off no connection is even attempted
        assert not store.lookup(["app-x"], [], {}).available
    assert time.monotonic() - started < 0.5
    own_redis.start()  # same port, empty data
    deadline = time.monotonic() + 5
    while not store.lookup(["app-y"], [], {}).available:
        assert time.monotonic() < deadline, "store did not reconnect"
        time.sleep(0.1)
    assert store.available
    assert store.save_profiles({"t/p": profile}) == 1  # the caller's retry writes it
    raw = redis.Redis.from_url(own_redis.url).hgetall("graphsentry:prof:t/p")
    assert len(raw) == 1 and json.loads(next(iter(raw.values())))["events"] == 3
    store.close()


def test_detection_continues_without_redis_and_evicts_nobody() -> None:
    """Lookups degrade (alerts and signals say enrichment.available=false) and no principal
    leaves worker state while the store cannot take its profile."""
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", socket_timeout_seconds=0.2)
    signals: list[dict[str, Any]] = []
    stats = run_embedded(activity(), store=store, on_signal=signals.append)
    assert stats.events == 40 and stats.enrichment_unavailable_batches >= 1
    assert all(s["enrichment"]["available"] is False for s in signals)
    assert store.failures >= 1
