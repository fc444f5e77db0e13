"""sharepoint_enumeration: many distinct sites, or a tenant-wide site listing."""

from __future__ import annotations

import pickle
from dataclasses import replace

import pytest

from detectors.event import GraphEvent
from detectors.sharepoint_enumeration import Params, SharepointEnumeration, is_site_listing
from tests.detectors.factory import T0, alert_ids_in_orders, delegated, event, run

GRAPH = "https://graph.microsoft.com/v1.0"


def site_reads(sites: int, start: float = T0, per_site: int = 1,
               status: int = 200) -> list[GraphEvent]:
    return [event(family="sharepoint", category="storage", template="/sites/{id}/drives",
                  uri=f"{GRAPH}/sites/site-{n}/drives", target_site=f"site-{n}",
                  ts=start + n, status=status)
            for n in range(sites) for _ in range(per_site)]


def listing(query: str, template: str = "/sites") -> GraphEvent:
    return event(family="sharepoint", category="storage", template=template,
                 uri=f"{GRAPH}{template}{query}")


@pytest.mark.parametrize(("sites", "fires"), [(4, False), (5, True)])
def test_distinct_sites_threshold(sites: int, fires: bool) -> None:
    findings = run(SharepointEnumeration(), site_reads(sites))
    assert bool(findings) is fires
    if fires:
        assert findings[0].evidence["sites"]["count"] == 5
        assert findings[0].evidence["sites"]["sample"][0] == "site-0"


def test_repeated_site_reads_count_once_and_fire_once() -> None:
    detector, state = SharepointEnumeration(), SharepointEnumeration().new_state()
    assert run(detector, site_reads(4, per_site=30), state) == []
    assert len(run(detector, site_reads(10, start=T0 + 10), state)) == 1


def test_denied_site_reads_count() -> None:
    assert run(SharepointEnumeration(), site_reads(5, status=403))


def test_writes_are_not_enumeration() -> None:
    uploads = [replace(e, is_write=True, method="PUT") for e in site_reads(6)]
    assert run(SharepointEnumeration(), uploads) == []


@pytest.mark.parametrize(("query", "template", "expected"), [
    ("?search=*", "/sites", True),
    ("?search=", "/sites", True),
    ("", "/sites", True),
    ("", "/sites/getAllSites", True),
    ("?search=marketing", "/sites", False),
    ("", "/sites/root", False),
])
def test_site_listing_shapes(query: str, template: str, expected: bool) -> None:
    assert is_site_listing(listing(query, template)) is expected


def test_wildcard_site_search_fires_named_search_does_not() -> None:
    assert run(SharepointEnumeration(), [listing("?search=*")])
    assert run(SharepointEnumeration(), [listing("?search=finance")] * 3) == []


def test_site_listing_threshold_is_configurable() -> None:
    detector = SharepointEnumeration(Params(min_site_listings=2))
    assert run(detector, [listing("?search=*")]) == []
    assert run(detector, [listing("?search=*"), listing("?search=*")])


def test_other_families_ignored() -> None:
    drives = [delegated(family="onedrive", category="storage", target_site=f"s{n}",
                        template="/drives/{id}") for n in range(10)]
    assert run(SharepointEnumeration(), drives) == []


def test_window_edge_split_does_not_fire() -> None:
    events = site_reads(3, start=T0 + 590) + site_reads(4, start=T0 + 600)
    assert run(SharepointEnumeration(), events) == []


def test_arrival_order_does_not_change_alerts() -> None:
    events = site_reads(8) + site_reads(3, start=T0 + 600) + site_reads(6, start=T0 + 1200)
    first, *others = alert_ids_in_orders(SharepointEnumeration, events)
    assert len(first) == 2 and all(ids == first for ids in others)


def test_state_pickles_and_expires() -> None:
    detector = SharepointEnumeration()
    state = detector.new_state()
    run(detector, site_reads(4), state)
    restored = pickle.loads(pickle.dumps(state))
    assert run(detector, site_reads(5), restored)
    assert detector.expire(restored, T0 + 599) is False
    assert detector.expire(restored, T0 + 601) is False  # the baseline peaks stay
    assert not restored.windows and restored.peaks
    assert restored.closed_windows == 1 and not restored.fired


def test_silent_for_nightly_site_crawl_once_it_has_a_baseline() -> None:
    detector = SharepointEnumeration()
    state = detector.new_state()
    for night in range(7):
        start = T0 + night * 86_400
        run(detector, site_reads(12, start=start), state)
        detector.expire(state, start + 3_600)
    assert run(detector, site_reads(12, start=T0 + 7 * 86_400), state) == []
    assert run(detector, site_reads(40, start=T0 + 8 * 86_400), state)  # > 3x the usual crawl
