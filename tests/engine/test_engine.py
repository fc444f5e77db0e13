"""graphsentry.engine: one principal's state through time — late events, duplicates, events from
the future, stored profiles, window closing (by watermark, by flush), context of final signals,
snapshots — and the engine built from the configuration."""

from __future__ import annotations

import json
import pickle
from dataclasses import replace
from typing import Any

import pytest

from detectors import catalog
from detectors.app_credential_added import AppCredentialAdded
from detectors.base import AppInfo
from detectors.event import GraphEvent
from detectors.new_origin import NewOrigin
from detectors.profile import MAX_ENTRIES, Profile
from detectors.storage_exfiltration import StorageExfiltration
from graphsentry.config import config_from_dict
from graphsentry.engine import NO_PARTS, CtxParts, DetectionEngine, Emits
from tests.detectors.factory import (
    APP,
    DAY,
    GRAPH,
    HOUR,
    LATENESS,
    NEW_IP,
    OTHER_SP,
    SP,
    T0,
    WALL_CLOCK,
    Recorder,
    Runner,
    delegated,
    event,
    in_time_order,
    routine,
    run,
    settings,
)
from tests.engine.scenario import ATTACKER, workload


def events_of(records: list[dict[str, Any]]) -> list[GraphEvent]:
    return [GraphEvent.from_record(r) for r in records]


def add_password(ts: float, **fields: Any) -> GraphEvent:
    return event(ts=ts, method="POST", template="/servicePrincipals/{id}/addPassword",
                 uri=f"{GRAPH}/servicePrincipals/{OTHER_SP}/addPassword",
                 family="serviceprincipals", target_application=OTHER_SP, is_write=True,
                 **fields)


def downloads(n: int, start: float, make: Any = event, step: float = 1.0,
              **fields: Any) -> list[GraphEvent]:
    return [make(ts=start + i * step, family="onedrive", category="storage",
                  template="/drives/{id}/items/{id}/content", is_download=True, status=302,
                  size=0, uri=f"{GRAPH}/drives/b!d/items/i{i}/content", target_drive="b!d",
                  target_item=f"i{i}", **fields) for i in range(n)]


def test_the_scenario_attacker_is_one_incident_and_benign_principals_stay_quiet() -> None:
    result = run(catalog.build_detectors(), events_of(workload()))
    alerts = result.alerts()
    assert {a["principal_id"] for a in alerts.values()} == {ATTACKER}
    [incident] = [a for a in alerts.values() if a["kind"] == "incident"]
    assert incident["detector"] == "attack_chain" and incident["final"]
    assert incident["stages"][0] == "discovery" and "persistence" in incident["stages"]
    assert {s.who.principal_id for s in result.finals()} == {ATTACKER}


# -- late events -------------------------------------------------------------------------------

def test_late_events_reach_windowless_detectors_but_not_windows_or_the_profile() -> None:
    engine = Recorder([StorageExfiltration(), AppCredentialAdded()], settings())
    runner = Runner(engine).feed([event(ts=T0 + 10 * HOUR)])
    profile = runner.states[f"{event().tenant_id}/{SP}"].profile
    learnt = profile.to_dict()
    late = [*downloads(40, T0), add_password(T0 + 100, ip=NEW_IP)]
    runner.feed(late).flush()
    assert engine.counters.late == 41 and runner.out.late == late
    [credential] = runner.result().of("app_credential_added")
    assert credential.final and credential.dedup.endswith(f"|late|{late[-1].request_id}")
    assert credential.evidence["ip"] == NEW_IP
    assert runner.result().of("storage_exfiltration") == []
    assert profile.to_dict() == learnt  # nothing learnt from late events
    assert any(a["detector"] == "app_credential_added" for a in runner.out.alerts)


def test_an_event_exactly_one_lateness_old_is_not_late() -> None:
    engine = Recorder([StorageExfiltration()], settings())
    runner = Runner(engine).feed([event(ts=T0 + LATENESS)])
    runner.feed([event(ts=T0), event(ts=T0 - 0.001)])
    assert engine.counters.late == 1 and engine.counters.events == 3


# -- duplicates --------------------------------------------------------------------------------

