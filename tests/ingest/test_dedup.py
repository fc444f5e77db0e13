import os
import pickle
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from graphsentry.ingest.dedup import Deduplicator, dedup_key


def test_second_delivery_is_seen() -> None:
    dedup = Deduplicator(10)
    assert dedup.seen("a") is False
    assert dedup.seen("b") is False
    assert dedup.seen("a") is True
    assert dedup.seen(b"b") is True  # bytes and str keys of the same text agree
    assert len(dedup) == 2


def test_memory_is_bounded_and_oldest_keys_are_forgotten_first() -> None:
    dedup = Deduplicator(3)
    for key in "abcd":
        assert dedup.seen(key) is False
    assert len(dedup) == 3
    assert dedup.seen("b") is True and dedup.seen("d") is True
    assert dedup.seen("a") is False  # evicted: seen again as new, evicting "b"
    assert dedup.seen("b") is False


def test_ring_wraps_many_times() -> None:
    dedup = Deduplicator(100)
    for n in range(1000):
        assert dedup.seen(str(n)) is False
    assert len(dedup) == 100
    assert all(dedup.seen(str(n)) for n in range(900, 1000))


def test_state_survives_pickling_into_a_process_with_another_hash_seed() -> None:
    dedup = Deduplicator(5)
    dedup.seen("x")
    script = ("import pickle, sys; d = pickle.loads(sys.stdin.buffer.read()); "
              "print(d.seen('x'), d.seen('y'))")
    done = subprocess.run([sys.executable, "-c", script], input=pickle.dumps(dedup),
                          capture_output=True, check=True, cwd=Path(__file__).parents[2],
                          env={**os.environ, "PYTHONHASHSEED": "12345"})
    assert done.stdout.split() == [b"True", b"False"]


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Deduplicator(0)


def test_key_is_request_id_and_time() -> None:
    when = datetime(2026, 3, 2, 8, 0, 1, 15970, tzinfo=UTC)
    key = dedup_key({"request_id": "r1", "time_generated": when})
    micros = (when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    assert key == dedup_key({"request_id": "r1", "time_generated": micros})
    later = when + timedelta(microseconds=1)
    assert key != dedup_key({"request_id": "r1", "time_generated": later})
    assert key != dedup_key({"request_id": "r2", "time_generated": when})
