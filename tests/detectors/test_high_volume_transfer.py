"""high_volume_transfer: bytes or downloads above an absolute floor and the own baseline."""

from __future__ import annotations

import pickle

import pytest

from detectors.event import GraphEvent
from detectors.high_volume_transfer import MIB, HighVolumeTransfer, Params
from tests.detectors.factory import T0, alert_ids_in_orders, event, replay_windows, run

SMALL = Params(min_bytes=1000, min_downloads=10)  # floors that keep the cases short


def pages(count: int, size: int, start: float = T0) -> list[GraphEvent]:
    return [event(template="/users", size=size, query_top=999, ts=start + n % 500)
            for n in range(count)]


def downloads(count: int, start: float = T0) -> list[GraphEvent]:
    return [event(family="onedrive", category="storage", template="/drives/{id}/items/{id}/content",
                  is_download=True, status=302, size=0, target_item=f"i{n}", ts=start + n % 500)
            for n in range(count)]


@pytest.mark.parametrize(("size", "fires"), [(1999, False), (2000, True)])
def test_bytes_floor_doubled_without_baseline(size: int, fires: bool) -> None:
    findings = run(HighVolumeTransfer(SMALL), pages(1, size))
    assert bool(findings) is fires
    if fires:
        assert findings[0].evidence["bytes"] == 2000
        assert findings[0].evidence["baseline_peak_bytes"] is None


@pytest.mark.parametrize(("count", "fires"), [(19, False), (20, True)])
def test_download_floor_doubled_without_baseline(count: int, fires: bool) -> None:
    assert bool(run(HighVolumeTransfer(SMALL), downloads(count))) is fires


def test_default_floor_is_fifty_mib_doubled() -> None:
    assert run(HighVolumeTransfer(), pages(99, MIB)) == []
    assert run(HighVolumeTransfer(), pages(100, MIB))


def test_silent_when_batch_row_bytes_would_count_twice() -> None:
    batch = event(family="batch", category="batch", template="/$batch", method="POST", size=1500)
    assert run(HighVolumeTransfer(SMALL), [batch, *pages(1, 1500)]) == []


def test_fires_once_per_window_and_window_edge() -> None:
    assert len(run(HighVolumeTransfer(SMALL), pages(50, 1000))) == 1
    split = pages(1, 1500, start=T0 + 599) + pages(1, 1500, start=T0 + 600)
    assert run(HighVolumeTransfer(SMALL), split) == []


def test_arrival_order_does_not_change_alerts() -> None:
    events = pages(3, 800) + downloads(5, start=T0 + 600) + downloads(25, start=T0 + 1200)
    first, *others = alert_ids_in_orders(lambda: HighVolumeTransfer(SMALL), events)
    assert len(first) == 2 and all(ids == first for ids in others)


def test_baseline_suppresses_the_usual_volume_and_catches_a_spike() -> None:
    detector = HighVolumeTransfer(SMALL)
    state = detector.new_state()

    def nightly(start: float) -> list[GraphEvent]:
        return pages(5, 1000, start=start) + downloads(30, start=start)

    runs = replay_windows(detector, state, nightly, 6)
    assert all(len(found) == 1 for found in runs)  # 5000 B ≥ 2 x floor, no baseline yet
    assert state.peaks == {"bytes": 5000.0, "downloads": 30.0} and state.closed_windows == 6
    length = detector.window_seconds
    assert run(detector, nightly(T0 + 7 * length), state) == []
    assert run(detector, pages(49, 1000, start=T0 + 8 * length), state) == []  # < 10 x peak
    spike = run(detector, pages(50, 1000, start=T0 + 9 * length), state)
    assert len(spike) == 1 and spike[0].evidence["baseline_peak_bytes"] == 5000.0


def test_with_baseline_the_floor_still_applies() -> None:
    detector = HighVolumeTransfer(SMALL)
    state = detector.new_state()
    replay_windows(detector, state, lambda start: pages(1, 10, start=start), 6)
    assert run(detector, pages(1, 999, start=T0 + 7 * 600), state) == []  # 99 x peak
    assert run(detector, pages(1, 1000, start=T0 + 8 * 600), state)


def test_state_pickles_and_expire_keeps_peaks() -> None:
    detector = HighVolumeTransfer(SMALL)
    state = detector.new_state()
    run(detector, pages(1, 700), state)
    restored = pickle.loads(pickle.dumps(state))
    assert detector.expire(restored, T0 + 601) is False
    assert restored.windows == {} and restored.peaks["bytes"] == 700.0
    with pytest.raises(ValueError, match="no_baseline_factor"):
        Params(no_baseline_factor=float("inf"))