def test_a_late_event_delivered_twice_is_examined_once() -> None:
    """The second copy of a late event is a duplicate: one late signal, not two versions."""
    engine = Recorder([AppCredentialAdded()], settings())
    runner = Runner(engine).feed([event(ts=T0 + 10 * HOUR)])
    late = add_password(T0 + 100, ip=NEW_IP)
    runner.feed([late])
    versions = len(runner.out.alerts)
    runner.feed([late])
    assert (engine.counters.late, engine.counters.duplicates) == (1, 1)
    assert len(runner.result().of("app_credential_added")) == 1
    assert len(runner.out.alerts) == versions  # no new alert version for the copy


def test_a_copy_delivered_after_the_lateness_is_a_late_event_and_examined_again() -> None:
    """What docs/detection.md and README say of copies re-delivered hours later: the
    de-duplication memory reaches back to the watermark only."""
    engine = Recorder([AppCredentialAdded()], settings())
    credential = add_password(T0 + 100, ip=NEW_IP)
    runner = Runner(engine).feed([credential])
    runner.feed([event(ts=T0 + 100 + 3 * HOUR)])
    runner.feed([credential]).flush()
    assert (engine.counters.late, engine.counters.duplicates) == (1, 0)
    finals = runner.result().of("app_credential_added")
    assert len({s.signal_id for s in finals}) == 2
    last = max(runner.out.alerts, key=lambda a: a["revision"])
    assert (last["revision"], last["signal_count"]) == (4, 2)


def test_duplicates_are_dropped_before_detectors_and_profile() -> None:
    once = downloads(30, T0)
    single = run(StorageExfiltration(), once)
    doubled = run(StorageExfiltration(), [e for e in once for _ in range(2)])
    assert doubled.engine.counters.duplicates == 30
    assert [s.signal_id for s in doubled.signals] == [s.signal_id for s in single.signals]
    assert doubled.finals()[0].evidence == single.finals()[0].evidence
    assert doubled.profile().events == single.profile().events == 30


def test_the_same_request_id_at_another_time_is_not_a_duplicate() -> None:
    first = event(ts=T0)
    result = run([StorageExfiltration()], [first, replace(first, ts=T0 + 1)])
    assert result.engine.counters.duplicates == 0 and result.profile().events == 2


def test_request_ids_are_forgotten_once_older_than_the_watermark() -> None:
    engine = Recorder([StorageExfiltration()], settings())
    runner = Runner(engine).feed([event(ts=T0, request_id="r-old")])
    runner.feed([event(ts=T0 + LATENESS + 700)])
    assert "r-old" not in runner.states[f"{event().tenant_id}/{SP}"].seen
    runner.feed([event(ts=T0, request_id="r-old")])  # now late, not a duplicate
    assert engine.counters.late == 1 and engine.counters.duplicates == 0


# -- events from the future --------------------------------------------------------------------

def test_a_far_future_record_is_rejected_and_never_moves_the_clock() -> None:
    engine = Recorder([StorageExfiltration()], settings(max_future_skew=900.0))
    runner = Runner(engine)
    future = event(ts=WALL_CLOCK + 901)
    runner.feed([future])
    assert engine.counters.future == 1 and engine.counters.events == 0
    [reject] = runner.out.rejects
    assert reject["reason"].startswith("future_timestamp: time_generated ")
    assert "more than 900 s ahead" in reject["reason"]
    assert future.request_id in reject["raw"] and reject["source"] == "detect_threats"
    runner.feed(downloads(30, T0))  # the principal's clock did not move: nothing is late
    assert engine.counters.late == 0 and runner.result().of("storage_exfiltration")
    state = runner.states[f"{event().tenant_id}/{SP}"]
    assert state.max_ts == T0 + 29
    runner.feed([event(ts=WALL_CLOCK + 899)])  # within the skew: accepted
    assert engine.counters.future == 1 and state.max_ts == WALL_CLOCK + 899


def test_the_wall_clock_can_be_passed_per_call() -> None:
    engine = DetectionEngine([StorageExfiltration()], settings())
    out = Emits()
    engine.process(engine.new_state(), event(ts=T0 + 1000), NO_PARTS, out, now=T0)
    assert engine.counters.future == 1 and len(out.rejects) == 1


