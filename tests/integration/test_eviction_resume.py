"""kill -9 of ``graphsentry run`` after idle principals left worker state, then a resumed run:
the alerts equal an undisturbed run's, byte for byte (docs/detection.md, "After a crash: Redis
and the snapshot agree").

The tenant of tests/integration/test_eviction.py: Friday to Tuesday, the stolen managed-identity
chain on Tuesday, the 20 users idle from Friday 18:00 to Monday 08:00 while the tenant's
services keep the clock going. Phases, in arrival order: (1) up to Sunday 12:00, read by a
bounded run that ends with a snapshot (nobody has been idle 52 h yet); (2) up to Monday 07:00,
read by a live run with a long epoch (no further snapshot) that evicts the idle users — their
profiles go to Redis — and is then killed; (3) the rest, read by a bounded run resuming from
the snapshot of (1): it reads phase 2 again, with Redis already holding profile versions that
contain those very events. The shared broker and Redis carry the test's own topics and key
prefix; only processes this test started are killed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from tests.integration.faults.harness import (
    Comparison,
    Detection,
    kill9,
    kill_leftovers,
    publish,
    wait_for,
)

pytestmark = pytest.mark.slow
FRIDAY = datetime.fromisoformat("2026-11-06T18:00:00+00:00")
MONDAY = FRIDAY + timedelta(hours=62)
CUTS = (datetime.fromisoformat("2026-11-08T12:00:00+00:00"),
        datetime.fromisoformat("2026-11-09T07:00:00+00:00"))


@pytest.fixture(scope="module")
def phases(tmp_path_factory: pytest.TempPathFactory) -> list[list[dict[str, Any]]]:
    from graphsentry.ingest import iter_records

    out = tmp_path_factory.mktemp("weekend") / "tenant.jsonl"
    subprocess.run([sys.executable, "-m", "graphsentry.cli", "simulate", "--users", "20",
                    "--days", "5", "--start", "2026-11-06", "--scenario",
                    "mi_token_theft_chain", "--out", str(out)],
                   check=True, capture_output=True, timeout=120)
    records = [r for r in iter_records([str(out)], dedup=False)
               if not (r["identity_type"] == "delegated"
                       and FRIDAY <= r["time_generated"] < MONDAY)]
    first, second = (next(i for i, r in enumerate(records) if r["time_generated"] >= cut)
                     for cut in CUTS)
    return [records[:first], records[first:second], records[second:]]


class EvictingDetection(Detection):
    """A deployment whose idle check runs every second of wall clock (default 30 s)."""

    def config(self, epoch: float) -> Path:
        path = super().config(epoch)
        data = yaml.safe_load(path.read_text())
        data["state"] = {"eviction_check_seconds": 1}
        path.write_text(yaml.safe_dump(data))
        return path


@pytest.fixture
def deployment(kafka_bootstrap: str, redis_url: str, redis_namespace: str,
               topic_factory: Callable[..., str], tmp_path: Path
               ) -> Iterator[Callable[[str], EvictingDetection]]:
    def make(name: str) -> EvictingDetection:
        run = EvictingDetection(
            bootstrap=kafka_bootstrap, activity=topic_factory(1, "activity"),
            alerts=topic_factory(2, "alerts"), alerts_json=topic_factory(2, "alertsjson"),
            dlq=topic_factory(1, "dlq"), signals=topic_factory(1, "signals"),
            late=topic_factory(1, "late"), workdir=tmp_path / name, redis_url=redis_url,
            prefix=f"{redis_namespace}{name}:")
        run.workdir.mkdir(parents=True)
        return run

    try:
        yield make
    finally:
        kill_leftovers()


def stored_profiles(client: redis.Redis, prefix: str) -> dict[str, dict[bytes, bytes]]:
    return {k.decode().removeprefix(prefix): client.hgetall(k)
            for k in client.scan_iter(match=f"{prefix}prof:*")}


def test_kill_9_after_an_eviction_resumes_to_the_undisturbed_alerts(
        deployment: Callable[[str], EvictingDetection], phases: list[list[dict[str, Any]]],
        redis_client: redis.Redis) -> None:
    users = {r["principal_id"] for r in phases[0] if r["identity_type"] == "delegated"}
    assert len(users) == 20

    baseline_run = deployment("undisturbed")
    for n, phase in enumerate(phases, 1):
        publish(baseline_run.bootstrap, baseline_run.activity, phase, marker=f"phase-{n}")
    baseline_run.run_bounded()
    baseline = baseline_run.alert_messages()
    assert len(Comparison.of(baseline, []).baseline) >= 5  # the chain's alert versions

    run = deployment("disturbed")
    publish(run.bootstrap, run.activity, phases[0], marker="phase-1")
    run.run_bounded()
    assert stored_profiles(redis_client, run.prefix) == {}  # nobody idle for 52 h yet

    publish(run.bootstrap, run.activity, phases[1], marker="phase-2")
    live = run.start_live()  # epoch 600 s: no snapshot before the kill
    wait_for(lambda: run.read_up_to("phase-2"), "phase 2 read", process=live)
    tenant = phases[0][0]["tenant_id"]
    evicted_users = {f"prof:{tenant}/{user}" for user in users}
    wait_for(lambda: evicted_users <= set(stored_profiles(redis_client, run.prefix)),
             "the idle users' profiles in Redis", process=live)
    written = stored_profiles(redis_client, run.prefix)
    run.outputs.append(kill9(live))

    publish(run.bootstrap, run.activity, phases[2], marker="phase-3")
    resumed = run.run_bounded()
    # It resumed from the snapshot of phase 1: phase 2 was read again.
    assert f"events={len(phases[1]) + len(phases[2])} " in resumed, resumed

    result = Comparison.of(baseline, run.alert_messages())
    result.check()
    # Every version the killed run wrote is still there, unchanged: one written again by the
    # resumed run (the same principal leaving at the same newest event) is the same text.
    after = stored_profiles(redis_client, run.prefix)
    for key, versions in written.items():
        assert {f: v for f, v in after[key].items() if f in versions} == versions
    assert all(len(v) == 1 for k, v in written.items() if k in evicted_users)
