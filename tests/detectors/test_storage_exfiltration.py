"""storage_exfiltration: file downloads per 10 min / 1 h / 1 day, floored, against the
principal's own peak at that time of day."""

from __future__ import annotations

from typing import Any

import pytest

from detectors.event import GraphEvent
from detectors.storage_exfiltration import Params, StorageExfiltration
from tests.detectors.factory import (
    DAY,
    GRAPH,
    HOUR,
    LATENESS,
    T0,
    daily,
    event,
    in_time_order,
    routine,
    run,
)

TEN_MIN, ONE_HOUR = 600.0, 3600.0


def downloads(count: int, start: float = T0, items: int | None = None, status: int = 302,
              step: float = 1.0, drive: str = "b!drive1", **fields: Any) -> list[GraphEvent]:
    items = items or count
    return [event(family="onedrive", category="storage",
                  template="/drives/{id}/items/{id}/content", is_download=True, size=0,
                  uri=f"{GRAPH}/drives/{drive}/items/i{n % items}/content",
                  target_drive=drive, target_item=f"i{n % items}", status=status,
                  ts=start + n * step, **fields)
            for n in range(count)]


@pytest.mark.parametrize(("count", "fires"), [(24, False), (25, True)])
def test_fires_at_the_download_floor_of_ten_minutes(count: int, fires: bool) -> None:
    result = run(StorageExfiltration(), downloads(count))
    assert (TEN_MIN in result.lengths()) is fires
    if fires:
        evidence = result.final(TEN_MIN).evidence
        assert evidence["downloads"] == 25 and evidence["items"]["count"] == 25
        assert evidence["drives"]["sample"] == ["b!drive1"]
        assert evidence["baseline_peaks"] is None  # learning: no baseline


@pytest.mark.parametrize(("items", "fires"), [(19, False), (20, True)])
def test_distinct_items_floor(items: int, fires: bool) -> None:
    assert (TEN_MIN in run(StorageExfiltration(), downloads(30, items=items)).lengths()) is fires


def test_inline_200_downloads_count_failed_ones_and_listings_do_not() -> None:
    assert run(StorageExfiltration(), downloads(25, status=200)).finals()
    assert run(StorageExfiltration(), downloads(40, status=403)).signals == []
    listing = [event(family="onedrive", template="/drives/{id}/items/{id}", target_item=f"i{n}")
               for n in range(40)]
    assert run(StorageExfiltration(), listing).signals == []


def test_silent_when_split_by_the_window_edge() -> None:
    split = downloads(20, start=T0 + 580) + downloads(20, start=T0 + 600, drive="b!drive2")
    assert run(StorageExfiltration(), split).signals == []  # 20 + 20; the hour needs 60


def test_fires_once_per_window_with_the_evidence_of_the_whole_window() -> None:
    result = run(StorageExfiltration(), downloads(300, step=1.9))
    provisional = result.of(final=False)
    assert [s.window_end - s.window_start for s in provisional] == [TEN_MIN, ONE_HOUR, DAY]
    final = result.final(TEN_MIN)
    assert final.evidence["downloads"] == 300 and final.count == 300
    assert provisional[0].evidence["downloads"] == 25


@pytest.mark.parametrize(("count", "fires"), [(59, False), (60, True)])
def test_slow_downloads_cross_the_hour_window(count: int, fires: bool) -> None:
    """About one a minute: never 25 in ten minutes."""
    result = run(StorageExfiltration(), downloads(count, step=3599 / count))
    assert TEN_MIN not in result.lengths()
    assert (ONE_HOUR in result.lengths()) is fires


@pytest.mark.parametrize(("count", "fires"), [(149, False), (150, True)])
def test_slow_downloads_cross_the_day_window(count: int, fires: bool) -> None:
    """A stolen daemon secret downloading all day, a few per hour."""
    result = run(StorageExfiltration(), downloads(count, step=86_399 / count))
    assert (result.lengths() == [DAY]) is fires
    if not fires:
        assert result.signals == []


def test_silent_for_events_later_than_the_lateness() -> None:
    newest = event(ts=T0 + TEN_MIN + LATENESS + 1)
    result = run(StorageExfiltration(), [newest, *downloads(30)])
    assert result.signals == [] and result.engine.counters.late == 30


def test_a_late_event_within_the_lateness_still_counts() -> None:
    on_time = downloads(24)
    late = downloads(1, start=T0 + 500)
    newer = event(ts=T0 + 500 + LATENESS)  # the late download is exactly one lateness older
    assert TEN_MIN in run(StorageExfiltration(), [*on_time, newer, *late]).lengths()


def test_missing_item_and_drive_fall_back_to_the_uri_and_target() -> None:
    no_item = [event(family="onedrive", template="/me/drive/items/{id}/content",
                     is_download=True, status=302, target_item=None, target_drive=None,
                     target_user="me", uri=f"{GRAPH}/me/drive/items/x{n}/content", ts=T0 + n)
               for n in range(25)]
    evidence = run(StorageExfiltration(), no_item).final(TEN_MIN).evidence
    assert evidence["items"]["count"] == 25 and evidence["drives"]["count"] == 0


# -- the principal's own baseline ---------------------------------------------------------------

def backup_history(days: int = 5) -> list[GraphEvent]:
    """A backup app: 300 downloads at 01:00 every night, some activity at 01:00-02:59."""
    return routine(days, hours=(1, 2)) + daily(lambda s: downloads(300, s), days, 1 * HOUR)


@pytest.mark.parametrize(("count", "at", "fires", "unusual"), [
    (300, 1 * HOUR, False, None),     # its usual time and volume
    (899, 1 * HOUR, False, None),     # below three times its peak
    (900, 1 * HOUR, True, False),     # three times its peak
    (300, 14 * HOUR, True, True),     # its usual volume at an unusual hour
])
def test_baseline_table(count: int, at: float, fires: bool, unusual: bool | None) -> None:
    events = in_time_order(backup_history() + downloads(count, T0 + at, step=0.5))
    result = run(StorageExfiltration(), events)
    assert (TEN_MIN in result.lengths(since=T0)) is fires
    if fires:
        signal = result.final(TEN_MIN, since=T0)
        assert signal.context.learning is False and signal.context.unusual_hour is unusual
        peak = 300.0 if at == 1 * HOUR else 0.0
        assert signal.evidence["baseline_peaks"] == {"downloads": peak}


def test_the_same_night_fires_while_learning_and_is_quiet_once_learnt() -> None:
    result = run(StorageExfiltration(), in_time_order(backup_history()))
    nights = sorted({s.window_start // DAY for s in result.finals()
                     if s.window_end - s.window_start == TEN_MIN})
    first_night = (T0 - 5 * DAY) // DAY
    assert nights and nights[0] == first_night
    learning = [s for s in result.finals() if s.context.learning]
    assert learning and all(s.window_start < T0 - 2 * DAY for s in learning)
    assert result.finals(since=T0 - DAY) == []  # established with its baseline: quiet


def test_params_validated() -> None:
    with pytest.raises(ValueError, match="download_statuses"):
        Params(download_statuses=("302",))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="min_items: expected 3 values"):
        Params(min_items=(20, 40))
    assert Params(download_statuses=[302]).download_statuses == (302,)  # type: ignore[arg-type]