# -- stored profiles ---------------------------------------------------------------------------

def established_profile(days: int = 5) -> Profile:
    warm = run([], routine(days))
    return warm.profile()


def test_a_new_state_adopts_the_stored_profile_once() -> None:
    stored = established_profile()
    engine = Recorder([NewOrigin()], settings())
    calls = iter([CtxParts(profile=stored), CtxParts(profile=Profile())])
    runner = Runner(engine, lambda _e: next(calls, NO_PARTS))
    runner.feed([event(ts=T0 + 10 * HOUR, ip=NEW_IP), event(ts=T0 + 10 * HOUR + 60)])
    state = runner.states[f"{event().tenant_id}/{SP}"]
    assert state.profile is stored and state.adopted
    assert state.profile.events == stored.events  # learnt the two events into it
    [signal] = runner.flush().result().of("new_origin", final=True)
    assert signal.context.learning is False  # established at once, from history


def test_a_future_first_event_keeps_the_stored_profile_it_brought() -> None:
    """The enrichment step sends a principal's stored profile once, with its first event of
    a batch; when that event is refused for its future time, the profile is adopted anyway
    (else the principal would start new and learning)."""
    stored = established_profile()
    engine = Recorder([NewOrigin()], settings(max_future_skew=900.0))
    calls = iter([CtxParts(profile=stored)])
    runner = Runner(engine, lambda _e: next(calls, NO_PARTS))
    runner.feed([event(ts=WALL_CLOCK + 10 * DAY), event(ts=T0 + 10 * HOUR, ip=NEW_IP)])
    state = runner.states[f"{event().tenant_id}/{SP}"]
    assert engine.counters.future == 1 and engine.counters.profiles_adopted == 1
    assert state.profile is stored and state.max_ts == T0 + 10 * HOUR
    [signal] = runner.flush().result().of("new_origin", final=True)
    assert signal.context.learning is False


def test_a_future_first_event_without_a_profile_leaves_adoption_to_the_next() -> None:
    stored = established_profile()
    engine = Recorder([NewOrigin()], settings(max_future_skew=900.0))
    calls = iter([NO_PARTS, CtxParts(profile=stored)])
    runner = Runner(engine, lambda _e: next(calls, NO_PARTS))
    runner.feed([event(ts=WALL_CLOCK + 10 * DAY), event(ts=T0 + 10 * HOUR, ip=NEW_IP)])
    assert runner.states[f"{event().tenant_id}/{SP}"].profile is stored
    assert engine.counters.profiles_adopted == 1


def test_a_state_that_already_learnt_ignores_a_stored_profile() -> None:
    engine = Recorder([NewOrigin()], settings())
    calls = iter([NO_PARTS, CtxParts(profile=established_profile())])
    runner = Runner(engine, lambda _e: next(calls, NO_PARTS))
    runner.feed([event(ts=T0 + 10 * HOUR), event(ts=T0 + 10 * HOUR + 60, ip=NEW_IP)])
    state = runner.states[f"{event().tenant_id}/{SP}"]
    assert state.profile.events == 2
    assert runner.flush().result().signals == []  # not established: no new origin


# -- closing windows: context of final signals -------------------------------------------------

TEAMS = "1fec8e78-bce4-4aaf-ab1b-5451cc387264"


def enrichment(e: GraphEvent) -> CtxParts:
    apps = {TEAMS: AppInfo(TEAMS, "Microsoft Teams", "f8cdef31", first_party=True,
                           allowed=True)}
    return CtxParts(app=apps.get(e.app_id))


