"""graph_enumeration: broad family sweeps and deep per-object walks of the directory."""

from __future__ import annotations

import pickle
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.event import GraphEvent
from detectors.graph_enumeration import GraphEnumeration, Params, object_path
from tests.detectors.factory import T0, alert_ids_in_orders, delegated, event, run

FAMILIES = ("users", "groups", "applications", "servicePrincipals", "directoryRoles", "devices")


def reads(families: tuple[str, ...], per_family: int, start: float = T0,
          status: int = 200) -> list[GraphEvent]:
    return [event(family=f, template=f"/{f}", uri=f"https://graph.microsoft.com/v1.0/{f}",
                  ts=start + i, status=status)
            for i in range(per_family) for f in families]


def member_walk(groups: int, start: float = T0) -> list[GraphEvent]:
    return [event(family="groups", template="/groups/{id}/members", ts=start + i % 500,
                  uri=f"https://graph.microsoft.com/v1.0/groups/g{i:04d}/members?$top=999")
            for i in range(groups)]


def test_broad_sweep_fires_once_with_evidence() -> None:
    detector = GraphEnumeration()
    findings = run(detector, reads(FAMILIES[:5], 2) + reads(FAMILIES[:5], 3, start=T0 + 100))
    assert len(findings) == 1
    finding = findings[0]
    assert finding.detector == "graph_enumeration"
    assert (finding.window_start, finding.window_end) == (T0, T0 + 600)
    assert finding.evidence["families"]["count"] == 5
    assert finding.evidence["requests"] == 10
    assert finding.first_seen == T0 and finding.last_seen == T0 + 1


@pytest.mark.parametrize(("families", "per_family", "fires"), [
    (4, 5, False),   # families - 1
    (5, 2, True),    # exactly the thresholds
    (6, 1, False),   # requests - 4
])
def test_broad_sweep_thresholds(families: int, per_family: int, fires: bool) -> None:
    findings = run(GraphEnumeration(), reads(FAMILIES[:families], per_family))
    assert bool(findings) is fires


def test_nine_requests_over_five_families_stay_quiet() -> None:
    events = reads(FAMILIES[:5], 2)[:9]
    assert run(GraphEnumeration(), events) == []


def test_denied_probing_counts() -> None:
    findings = run(GraphEnumeration(), reads(FAMILIES[:5], 2, status=403))
    assert findings and findings[0].evidence["denied"] == 10


def test_deep_walk_needs_objects_and_two_families() -> None:
    one_user = reads(("users",), 1)
    assert run(GraphEnumeration(), member_walk(199) + one_user) == []
    assert run(GraphEnumeration(), member_walk(200)) == []  # one family only
    findings = run(GraphEnumeration(), member_walk(200) + one_user)
    assert findings and findings[0].evidence["objects"]["count"] == 200


def test_repeated_object_counts_once() -> None:
    walk = member_walk(1) * 300 + reads(("users",), 1)
    detector, state = GraphEnumeration(), GraphEnumeration().new_state()
    assert run(detector, walk, state) == []
    assert len(state.windows[T0].objects) == 1


def test_object_path_drops_host_version_and_query() -> None:
    assert object_path("https://graph.microsoft.com/beta/Groups/ABC/members?$top=5") \
        == "/groups/abc/members"


def test_batch_row_is_skipped_sub_requests_count() -> None:
    batch = event(family="batch", template="/$batch", category="batch", method="POST",
                  uri="https://graph.microsoft.com/v1.0/$batch")
    quiet = reads(FAMILIES[:4], 3) + [batch] * 5
    assert run(GraphEnumeration(), quiet) == []
    assert run(GraphEnumeration(), [*quiet, *reads(FAMILIES[4:5], 1)])


def test_non_directory_requests_do_not_count() -> None:
    mail = [delegated(family=f"mail{i}", category="mail", template="/me/messages")
            for i in range(20)]
    assert run(GraphEnumeration(), mail) == []


def test_window_edge_split_does_not_fire() -> None:
    first = reads(FAMILIES[:3], 4, start=T0 + 590)
    second = reads(FAMILIES[3:5], 4, start=T0 + 600)
    assert [e.ts for e in first if e.ts >= T0 + 600] == []
    assert run(GraphEnumeration(), first + second) == []


def test_arrival_order_does_not_change_alerts() -> None:
    events = (reads(FAMILIES, 2) + reads(FAMILIES[:3], 5, start=T0 + 700)
              + member_walk(250, start=T0 + 1300) + reads(("users",), 1, start=T0 + 1300))
    first, *others = alert_ids_in_orders(GraphEnumeration, events)
    assert len(first) == 2 and all(ids == first for ids in others)


def test_state_pickles_and_expires() -> None:
    detector = GraphEnumeration()
    state = detector.new_state()
    run(detector, reads(FAMILIES[:4], 3), state)
    restored = pickle.loads(pickle.dumps(state))
    assert run(detector, reads(FAMILIES[4:5], 1), restored)
    assert detector.expire(restored, T0 + 1201) is True
    assert restored.windows == {} and restored.closed_windows == 1


def test_params_are_configurable_and_validated() -> None:
    assert run(GraphEnumeration(Params(min_families=2, min_requests=2)), reads(FAMILIES[:2], 1))
    with pytest.raises(ValueError, match="min_families"):
        Params(min_families="5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="min_objects"):
        Params(min_objects=1_000_000)
    with pytest.raises(ValueError, match="window_seconds"):
        Params(window_seconds=0)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="hts:/?#[]\t\n Aé.v1%=&", max_size=30).map(
    lambda tail: f"https://graph.microsoft.com{tail}") | st.text(max_size=40))
def test_object_path_reads_paths_as_urlsplit_does(uri: str) -> None:
    try:
        expected = urlsplit(uri).path.lower()
    except ValueError:  # e.g. an unbalanced IPv6 bracket: the general parser refuses it
        return
    for version in ("/v1.0/", "/beta/"):
        if expected.startswith(version):
            expected = expected[len(version) - 1:]
            break
    assert object_path(uri) == expected
