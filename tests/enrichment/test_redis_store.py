"""The Redis store on a real Redis: batched lookups, the local cache, loaders, histories, and
an outage with reconnection (on a redis-server of the test's own)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from detectors.history import PrincipalHistory

from detectors.base import AppInfo
from graphsentry.detection import run_embedded
from graphsentry.enrichment.asn import load_asn
from graphsentry.enrichment.memory import MemoryStore
from graphsentry.enrichment.redis_store import RedisStore
from graphsentry.errors import StoreWriteError
from tests.engine.scenario import APP, attack
from tests.engine.test_engine import events_of
from tests.enrichment.conftest import RedisServer, free_port

IPS = ["203.0.113.77", "20.1.2.3", "1.0.0.1", "1.0.2.1", "2001:db8::5", "2001:db8:1::9",
       "2001:db8:2::1", "::ffff:203.0.113.1", "bogus"]


def test_asn_lookups_match_the_memory_store(store: RedisStore, ip2asn_file: Path) -> None:
    memory = MemoryStore()
    assert load_asn([str(ip2asn_file)], store).loaded == load_asn([str(ip2asn_file)],
                                                                  memory).loaded == 5
    before = store.round_trips
    got = store.lookup([], IPS, [])
    assert store.round_trips == before + 1  # one pipelined round trip for the whole batch
    assert got.available
    assert got.asns == memory.lookup([], IPS, []).asns
    assert got.asns["2001:db8:1::9"] == (64502, "EXAMPLE-V6-SUB")
    assert "1.0.2.1" not in got.asns and "bogus" not in got.asns


def test_reloading_replaces_the_table(store: RedisStore, ip2asn_file: Path,
                                      tmp_path: Path) -> None:
    load_asn([str(ip2asn_file)], store)
    smaller = tmp_path / "v4only.tsv"
    smaller.write_text("198.51.100.0\t198.51.100.255\t64999\tZZ\tOTHER\n")
    load_asn([str(smaller)], store)
    got = store.lookup([], ["203.0.113.77", "198.51.100.4", "2001:db8::5"], [])
    assert got.asns == {"198.51.100.4": (64999, "OTHER")}


def test_cache_serves_repeats_without_a_round_trip(store: RedisStore,
                                                   redis_client: redis.Redis) -> None:
    store.put_apps([AppInfo(APP, display_name="Runner", owner_tenant_id="t")])
    store._cache = type(store._cache)(100, 300)  # forget what put_apps cached
    first = store.lookup([APP, "unknown-app"], ["203.0.113.5"], [])
    trips = store.round_trips
    second = store.lookup([APP, "unknown-app"], ["203.0.113.5"], [])
    assert store.round_trips == trips  # apps and IPs (known or not) came from the cache
    assert first.apps == second.apps and set(first.apps) == {APP}
    assert second.apps[APP].display_name == "Runner"
    stored = redis_client.hgetall(f"{store.prefix}app:{APP}")
    assert stored[b"display_name"] == b"Runner"


def test_histories_round_trip_with_a_ttl(store: RedisStore, redis_client: redis.Redis) -> None:
    history = PrincipalHistory()
    for event in events_of(attack())[:5]:
        history.observe(event, 64500)
    key = "tenant/app/principal"
    assert store.save_histories({key: history}) == 1
    ttl = redis_client.ttl(f"{store.prefix}hist:{key}")
    assert 29 * 86_400 < ttl <= 30 * 86_400
    got = store.lookup([], [], [key, "tenant/app/nobody"]).histories
    assert got["tenant/app/nobody"] is None
    assert got[key].to_dict() == history.to_dict()
    redis_client.set(f"{store.prefix}hist:bad", "{not json")
    assert store.lookup([], [], ["bad"]).histories["bad"] is None


def test_outage_degrades_quickly_and_reconnects(own_redis: RedisServer) -> None:
    store = RedisStore(own_redis.url, retry_seconds=0.3, socket_timeout_seconds=0.2)
    store.put_apps([AppInfo(APP, display_name="Runner")])
    assert store.lookup(["other-app"], [], []).available
    own_redis.stop()
    started = time.monotonic()
    down = store.lookup(["yet-another-app"], ["198.51.100.1"], ["t/a/p"])
    assert not down.available and time.monotonic() - started < 1.0
    assert not store.available
    history = PrincipalHistory()
    history.observe(events_of(attack())[0], None)
    waits: list[float] = []
    store.sleep = waits.append  # the in-place retries, without waiting
    with pytest.raises(StoreWriteError, match="did not acknowledge 1 history write"):
        store.save_histories({"t/a/p": history})  # an error, never a count
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0]  # 6 tries, backing off
    started = time.monotonic()
    for _ in range(100):  # during the back-off no connection is even attempted
        assert not store.lookup(["app-x"], [], []).available
    assert time.monotonic() - started < 0.5
    own_redis.start()  # same port, empty data
    deadline = time.monotonic() + 5
    while not store.lookup(["app-y"], [], []).available:
        assert time.monotonic() < deadline, "store did not reconnect"
        time.sleep(0.1)
    assert store.available
    assert store.save_histories({"t/a/p": history}) == 1  # the caller's retry writes it
    raw = redis.Redis.from_url(own_redis.url).get("graphsentry:hist:t/a/p")
    assert raw is not None and json.loads(raw)["event_count"] == 1
    store.close()


def test_detection_continues_without_redis_lookups_but_not_without_history_writes() -> None:
    """Lookups degrade (alerts say enrichment.available=false); a history save that Redis does
    not acknowledge fails the batch (the epoch is retried from the last snapshot)."""
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", socket_timeout_seconds=0.2)
    alerts: list[dict[str, Any]] = []
    store.sleep = lambda _seconds: None
    with pytest.raises(Exception) as failed:  # Bytewax wraps the cause
        run_embedded(attack(), store=store, on_alert=alerts.append)
    cause: BaseException | None = failed.value
    while cause is not None and not isinstance(cause, StoreWriteError):
        cause = cause.__cause__
    assert isinstance(cause, StoreWriteError), failed.value
    assert all(a["enrichment"]["available"] is False for a in alerts)
    assert store.failures >= store.write_attempts