@pytest.mark.parametrize("closed_by", ["other_app", "flush", "own_app"])
def test_final_signals_keep_their_app_whichever_event_closes_the_window(closed_by: str) -> None:
    """A delegated user works in two apps; a window on one of them closes when an event of
    the other moves her clock (or at flush): the final signal keeps its app's directory
    entry (name, first party, allow-list), exactly as when its own app closes it."""
    user_downloads = downloads(30, T0, make=delegated, app_id=TEAMS)
    closer = {"other_app": [delegated(ts=T0 + 3 * HOUR, app_id=APP)],
              "own_app": [delegated(ts=T0 + 3 * HOUR, app_id=TEAMS)],
              "flush": []}[closed_by]
    engine = Recorder([StorageExfiltration()], settings())
    runner = Runner(engine, enrichment).feed(user_downloads + closer).flush()
    finals = [r for r in runner.out.signals if r["final"] and r["window_end"].timestamp()
              - r["window_start"].timestamp() == 600]
    [final] = finals
    assert final["app_display_name"] == "Microsoft Teams"
    assert final["context"]["first_party_app"] is True
    assert final["enrichment"]["app_first_party"] is True
    assert final["suppressed_by"] == [f"directory:allow:{TEAMS}"]
    assert all(a["status"] == "suppressed" for a in runner.out.alerts)


def test_flush_closes_every_window() -> None:
    engine = Recorder(catalog.build_detectors(), settings())
    runner = Runner(engine).feed([*downloads(30, T0), add_password(T0 + 50)])
    state = runner.states[f"{event().tenant_id}/{SP}"]
    assert state.apps and state.next_close < float("inf")
    runner.flush()
    assert all(not app.detectors for app in state.apps.values())
    assert state.next_close == float("inf")
    ids = runner.result().ids()
    assert ids == {s.signal_id for s in runner.result().finals()}


# -- new networks near the cap ------------------------------------------------------------------

def test_a_principal_near_its_network_cap_sees_the_same_new_origins_in_any_order() -> None:
    """255 networks learnt; two new ones within the lateness of each other. Whether a network
    is new must not depend on which of the two arrives first (the cap is judged sealed)."""
    history = routine(5)
    for n in range(MAX_ENTRIES - 2):
        history.append(event(ts=T0 - 4 * DAY + 60 * n, ip=f"10.{n // 200}.{n % 200}.1"))
    first, second = event(ts=T0 + 10 * HOUR, ip=NEW_IP), event(ts=T0 + 10 * HOUR + 1800,
                                                               ip="192.0.2.44")
    results = [run(NewOrigin(), in_time_order(history) + order).of(final=True)
               for order in ([first, second], [second, first])]
    assert len(results[0]) == 2
    assert {s.signal_id for s in results[0]} == {s.signal_id for s in results[1]}


# -- snapshots ---------------------------------------------------------------------------------

def test_a_state_pickled_mid_stream_continues_exactly() -> None:
    events = in_time_order(events_of(workload()))
    half = len(events) // 2
    whole = run(catalog.build_detectors(), events)
    engine = Recorder(catalog.build_detectors(), settings())
    runner = Runner(engine).feed(events[:half])
    runner.states = pickle.loads(pickle.dumps(runner.states))
    runner.feed(events[half:]).flush()
    assert runner.out.signals == whole.out.signals
    assert runner.out.alerts == whole.out.alerts


# -- configuration -----------------------------------------------------------------------------

def test_the_engine_from_configuration() -> None:
    config = config_from_dict({
        "time": {"allowed_lateness_seconds": 3600, "max_future_skew_seconds": 60},
        "learning": {"min_days": 2, "min_age_seconds": 3600},
        "detectors": {"enabled": ["new_origin", "attack_tool"],
                      "params": {"attack_tool": {"min_templates": 3}}},
        "alerts": {"risk_threshold": 70, "min_stages": 2, "exceptions": [
            {"reason": "scanner", "network": "192.0.2.0/24", "expires": T0 + DAY}]},
        "suppress": {"apps": [APP.upper()], "principals": [SP]},
    })
    engine = DetectionEngine.from_config(config)
    assert [d.meta.id for d in engine.detectors] == ["new_origin", "attack_tool"]
    assert engine.lateness == 3600 and engine.settings.max_future_skew == 60
    assert engine.settings.learning.min_days == 2
    assert engine.layer.policy.risk_threshold == 70 and engine.layer.policy.min_stages == 2
    ids = sorted(e.id for e in engine.layer.exceptions.items)
    assert ids == ["allow-app-" + APP.lower(), "allow-principal-" + SP, "config-1"]
    configured = next(e for e in engine.layer.exceptions.items if e.id == "config-1")
    assert configured.author == "configuration" and configured.source == "config"
    assert configured.network == "192.0.2.0/24" and configured.expires == T0 + DAY


