"""The engine's dispatch (detectors asked per event shape, states created on acceptance) finds
exactly what observing every event with every detector finds, and ``accepts`` keeps its
promise: an event it turns away neither changes a state nor finds anything."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from detectors.history import PrincipalHistory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import detectors.catalog as catalog
from detectors.base import Detector, EventContext, Finding
from detectors.event import GraphEvent
from graphsentry.config import config_from_dict
from graphsentry.engine import DetectionEngine, Dispatch
from tests.detectors.factory import T0, event
from tests.engine.test_engine import events_of, run


class _Unfiltered(Detector):
    """A detector as the engine would drive it without any filter: ``observe`` every event."""

    def __init__(self, inner: Detector) -> None:
        self.inner, self.meta = inner, inner.meta

    def new_state(self) -> Any:
        return self.inner.new_state()

    def observe(self, state: Any, event: GraphEvent, ctx: EventContext) -> list[Finding]:
        return self.inner.observe(state, event, ctx)

    def expire(self, state: Any, watermark: float) -> bool:
        return self.inner.expire(state, watermark)


class _NaiveEngine(DetectionEngine):
    def _dispatch(self, shape: tuple[Any, ...], event: GraphEvent,
                  ctx: EventContext) -> Dispatch:
        return tuple((d.meta.id, _Unfiltered(d), False) for d in self.detectors)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> list[GraphEvent]:
    from graphsentry.ingest import iter_records

    out = tmp_path_factory.mktemp("sim") / "sim.jsonl"
    subprocess.run([sys.executable, "-m", "graphsentry.cli", "simulate", "--users", "20",
                    "--days", "2", "--out", str(out)], check=True, capture_output=True,
                   timeout=120)
    return events_of(list(iter_records([str(Path(out))])))


def test_dispatch_finds_what_every_detector_on_every_event_finds(
        simulated: list[GraphEvent]) -> None:
    config = config_from_dict({})
    fast, _, fast_updates = run(DetectionEngine(config), simulated)
    naive, _, naive_updates = run(_NaiveEngine(config), simulated)
    assert len({a["detector"] for a in naive}) >= 8  # the simulated attacks reach most detectors
    assert fast == naive
    assert [key for key, _ in fast_updates] == [key for key, _ in naive_updates]


TEMPLATES = ["/users", "/users/{id}", "/groups/{id}/members", "/me", "/me/messages",
             "/users/{id}/messages", "/drives/{id}/items/{id}/content", "/me/drive/root/children",
             "/sites", "/sites/{id}", "/applications/{id}/addPassword",
             "/users/{id}/authentication/phoneMethods", "/$batch", "/organization", "/teams"]
FAMILIES = ["users", "groups", "me", "mail", "onedrive", "sharepoint", "applications",
            "authentication_methods", "batch", "organization", "teams"]
CATEGORIES = ["directory", "mail", "storage", "other", "batch", "authentication_methods"]

events_strategy = st.builds(
    lambda template, family, category, method, status, write, download, ip, agent, offset:
    event(ts=T0 + offset, template=template, family=family, category=category, method=method,
          status=status, is_write=write, is_download=download, ip=ip, user_agent=agent,
          target_user="u-2", target_drive="b!d", target_site="s-1", target_item="i-1",
          target_application="a-9"),
    st.sampled_from(TEMPLATES), st.sampled_from(FAMILIES), st.sampled_from(CATEGORIES),
    st.sampled_from(["GET", "POST", "PATCH"]), st.sampled_from([200, 201, 302, 403, 404]),
    st.booleans(), st.booleans(), st.sampled_from([None, "203.0.113.10", "198.51.100.7"]),
    st.sampled_from([None, "Mozilla/5.0", "azurehound/2.1"]), st.floats(0, 86_400))


def _established_history() -> PrincipalHistory:
    history = PrincipalHistory()
    for i in range(60):
        history.observe(event(ts=T0 - 2 * 86_400 + i))
    return history


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(earlier=st.lists(events_strategy, max_size=8), probe=events_strategy,
       established=st.booleans())
def test_a_turned_away_event_changes_nothing(earlier: list[GraphEvent], probe: GraphEvent,
                                              established: bool) -> None:
    ctx = EventContext(history=_established_history() if established else PrincipalHistory())
    for detector in catalog.build_detectors():
        if detector.accepts(probe, ctx):
            continue
        state = detector.new_state()
        for e in earlier:
            detector.observe(state, e, ctx)
        before = copy.deepcopy(state)
        assert detector.observe(state, probe, ctx) == [], detector.meta.id
        assert state == before, detector.meta.id
