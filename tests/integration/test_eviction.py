"""Idle eviction through the real detection dataflow and Redis: principals idle over a weekend
leave worker state (their profile goes to Redis, versioned), come back on Monday from the
stored profile, and every final signal and the last version of every alert are the same as
in a run that keeps everyone in memory (no eviction: the memory store is not durable).

This is the state story of docs/detection.md in one test: what leaves the Bytewax state goes
to Redis only at the minimum idle time that changes no result, and comes back as of the
events' time."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import redis

from graphsentry.alerts import alert_to_json, latest_versions
from graphsentry.config import config_from_dict
from graphsentry.detection import DetectStats, run_embedded
from graphsentry.enrichment import EnrichmentStore, MemoryStore
from graphsentry.enrichment.redis_store import RedisStore

pytestmark = pytest.mark.slow
FRIDAY = "2026-11-06"
DAY = 86_400.0


@pytest.fixture(scope="module")
def weekend(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Friday to Tuesday of a 20-user tenant with the stolen managed-identity chain on
    Tuesday; the demo profile works every day, so the users (delegated principals) are taken
    off for the weekend here: their records from Friday 18:00 to Monday 08:00 UTC are left
    out, leaving them idle for 62 h while the tenant's services keep the clock going."""
    from graphsentry.ingest import iter_records

    out = tmp_path_factory.mktemp("weekend") / "tenant.jsonl"
    subprocess.run([sys.executable, "-m", "graphsentry.cli", "simulate", "--users", "20",
                    "--days", "5", "--start", FRIDAY, "--scenario", "mi_token_theft_chain",
                    "--out", str(out)], check=True, capture_output=True, timeout=120)
    friday = datetime.fromisoformat(f"{FRIDAY}T18:00:00+00:00")
    monday = friday + timedelta(hours=62)
    return [r for r in iter_records([str(out)])
            if not (r["identity_type"] == "delegated" and friday <= r["time_generated"] < monday)]


def paced(records: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The records, pausing at each new UTC day of event time long enough for the flow's
    idle check (``state.eviction_check_seconds`` 1) to run."""
    day = None
    for record in records:
        today = record["time_generated"].timestamp() // DAY
        if day is not None and today > day:
            time.sleep(1.3)
        day = today if day is None else max(day, today)
        yield record


def detect(records: list[dict[str, Any]], store: EnrichmentStore
           ) -> tuple[DetectStats, dict[str, str], dict[str, str]]:
    config = config_from_dict({"state": {"eviction_check_seconds": 1},
                               "bytewax": {"batch_size": 200}}, env={})
    alerts: list[dict[str, Any]] = []
    signals: list[dict[str, Any]] = []
    stats = run_embedded(paced(records), config, store, on_alert=alerts.append,
                         on_signal=signals.append)
    last = {a["alert_id"]: alert_to_json(a) for a in latest_versions(alerts)}
    finals = {s["signal_id"]: alert_to_json(s) for s in signals if s["final"]}
    return stats, last, finals


def test_principals_idle_over_the_weekend_leave_and_return_without_changing_results(
        weekend: list[dict[str, Any]], redis_url: str, redis_namespace: str,
        redis_client: redis.Redis) -> None:
    kept, kept_alerts, kept_signals = detect(weekend, MemoryStore())
    assert kept.profiles_saved == 0  # a memory store is not durable: nobody is evicted

    store = RedisStore(redis_url, key_prefix=redis_namespace)
    evicted, alerts, signals = detect(weekend, store)
    stored = list(redis_client.scan_iter(match=f"{redis_namespace}prof:*"))
    assert evicted.profiles_saved >= 5 and len(stored) == evicted.profiles_saved
    assert evicted.profiles_adopted >= 5  # they came back on Monday from Redis

    assert kept_alerts and any('"attack_chain"' in a for a in kept_alerts.values())
    assert alerts == kept_alerts
    assert signals == kept_signals
    assert (evicted.events, evicted.late, evicted.duplicates) == (
        kept.events, kept.late, kept.duplicates)

