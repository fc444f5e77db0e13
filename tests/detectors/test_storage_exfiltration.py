"""storage_exfiltration: many file downloads, floored, and measured against the baseline."""

from __future__ import annotations

import pickle

import pytest

from detectors.event import GraphEvent
from detectors.storage_exfiltration import Params, StorageExfiltration
from tests.detectors.factory import T0, alert_ids_in_orders, event, replay_windows, run

GRAPH = "https://graph.microsoft.com/v1.0"


def downloads(count: int, start: float = T0, items: int | None = None, status: int = 302,
              drive: str = "b!drive1") -> list[GraphEvent]:
    items = items or count
    return [event(family="onedrive", category="storage",
                  template="/drives/{id}/items/{id}/content", is_download=True, size=0,
                  uri=f"{GRAPH}/drives/{drive}/items/i{n % items}/content",
                  target_drive=drive, target_item=f"i{n % items}", status=status,
                  ts=start + n % 500)
            for n in range(count)]


@pytest.mark.parametrize(("count", "fires"), [(24, False), (25, True)])
def test_download_floor(count: int, fires: bool) -> None:
    findings = run(StorageExfiltration(), downloads(count))
    assert bool(findings) is fires
    if fires:
        evidence = findings[0].evidence
        assert evidence["downloads"] == 25 and evidence["items"]["count"] == 25
        assert evidence["drives"]["sample"] == ["b!drive1"]
        assert evidence["baseline_peak_downloads"] is None


@pytest.mark.parametrize(("items", "fires"), [(19, False), (20, True)])
def test_distinct_items_floor(items: int, fires: bool) -> None:
    assert bool(run(StorageExfiltration(), downloads(60, items=items))) is fires


def test_inline_200_downloads_count_failed_ones_do_not() -> None:
    assert run(StorageExfiltration(), downloads(25, status=200))
    assert run(StorageExfiltration(), downloads(40, status=403)) == []
    listing = [event(family="onedrive", template="/drives/{id}/items/{id}", target_item=f"i{n}")
               for n in range(40)]
    assert run(StorageExfiltration(), listing) == []


def test_fires_once_per_window_and_window_edge() -> None:
    assert len(run(StorageExfiltration(), downloads(300))) == 1
    split = downloads(20, start=T0 + 580) + downloads(20, start=T0 + 600)
    assert [e.ts for e in split[:20] if e.ts >= T0 + 600] == []
    assert run(StorageExfiltration(), split) == []


def test_arrival_order_does_not_change_alerts() -> None:
    events = downloads(30) + downloads(10, start=T0 + 600) + downloads(50, start=T0 + 1200)
    first, *others = alert_ids_in_orders(StorageExfiltration, events)
    assert len(first) == 2 and all(ids == first for ids in others)


def test_expire_records_the_baseline_and_state_pickles() -> None:
    detector = StorageExfiltration()
    state = detector.new_state()
    run(detector, downloads(30), state)
    run(detector, downloads(10, start=T0 + 600), state)
    assert detector.expire(state, T0 + 1200) is False  # the peak is kept
    assert state.peaks == {"downloads": 30.0} and state.closed_windows == 1
    assert list(state.windows) == [T0 + 600]
    restored = pickle.loads(pickle.dumps(state))
    assert detector.expire(restored, T0 + 1201) is False
    assert restored.windows == {} and restored.closed_windows == 2


def test_silent_for_backup_pattern_once_it_has_a_baseline() -> None:
    detector = StorageExfiltration()
    state = detector.new_state()
    length = detector.window_seconds

    def backup(start: float) -> list[GraphEvent]:
        return downloads(300, start=start)

    runs = replay_windows(detector, state, backup, 6)
    assert all(len(found) == 1 for found in runs)  # no baseline yet: alerts at the floor
    assert state.closed_windows == 6
    assert run(detector, backup(T0 + 7 * length), state) == []
    spike = run(detector, downloads(1500, start=T0 + 8 * length, items=1500), state)
    assert len(spike) == 1 and spike[0].evidence["baseline_peak_downloads"] == 300.0


def test_baseline_multiplier_edge() -> None:
    detector = StorageExfiltration(Params(min_baseline_windows=2))
    state = detector.new_state()
    replay_windows(detector, state, lambda start: downloads(30, start=start), 2)
    assert run(detector, downloads(89, start=T0 + 3000), state) == []
    assert run(detector, downloads(90, start=T0 + 3600), state)


def test_params_validated() -> None:
    with pytest.raises(ValueError, match="download_statuses"):
        Params(download_statuses=("302",))  # type: ignore[arg-type]
    assert Params(download_statuses=[302]).download_statuses == (302,)  # type: ignore[arg-type]
