"""graph_enumeration: broad sweeps across directory families, deep walks of many objects (one
family is enough), role walks, each against the principal's own peak."""

from __future__ import annotations

from typing import Any

import pytest

from detectors.event import GraphEvent
from detectors.graph_enumeration import GraphEnumeration, Params, object_path
from tests.detectors.factory import (
    DAY,
    GRAPH,
    HOUR,
    LATENESS,
    T0,
    daily,
    delegated,
    event,
    in_time_order,
    routine,
    run,
)

TEN_MIN, ONE_HOUR = 600.0, 3600.0
FAMILIES = ("users", "groups", "applications", "servicePrincipals", "directoryRoles",
            "devices", "domains")


def sweep(families: int, requests: int, start: float = T0, step: float = 5.0,
          **fields: Any) -> list[GraphEvent]:
    """``requests`` list calls over the first ``families`` directory families."""
    return [event(ts=start + i * step, uri=f"{GRAPH}/{FAMILIES[i % families]}",
                  template=f"/{FAMILIES[i % families]}", family=FAMILIES[i % families],
                  category="directory", **fields) for i in range(requests)]


def walk(objects: int, start: float = T0, step: float = 1.0, family: str = "users",
         template: str = "/users/{id}/memberOf", **fields: Any) -> list[GraphEvent]:
    """Per-object reads of ``objects`` distinct objects of one family."""
    return [event(ts=start + i * step, family=family, category="directory",
                  template=template,
                  uri=f"{GRAPH}/{template.replace('{id}', f'o-{i:05d}')}".replace("//", "/")
                  .replace("https:/", "https://"), **fields)
            for i in range(objects)]


def role_walk(objects: int, start: float = T0, **fields: Any) -> list[GraphEvent]:
    return walk(objects, start, step=3.0, family="servicePrincipals",
                template="/servicePrincipals/{id}/appRoleAssignments", **fields)


@pytest.mark.parametrize(("families", "requests", "fires"), [
    (4, 30, False),   # families - 1
    (5, 9, False),    # requests - 1
    (5, 10, True),    # both floors
])
def test_fires_on_a_broad_sweep_at_the_floors(families: int, requests: int,
                                              fires: bool) -> None:
    result = run(GraphEnumeration(), sweep(families, requests))
    assert (TEN_MIN in result.lengths()) is fires
    if fires:
        evidence = result.final(TEN_MIN).evidence
        assert evidence["families"]["count"] == 5 and evidence["requests"] == 10


@pytest.mark.parametrize(("objects", "fires"), [(199, False), (200, True)])
def test_fires_on_a_walk_of_every_user_in_one_family(objects: int, fires: bool) -> None:
    result = run(GraphEnumeration(), walk(objects))
    assert (TEN_MIN in result.lengths()) is fires
    if fires:
        assert result.final(TEN_MIN).evidence["objects"]["count"] == 200
        assert result.final(TEN_MIN).evidence["families"]["count"] == 1


@pytest.mark.parametrize(("objects", "fires"), [(9, False), (10, True)])
def test_fires_on_ten_service_principals_app_role_assignments(objects: int,
                                                               fires: bool) -> None:
    """f-bader F5: ten-plus service principals' appRoleAssignments in a minute."""
    result = run(GraphEnumeration(), role_walk(objects))
    assert (TEN_MIN in result.lengths()) is fires
    if fires:
        assert result.final(TEN_MIN).evidence["role_objects"]["count"] == 10


def test_denied_reads_count_and_type_cast_templates_are_role_reads() -> None:
    denied = role_walk(10, status=403)
    assert TEN_MIN in run(GraphEnumeration(), denied).lengths()
    cast = walk(10, template="/servicePrincipals/{id}/microsoft.graph.x/appRoleAssignments",
                family="servicePrincipals", step=3.0)
    assert TEN_MIN in run(GraphEnumeration(), cast).lengths()


def test_silent_for_me_batch_envelopes_and_other_categories() -> None:
    me = [delegated(ts=T0 + i, family="me", template="/me", category="directory")
          for i in range(50)]
    batch = [event(ts=T0 + i, family="batch", template="/$batch", category="directory")
             for i in range(50)]
    mail = [event(ts=T0 + i, family="mail", template="/users/{id}/messages", category="mail",
                  uri=f"{GRAPH}/users/u{i}/messages") for i in range(300)]
    assert run(GraphEnumeration(), me + batch + mail).signals == []


def test_silent_when_split_by_the_window_edge() -> None:
    split = walk(150, start=T0 + 450) + walk(150, start=T0 + 600)
    assert TEN_MIN not in run(GraphEnumeration(), split).lengths()


def test_slow_enumeration_crosses_the_day_window() -> None:
    """A walk of 1,000 users spread over a day, 42 an hour."""
    result = run(GraphEnumeration(), walk(1000, step=86.0))
    assert result.lengths() == [DAY]


def test_silent_for_events_later_than_the_lateness() -> None:
    newest = event(ts=T0 + TEN_MIN + LATENESS + 1)
    assert run(GraphEnumeration(), [newest, *walk(300)]).signals == []


def test_missing_uri_parts_still_count_as_one_object() -> None:
    assert object_path("https://graph.microsoft.com/v1.0/users/A/memberOf?$top=5") \
        == "/users/a/memberof"
    assert object_path("https://graph.microsoft.com/beta/groups/G") == "/groups/g"
    assert object_path("/users/x") == "/users/x"
    assert object_path("https://graph.microsoft.com") == ""


# -- a governance app's usual reads --------------------------------------------------------------

def governance(days: int = 5) -> list[GraphEvent]:
    """Every day at 02:00: five families, 300 objects of which 30 role assignments (and its
    own profile, which is not directory enumeration, during 02:00-03:59)."""
    return routine(days, hours=(2, 3), family="me", template="/me") + daily(
        lambda s: sweep(5, 20, s) + walk(270, s + 100, step=0.5) + role_walk(30, s + 300),
        days, 2 * HOUR)


@pytest.mark.parametrize(("make", "fires"), [
    (lambda s: sweep(5, 20, s) + walk(300, s + 100, step=0.5), False),  # as usual
    (lambda s: sweep(6, 20, s), True),           # one more family than ever
    (lambda s: walk(899, s, step=0.5), False),   # below three times its peak of 300
    (lambda s: walk(900, s, step=0.5), True),    # three times its peak
    (lambda s: role_walk(90, s), True),          # three times its role peak of 30
])
def test_baseline_table(make: Any, fires: bool) -> None:
    events = in_time_order(governance() + make(T0 + 2 * HOUR))
    result = run(GraphEnumeration(), events)
    assert (TEN_MIN in result.lengths(since=T0)) is fires


def test_the_same_walk_at_an_unusual_hour_fires() -> None:
    events = in_time_order(governance() + walk(300, T0 + 14 * HOUR, step=0.5))
    signal = run(GraphEnumeration(), events).final(TEN_MIN, since=T0)
    assert signal.context.unusual_hour is True
    assert signal.evidence["baseline_peaks"] == {"families": 0.0, "objects": 0.0,
                                                 "role_objects": 0.0}


def test_params_validated() -> None:
    with pytest.raises(ValueError, match="min_objects: at most 10000"):
        Params(min_objects=(200, 400, 20_000))
    with pytest.raises(ValueError, match="min_families: expected 3 values"):
        Params(min_families=(5,))
