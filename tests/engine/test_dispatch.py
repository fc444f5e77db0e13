"""The engine's dispatch (detectors asked once per event shape, states created on acceptance)
finds exactly what asking every detector about every event finds, and ``accepts`` keeps its
promise: an event it turns away neither changes a state nor finds anything."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from detectors import catalog
from detectors.base import EventContext, Facts, Learning, Who, shape_of
from detectors.event import GraphEvent
from detectors.profile import Profile
from detectors.windows import WindowedDetector
from graphsentry.engine import Dispatch
from tests.detectors.factory import (
    NEW_IP,
    T0,
    Recorder,
    Runner,
    event,
    in_time_order,
    routine,
    settings,
)
from tests.detectors.orders import property_settings
from tests.detectors.workloads import KINDS, parts, small_params, workload
from tests.engine.scenario import workload as scenario


class AskEveryone(Recorder):
    """Every detector asked ``accepts`` for every event (no per-shape cache)."""

    def _dispatch(self, event: GraphEvent) -> Dispatch:
        return tuple((d.meta.id, d, True) for d in self.detectors)


def outputs(engine: Recorder, events: list[GraphEvent]) -> tuple[Any, ...]:
    runner = Runner(engine, parts).feed(events).flush()
    return runner.out.signals, runner.out.alerts


def test_dispatch_finds_what_asking_every_detector_finds_on_the_scenario() -> None:
    events = in_time_order(GraphEvent.from_record(r) for r in scenario())
    fast = outputs(Recorder(catalog.build_detectors(), settings()), events)
    naive = outputs(AskEveryone(catalog.build_detectors(), settings()), events)
    assert fast == naive and fast[0]


@property_settings(30)
@given(st.data())
def test_dispatch_finds_what_asking_every_detector_finds(data: st.DataObject) -> None:
    kinds = [KINDS[k] for k in data.draw(st.lists(st.sampled_from(sorted(KINDS)), min_size=3,
                                                  max_size=6, unique=True))]
    events = in_time_order(data.draw(workload(kinds, principals=2)))
    params = small_params()
    fast = outputs(Recorder(catalog.build_detectors(params), settings()), events)
    naive = outputs(AskEveryone(catalog.build_detectors(params), settings()), events)
    assert fast == naive


TEMPLATES = ["/users", "/users/{id}", "/groups/{id}/members", "/me", "/me/messages",
             "/users/{id}/messages", "/drives/{id}/items/{id}/content", "/me/drive/root/children",
             "/sites", "/sites/{id}", "/applications/{id}/addPassword",
             "/users/{id}/authentication/phoneMethods", "/$batch", "/organization", "/teams",
             "/chats/{id}/messages", "/servicePrincipals/{id}/appRoleAssignedTo",
             "/applications/{id}/owners/$ref", "/oauth2PermissionGrants"]
FAMILIES = ["users", "groups", "me", "mail", "onedrive", "sharepoint", "applications",
            "authentication_methods", "batch", "organization", "teams"]
CATEGORIES = ["directory", "mail", "storage", "other", "batch", "authentication_methods"]

events_strategy = st.builds(
    lambda template, family, category, method, status, write, download, ip, agent, target,
    offset: event(ts=T0 + offset, template=template, family=family, category=category,
                  method=method, status=status, is_write=write, is_download=download, ip=ip,
                  user_agent=agent, target_user=target, target_drive="b!d", target_site="s-1",
                  target_item="i-1", target_application="a-9"),
    st.sampled_from(TEMPLATES), st.sampled_from(FAMILIES), st.sampled_from(CATEGORIES),
    st.sampled_from(["GET", "POST", "PATCH"]), st.sampled_from([200, 201, 302, 403, 404]),
    st.booleans(), st.booleans(), st.sampled_from([None, "203.0.113.10", NEW_IP]),
    st.sampled_from([None, "Mozilla/5.0", "azurehound/2.1"]),
    st.sampled_from([None, "me", "u-2"]), st.floats(0, 86_400))
facts_strategy = st.builds(Facts, new_network=st.sampled_from((None, "198.51.100.0/24")),
                           new_client=st.booleans(),
                           privilege=st.sampled_from(("low", "high")),
                           asn=st.sampled_from((None, 64500)))


def _established() -> Profile:
    profile = Profile()
    for e in routine(5):
        profile.observe(e.ts, e.ip, None, e.user_agent, e.app_id)
    return profile


@property_settings(150)
@given(probe=events_strategy, data=st.data(), facts=facts_strategy, other=facts_strategy)
def test_shape_filtered_detectors_answer_per_shape(probe: GraphEvent, data: st.DataObject,
                                                   facts: Facts, other: Facts) -> None:
    """The engine asks ``accepts_shape`` once per shape; a detector that is not ``refined``
    must then answer ``accepts`` the same for every event of that shape and any facts."""
    twin = replace(probe, ip=data.draw(st.sampled_from([None, "192.0.2.1"])),
                   user_agent=data.draw(st.sampled_from([None, "curl/8", "sharphound/1"])),
                   target_user=data.draw(st.sampled_from([None, "me", "u-9"])),
                   uri="https://graph.microsoft.com/v1.0/x", ts=probe.ts + 1, request_id="twin")
    assert shape_of(twin) == shape_of(probe)
    for detector in catalog.build_detectors():
        if not detector.shape_filtered:
            continue
        if detector.accepts(probe, facts):
            assert detector.accepts_shape(probe), detector.meta.id
        if not detector.refined:
            assert detector.accepts(probe, facts) == detector.accepts(twin, other) \
                == detector.accepts_shape(probe), detector.meta.id


@property_settings(150)
@given(earlier=st.lists(events_strategy, max_size=8), probe=events_strategy,
       facts=facts_strategy, established=st.booleans())
def test_a_turned_away_event_changes_nothing(earlier: list[GraphEvent], probe: GraphEvent,
                                              facts: Facts, established: bool) -> None:
    """For the detectors that examine events themselves (single events, new origin, attack
    tool): an event ``accepts`` turns away neither finds anything nor changes a state.
    (Windowed detectors count whatever they are given: the engine only gives them what
    ``accepts`` took, which the dispatch tests above check.)"""
    profile = _established() if established else Profile()
    who = Who.of(probe)
    for detector in catalog.build_detectors():
        if isinstance(detector, WindowedDetector) or detector.accepts(probe, facts):
            continue
        state = detector.new_state()
        for e in earlier:
            if detector.accepts(e, facts):
                detector.observe(state, e, EventContext(profile, facts=facts), who)
        before = copy.deepcopy(state)
        ctx = EventContext(profile, facts=facts, learning=Learning())
        assert detector.observe(state, probe, ctx, who) == [], detector.meta.id
        assert state.slots == before.slots, detector.meta.id
