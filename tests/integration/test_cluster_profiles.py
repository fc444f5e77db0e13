"""Stored profiles on 2 processes, on the real broker and Redis: the worker that reads a
principal's records fetches its profile from Redis, and the profile travels with the event
(``dataflows.exchange.Routed``) to the worker that owns the principal.

Six service principals, each warmed from four days of history (``graphsentry warm``) and then
calling from a network new to them: ``new_origin`` fires for a principal only when its worker
adopted the stored profile (without it the principal is new and still learning,
``tests/integration/test_warm.py``). The live topic has one partition, so one process reads
every record and each principal the other process owns crossed between them with its
profile."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from graphsentry.alerts import signal_from_avro
from graphsentry.ingest import iter_records
from tests.integration.bounded import graphsentry, publish, run_bounded, run_topics, write_config
from tests.integration.kafka_util import read_all
from tests.integration.test_warm import HISTORY_START, NEW, USUAL, calls, detect, write_log

pytestmark = pytest.mark.slow
PRINCIPALS = [f"5e5e5e5e-0000-4000-8000-0000000001{n:02d}" for n in range(6)]


def test_stored_profiles_cross_processes_with_their_events(
        tmp_path: Path, kafka_bootstrap: str, topic_factory: Callable[..., str],
        redis_url: str, redis_namespace: str) -> None:
    history = [r for p in PRINCIPALS for r in calls(p, HISTORY_START, 4 * 48, 1800, USUAL, "h")]
    warm = write_config(tmp_path / "warm.yaml", "127.0.0.1:1", redis_url, redis_namespace)
    done = graphsentry("warm", "--config", str(warm), str(write_log(tmp_path / "h.jsonl",
                                                                     history)))
    assert done.returncode == 0, done.stderr
    live = [r for p in PRINCIPALS for r in calls(p, "2026-03-05T08:00:00Z", 4, 1800, USUAL, "l")
            + calls(p, "2026-03-05T10:00:00Z", 6, 300, NEW, "n")]
    records = list(iter_records([str(write_log(tmp_path / "live.jsonl", live))]))
    stats, expected = detect(records, redis_url, redis_namespace)
    assert stats.profiles_adopted == len(PRINCIPALS)
    embedded = sorted((s["detector"], s["principal_id"]) for s in expected if s["final"])
    assert embedded == [("new_origin", p) for p in PRINCIPALS]

    topic = topic_factory(1, "live")
    publish(kafka_bootstrap, topic, records)
    finals: dict[int, list[str]] = {}
    for processes in (1, 2):
        topics = run_topics(topic_factory, topic)
        done = run_bounded(write_config(tmp_path / f"run{processes}.yaml", kafka_bootstrap,
                                        redis_url, redis_namespace, topics), processes)
        got = [signal_from_avro(m.value() or b"")
               for m in read_all(kafka_bootstrap, topics["signals"])]
        finals[processes] = sorted(json.dumps(s, sort_keys=True, default=str)
                                   for s in got if s["final"])
        if processes == 2:
            found = re.search(r"events per process: (\d+), (\d+)\)", done.stderr)
            assert found is not None, done.stderr
            # One partition, read by one process: the other one's events all crossed.
            assert all(int(n) > 0 for n in found.groups()), done.stderr
    assert finals[2] == finals[1]
    assert sorted((json.loads(s)["detector"], json.loads(s)["principal_id"])
                  for s in finals[2]) == embedded
