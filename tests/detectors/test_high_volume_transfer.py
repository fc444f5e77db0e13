"""high_volume_transfer: response bytes per 10 min / 1 h against the principal's own peak (a
high floor while learning, a low one once its baseline exists)."""

from __future__ import annotations

from typing import Any

import pytest

from detectors.event import GraphEvent
from detectors.high_volume_transfer import MIB, HighVolumeTransfer, Params
from tests.detectors.factory import (
    GRAPH,
    HOUR,
    LATENESS,
    NEW_IP,
    T0,
    daily,
    delegated,
    event,
    in_time_order,
    routine,
    run,
)

TEN_MIN, ONE_HOUR = 600.0, 3600.0


def reads(total: int, start: float = T0, n: int = 10, step: float = 30.0,
          make: Any = event, **fields: Any) -> list[GraphEvent]:
    """``n`` requests of ``total`` bytes in all."""
    sizes = [total // n + (1 if i < total % n else 0) for i in range(n)]
    return [make(ts=start + i * step, uri=f"{GRAPH}/chats/c{i}/messages?$top=50",
                 template="/chats/{id}/messages", family="teams", category="chat",
                 size=size, **fields) for i, size in enumerate(sizes)]


@pytest.mark.parametrize(("total", "fires"), [(50 * MIB - 1, False), (50 * MIB, True)])
def test_fires_at_the_learning_floor(total: int, fires: bool) -> None:
    result = run(HighVolumeTransfer(), reads(total))
    assert (TEN_MIN in result.lengths()) is fires
    if fires:
        signal = result.final(TEN_MIN)
        assert signal.evidence == {"requests": 10, "denied": 0, "bytes": 50 * MIB,
                                   "window_seconds": 600, "baseline_peaks": None}
        assert signal.context.learning


def test_silent_for_batch_envelopes_whose_sub_requests_carry_the_bytes() -> None:
    envelopes = [event(ts=T0 + i, template="/$batch", family="batch", size=10 * MIB)
                 for i in range(10)]
    assert run(HighVolumeTransfer(), envelopes).signals == []


def test_slow_transfer_crosses_the_hour_window_only() -> None:
    slow = reads(200 * MIB, n=60, step=59.0)  # 33 MiB per ten minutes
    assert run(HighVolumeTransfer(), slow).lengths() == [ONE_HOUR]


def test_silent_for_events_later_than_the_lateness() -> None:
    newest = event(ts=T0 + TEN_MIN + LATENESS + 1, size=0)
    assert run(HighVolumeTransfer(), [newest, *reads(60 * MIB)]).signals == []


def test_missing_sizes_count_as_nothing() -> None:
    assert run(HighVolumeTransfer(), reads(0, n=500)).signals == []


# -- against the principal's own peak ----------------------------------------------------------

def user_history(days: int = 5, daily_bytes: int = 300_000) -> list[GraphEvent]:
    """A Teams user who reads ``daily_bytes`` of chats around 10:00 every day (and does a
    little more, without bytes, from 09:00 to 11:59)."""
    return (routine(days, hours=(9, 10, 11), make=delegated, size=0)
            + daily(lambda s: reads(daily_bytes, s, make=delegated), days, 10 * HOUR))


@pytest.mark.parametrize(("total", "fires"), [
    (5 * MIB - 1, False),  # below the floor, even at 17 times its usual volume
    (5 * MIB, True),       # the floor, more than ten times its usual volume
])
def test_fires_at_a_multiple_of_the_users_own_peak_below_the_learning_floor(
        total: int, fires: bool) -> None:
    """A replayed Teams token reading ~14 MiB in ten minutes is far below the tenant-wide 50
    MiB floor, but fifty times its user's peak: the principal-relative floor catches it."""
    today = reads(total, T0 + 10 * HOUR + 60, make=delegated)
    result = run(HighVolumeTransfer(), in_time_order(user_history() + today))
    assert (TEN_MIN in result.lengths(since=T0)) is fires
    if fires:
        signal = result.final(TEN_MIN, since=T0)
        assert not signal.context.learning
        # 300 KB is below what could ever matter (floor / multiplier): never stored
        assert signal.evidence["baseline_peaks"] == {"bytes": 0.0}


def test_the_replayed_teams_token_case() -> None:
    today = reads(14 * MIB, T0 + 10 * HOUR + 60, n=100, step=5.0, make=delegated, ip=NEW_IP)
    result = run(HighVolumeTransfer(), in_time_order(user_history() + today))
    signal = result.final(TEN_MIN, since=T0)
    assert signal.evidence["bytes"] == 14 * MIB
    assert signal.context.new_network == "198.51.100.0/24"


def test_silent_below_ten_times_the_peak() -> None:
    history = user_history(daily_bytes=MIB)
    today = reads(10 * MIB - 1, T0 + 10 * HOUR + 60, make=delegated)
    result = run(HighVolumeTransfer(), in_time_order(history + today))
    assert TEN_MIN not in result.lengths(since=T0)
    tenfold = reads(10 * MIB, T0 + 10 * HOUR + 60, make=delegated)
    result = run(HighVolumeTransfer(), in_time_order(history + tenfold))
    assert result.final(TEN_MIN, since=T0).evidence["baseline_peaks"] == {"bytes": MIB}


def test_params_validated() -> None:
    with pytest.raises(ValueError, match="min_bytes_learning: expected 2 values"):
        Params(min_bytes_learning=(1,))
