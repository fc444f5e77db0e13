"""denied_requests: 401/403 bursts across families, with a ratio and a family floor."""

from __future__ import annotations

import pickle

import pytest

from detectors.denied_requests import DeniedRequests, Params
from detectors.event import GraphEvent
from tests.detectors.factory import T0, event, run, shuffled

FAMILIES = ("users", "groups", "applications", "mail", "onedrive")


def calls(count: int, families: tuple[str, ...] = FAMILIES, status: int = 403,
          start: float = T0) -> list[GraphEvent]:
    return [event(family=families[n % len(families)], template=f"/{families[n % len(families)]}",
                  status=status, ts=start + n)
            for n in range(count)]


@pytest.mark.parametrize(("denied", "fires"), [(4, False), (5, True)])
def test_denied_count_threshold(denied: int, fires: bool) -> None:
    findings = run(DeniedRequests(), calls(denied))
    assert bool(findings) is fires
    if fires:
        evidence = findings[0].evidence
        assert evidence["denied"] == 5 and evidence["denied_ratio"] == 1.0
        assert evidence["denied_families"]["count"] == 5


def test_single_family_denials_do_not_fire() -> None:
    monitor = calls(40, families=("groups",))
    assert run(DeniedRequests(), monitor) == []


def test_monitor_with_occasional_403_does_not_fire() -> None:
    healthy = calls(200, status=200) + calls(1, families=("groups",), status=401)
    assert run(DeniedRequests(), healthy) == []


@pytest.mark.parametrize(("successes", "fires"), [(11, True), (12, False)])
def test_ratio_threshold(successes: int, fires: bool) -> None:
    # 5 denied of 16 requests = 0.3125 ≥ 0.3; of 17 = 0.294 < 0.3 (successes first)
    events = calls(successes, status=200) + calls(5)
    assert bool(run(DeniedRequests(), events)) is fires


def test_final_crossing_fires_in_every_order() -> None:
    events = calls(10, status=200) + calls(6)  # 6 / 16 ≥ 0.3 at the end
    for seed in range(10):
        assert len(run(DeniedRequests(), shuffled(events, seed))) == 1


def test_ratio_evaluated_on_arrival_front_loaded_denials_fire() -> None:
    denials_first = calls(5) + calls(100, status=200)
    assert run(DeniedRequests(), denials_first)
    assert run(DeniedRequests(), list(reversed(denials_first))) == []


def test_batch_rows_are_not_counted() -> None:
    batch = [event(family="batch", template="/$batch", category="batch", method="POST")] * 50
    assert run(DeniedRequests(), batch + calls(5))


def test_fires_once_per_window_and_window_edge() -> None:
    assert len(run(DeniedRequests(), calls(30))) == 1
    split = calls(4, start=T0 + 596) + calls(4, start=T0 + 600)
    assert [f.window_start for f in run(DeniedRequests(), split)] == []


def test_state_pickles_expires_and_validates() -> None:
    detector = DeniedRequests()
    state = detector.new_state()
    run(detector, calls(4), state)
    restored = pickle.loads(pickle.dumps(state))
    assert run(detector, calls(1, start=T0 + 10), restored)
    assert detector.expire(restored, T0 + 601) is True
    with pytest.raises(ValueError, match="min_ratio"):
        Params(min_ratio=1.5)
    with pytest.raises(ValueError, match="min_ratio"):
        Params(min_ratio=True)