# -- idle eviction (dataflows/detect.py evicts a principal idle for 6 h of event time) ---------

def evict_and_return(events_before: list[GraphEvent], events_after: list[GraphEvent],
                     detectors: list[Any]) -> Runner:
    """What the dataflow does to a principal idle between the two lists: flush its state,
    store its profile (JSON, as in Redis), and adopt it into a fresh state on its next event."""
    engine = Recorder(detectors, settings())
    runner = Runner(engine).feed(events_before)
    [key] = runner.states
    engine.flush(runner.states[key], runner.out)
    stored = Profile.from_dict(json.loads(json.dumps(runner.states.pop(key).profile.to_dict())))
    runner.parts = lambda _e: CtxParts(profile=stored)
    return runner.feed(events_after).flush()


def test_eviction_after_the_minimum_idle_time_changes_nothing() -> None:
    """A slow exfiltration in two bursts eleven hours apart (only its day window crosses) and
    two credentials of the day, then the principal is idle for the engine's minimum eviction
    time, evicted (flushed, its profile stored as JSON) and back: every signal and every alert
    is the same as without the eviction."""
    engine = Recorder([StorageExfiltration(), AppCredentialAdded()], settings())
    idle = engine.min_idle_eviction()
    assert idle == LATENESS + DAY + 86_400.0 + 1800.0  # lateness, day window, horizon, slack
    morning = [*downloads(100, T0 + 1 * HOUR, step=90.0), add_password(T0 + 1 * HOUR)]
    afternoon = [*[replace(e, target_item=f"j{i}")
                   for i, e in enumerate(downloads(100, T0 + 12 * HOUR, step=90.0))],
                 replace(add_password(T0 + 12 * HOUR), target_application="sp-2")]
    back = T0 + 12 * HOUR + 100 * 90.0 + idle
    later = [*downloads(3, back, step=60.0), add_password(back + HOUR)]
    first = [*morning, *afternoon]
    whole = Runner(Recorder([StorageExfiltration(), AppCredentialAdded()], settings())).feed(
        [*first, *later]).flush()
    evicted = evict_and_return(first, later, [StorageExfiltration(), AppCredentialAdded()])
    assert [s.window_end - s.window_start for s in whole.result().finals()
            if s.detector == "storage_exfiltration"] == [DAY]
    assert evicted.result().finals() == whole.result().finals()
    last = {a["alert_id"]: a for a in whole.out.alerts}
    assert {a["alert_id"]: a for a in evicted.out.alerts} == last
    assert any(a["signal_count"] == 2 for a in last.values())  # the alert of the day


def test_the_flow_refuses_an_eviction_time_that_could_change_results() -> None:
    from bytewax.testing import TestingSource

    from dataflows.detect import CallbackSink, DetectSinks, build_flow
    from graphsentry.config import config_from_dict
    from graphsentry.enrichment.memory import MemoryStore
    from graphsentry.errors import GraphsentryError

    config = config_from_dict({"state": {"idle_eviction_seconds": 6 * 3600}}, env={})
    with pytest.raises(GraphsentryError, match=r"idle_eviction_seconds is 21600 s; .* at least "
                                               r"181800 s"):
        build_flow(config, TestingSource([]), DetectSinks(CallbackSink(lambda _a: None)),
                   MemoryStore)


def test_enrichment_parts_pickle_as_values_and_round_trip() -> None:
    """CtxParts, AppInfo and GraphEvent cross Bytewax processes pickled (every item sent to
    another process, when the flow runs on several)."""
    app = AppInfo("app", "Backup", "tenant", first_party=False, allowed=True,
                  suppressed_detectors=frozenset({"mailbox_enumeration"}), object_id="obj")
    parts = CtxParts(64500, "EXAMPLE-AS", app, True, established_profile())
    item = ("tenant/principal", (event(), parts))
    data = pickle.dumps(item)
    assert pickle.loads(data) == item
    assert b"copyreg" not in data and b"display_name" not in data
    assert pickle.loads(pickle.dumps(AppInfo("only-id"))) == AppInfo("only-id")
