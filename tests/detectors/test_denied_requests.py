"""denied_requests: bursts of 401/403 across several families, above the principal's own
usual denials."""

from __future__ import annotations

from typing import Any

import pytest

from detectors.denied_requests import DeniedRequests, Params
from detectors.event import GraphEvent
from tests.detectors.factory import (
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
FAMILIES = ("users", "mail", "sites", "groups")


def denied(n: int, families: int = 2, start: float = T0, step: float = 10.0,
           status: int = 403, **fields: Any) -> list[GraphEvent]:
    return [event(ts=start + i * step, status=status, family=FAMILIES[i % families],
                  template=f"/{FAMILIES[i % families]}/{{id}}",
                  uri=f"{GRAPH}/{FAMILIES[i % families]}/x{i}", **fields) for i in range(n)]


@pytest.mark.parametrize(("n", "families", "fires"), [
    (4, 2, False),   # threshold - 1
    (5, 2, True),    # threshold
    (30, 1, False),  # one family only: a workload missing one permission
])
def test_fires_at_the_floor_across_families(n: int, families: int, fires: bool) -> None:
    result = run(DeniedRequests(), denied(n, families))
    assert (TEN_MIN in result.lengths()) is fires
    if fires:
        evidence = result.final(TEN_MIN).evidence
        assert evidence["denied"] == 5 and evidence["denied_families"]["count"] == 2
        assert evidence["denied_templates"]["sample"] == ["/mail/{id}", "/users/{id}"]


def test_401_counts_and_other_failures_do_not() -> None:
    assert run(DeniedRequests(), denied(5, status=401)).finals()
    assert run(DeniedRequests(), denied(50, status=404)).signals == []
    assert run(DeniedRequests(), denied(50, status=429)).signals == []


def test_silent_for_batch_envelopes() -> None:
    envelopes = [event(ts=T0 + i, status=403, family="batch", template="/$batch")
                 for i in range(20)]
    assert run(DeniedRequests(), envelopes).signals == []


def test_slow_probing_crosses_the_hour_window() -> None:
    slow = denied(15, step=240.0)  # two or three per ten minutes
    assert run(DeniedRequests(), slow).lengths() == [ONE_HOUR]


def test_silent_when_split_by_the_window_edge_and_late() -> None:
    split = denied(3, start=T0 + 570) + denied(3, start=T0 + 600)
    assert TEN_MIN not in run(DeniedRequests(), split).lengths()
    newest = event(ts=T0 + TEN_MIN + LATENESS + 1)
    assert run(DeniedRequests(), [newest, *denied(10)]).signals == []


def test_missing_family_still_counts_as_one() -> None:
    blank = [event(ts=T0 + i, status=403, family="", template="/x") for i in range(10)]
    assert run(DeniedRequests(), blank).signals == []  # no family known: not across families


def monitor(days: int = 5) -> list[GraphEvent]:
    """A monitor denied on two families ten times every day at 08:00."""
    return routine(days, hours=(8, 9)) + daily(lambda s: denied(10, start=s), days, 8 * HOUR)


@pytest.mark.parametrize(("n", "at", "fires"), [
    (10, 8 * HOUR, False),   # its usual denials
    (29, 8 * HOUR, False),   # below three times its peak
    (30, 8 * HOUR, True),
    (10, 20 * HOUR, True),   # the usual burst at an unusual hour
])
def test_baseline_table(n: int, at: float, fires: bool) -> None:
    events = in_time_order(monitor() + denied(n, start=T0 + at, step=5.0))
    assert (TEN_MIN in run(DeniedRequests(), events).lengths(since=T0)) is fires


def test_params_validated() -> None:
    with pytest.raises(ValueError, match="min_denied: expected 2 values"):
        Params(min_denied=(5,))
    with pytest.raises(ValueError, match="min_families"):
        Params(min_families=0)
