"""sharepoint_enumeration: many sites read, or tenant-wide site listings, against the
principal's own peak."""

from __future__ import annotations

from typing import Any

import pytest

from detectors.event import GraphEvent
from detectors.sharepoint_enumeration import Params, SharepointEnumeration, is_site_listing
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

TEN_MIN = 600.0


def sites(n: int, start: float = T0, step: float = 10.0, **fields: Any) -> list[GraphEvent]:
    return [event(ts=start + i * step, family="sharepoint", category="storage",
                  template="/sites/{id}/drives", uri=f"{GRAPH}/sites/s{i}/drives",
                  target_site=f"S{i}", **fields) for i in range(n)]


def listing(query: str = "?search=*", template: str = "/sites", ts: float = T0,
            **fields: Any) -> GraphEvent:
    return event(ts=ts, family="sharepoint", category="storage", template=template,
                 uri=f"{GRAPH}{template}{query}", target_site=None, **fields)


@pytest.mark.parametrize(("n", "fires"), [(4, False), (5, True)])
def test_fires_at_the_site_floor(n: int, fires: bool) -> None:
    result = run(SharepointEnumeration(), sites(n))
    assert (TEN_MIN in result.lengths()) is fires
    if fires:
        assert result.final(TEN_MIN).evidence["sites"] == {
            "count": 5, "capped": False, "sample": [f"s{i}" for i in range(5)]}


@pytest.mark.parametrize(("event_", "fires"), [
    (listing("?search=*"), True),
    (listing('?$search="*"'), True),
    (listing(""), True),
    (listing("", template="/sites/getAllSites"), True),
    (listing("?search=contoso"), False),   # a site picker: a named search
    (listing("?search=*", status=403), True),
])
def test_fires_on_a_tenant_wide_site_listing(event_: GraphEvent, fires: bool) -> None:
    result = run(SharepointEnumeration(), [event_])
    assert bool(result.finals()) is fires
    assert is_site_listing(event_) is fires


def test_silent_for_writes_search_and_one_site() -> None:
    writes = sites(20, method="POST", is_write=True)
    search = [event(ts=T0 + i, family="search", template="/search/query", method="POST")
              for i in range(20)]
    one = [event(ts=T0 + i, family="sharepoint", template="/sites/{id}/lists",
                 target_site="s1") for i in range(50)]
    assert run(SharepointEnumeration(), writes + search + one).signals == []


def test_silent_when_split_by_the_window_edge_or_late() -> None:
    assert TEN_MIN not in run(SharepointEnumeration(),
                              sites(3, T0 + 580) + sites(3, T0 + 600)).lengths()
    newest = event(ts=T0 + TEN_MIN + LATENESS + 1)
    assert run(SharepointEnumeration(), [newest, *sites(10)]).signals == []


def test_slow_site_walk_crosses_the_day_window() -> None:
    assert run(SharepointEnumeration(), sites(25, step=3400.0)).lengths() == [DAY]


def test_site_ids_compare_case_insensitively_and_missing_ones_do_not_count() -> None:
    same = [*sites(3), *sites(3)]  # S0..S2 twice
    upper = [event(ts=T0 + 50 + i, family="sharepoint", template="/sites/{id}",
                   target_site=f"s{i}") for i in range(3)]
    nameless = [event(ts=T0 + 100 + i, family="sharepoint", template="/sites/{id}/x",
                      target_site=None) for i in range(10)]
    assert run(SharepointEnumeration(), same + upper + nameless).signals == []


def governance(days: int = 5) -> list[GraphEvent]:
    return routine(days, hours=(3, 4)) + daily(lambda s: sites(30, s), days, 3 * HOUR)


@pytest.mark.parametrize(("n", "at", "fires"), [
    (30, 3 * HOUR, False), (89, 3 * HOUR, False), (90, 3 * HOUR, True),
    (30, 15 * HOUR, True)])
def test_baseline_table(n: int, at: float, fires: bool) -> None:
    events = in_time_order(governance() + sites(n, T0 + at, step=5.0))
    assert (TEN_MIN in run(SharepointEnumeration(), events).lengths(since=T0)) is fires


def test_params_validated() -> None:
    with pytest.raises(ValueError, match="min_sites: expected 3 values"):
        Params(min_sites=(5, 10))
