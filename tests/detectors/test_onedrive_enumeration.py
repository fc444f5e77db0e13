"""onedrive_enumeration: many other users' drives, or a fast folder walk."""

from __future__ import annotations

import pickle

import pytest

from detectors.event import GraphEvent
from detectors.onedrive_enumeration import OnedriveEnumeration, Params
from tests.detectors.factory import T0, USER, alert_ids_in_orders, delegated, event, run

GRAPH = "https://graph.microsoft.com/v1.0"


def user_drives(users: int, start: float = T0, status: int = 200) -> list[GraphEvent]:
    return [event(family="onedrive", category="storage", template="/users/{id}/drive/root/children",
                  uri=f"{GRAPH}/users/u{n}/drive/root/children", target_user=f"u{n}",
                  ts=start + n, status=status)
            for n in range(users)]


def own_walk(folders: int, start: float = T0) -> list[GraphEvent]:
    return [delegated(family="onedrive", category="storage",
                      template="/me/drive/items/{id}/children", target_user="me",
                      uri=f"{GRAPH}/me/drive/items/f{n}/children",
                      target_item=f"f{n}", ts=start + n % 600)
            for n in range(folders)]


@pytest.mark.parametrize(("users", "fires"), [(4, False), (5, True)])
def test_other_users_drives_threshold(users: int, fires: bool) -> None:
    findings = run(OnedriveEnumeration(), user_drives(users))
    assert bool(findings) is fires
    if fires:
        assert findings[0].evidence["other_users_drives"]["count"] == 5


def test_fires_on_drives_by_id_including_denied() -> None:
    by_id = [event(family="onedrive", category="storage", template="/drives/{id}/root",
                   target_drive=f"b!{n}", status=403) for n in range(5)]
    assert run(OnedriveEnumeration(), by_id)


@pytest.mark.parametrize("own_target", ["me", "ME", USER, USER.upper()])
def test_silent_on_own_drive_never_counts_as_another_users(own_target: str) -> None:
    browsing = [delegated(family="onedrive", category="storage", template="/me/drive/root",
                          target_user=own_target, ts=T0 + n) for n in range(50)]
    state = OnedriveEnumeration().new_state()
    assert run(OnedriveEnumeration(), browsing, state) == []
    assert len(state.windows[T0].drives) == 0


@pytest.mark.parametrize(("folders", "fires"), [(99, False), (100, True)])
def test_folder_walk_threshold(folders: int, fires: bool) -> None:
    findings = run(OnedriveEnumeration(), own_walk(folders))
    assert bool(findings) is fires
    if fires:
        assert findings[0].evidence["folders_listed"]["count"] == 100


def test_relisting_one_folder_counts_once() -> None:
    assert run(OnedriveEnumeration(), own_walk(1) * 150) == []


def test_root_children_of_different_drives_are_different_folders() -> None:
    detector = OnedriveEnumeration(Params(min_drives=1000, min_items=3))
    assert run(detector, user_drives(2)) == []
    assert run(detector, user_drives(3))


def test_writes_ignored() -> None:
    uploads = [event(family="onedrive", category="storage", template="/users/{id}/drive/root",
                     target_user=f"u{n}", method="PUT", is_write=True) for n in range(10)]
    assert run(OnedriveEnumeration(), uploads) == []


def test_window_edge_split_does_not_fire() -> None:
    events = user_drives(3, start=T0 + 590) + user_drives(4, start=T0 + 600)
    assert run(OnedriveEnumeration(), events) == []


def test_arrival_order_does_not_change_alerts() -> None:
    events = user_drives(6) + own_walk(120, start=T0 + 600) + user_drives(4, start=T0 + 1200)
    first, *others = alert_ids_in_orders(OnedriveEnumeration, events)
    assert len(first) == 2 and all(ids == first for ids in others)


def test_state_pickles_and_expires() -> None:
    detector = OnedriveEnumeration()
    state = detector.new_state()
    run(detector, user_drives(4), state)
    restored = pickle.loads(pickle.dumps(state))
    assert len(run(detector, user_drives(8), restored)) == 1
    assert detector.expire(restored, T0 + 601) is False  # the baseline peaks stay
    assert not restored.windows and restored.peaks
    assert restored.closed_windows == 1


def test_silent_for_nightly_backup_walk_once_it_has_a_baseline() -> None:
    detector = OnedriveEnumeration()
    state = detector.new_state()
    for night in range(7):
        start = T0 + night * 86_400
        run(detector, user_drives(20, start=start), state)
        detector.expire(state, start + 3_600)
    assert state.closed_windows == 7
    assert run(detector, user_drives(20, start=T0 + 7 * 86_400), state) == []
    assert run(detector, user_drives(60, start=T0 + 8 * 86_400), state)  # 3x the usual walk
