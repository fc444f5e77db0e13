"""onedrive_enumeration: other users' drives reached, or many folders listed, against the
principal's own peak; the caller's own drive never counts as another user's."""

from __future__ import annotations

from typing import Any

import pytest

from detectors.event import GraphEvent
from detectors.onedrive_enumeration import DRIVES, FOLDERS, OnedriveEnumeration, Params
from tests.detectors.factory import (
    GRAPH,
    HOUR,
    LATENESS,
    T0,
    USER,
    daily,
    delegated,
    event,
    in_time_order,
    routine,
    run,
)

TEN_MIN, ONE_HOUR = 600.0, 3600.0


def drives(n: int, start: float = T0, step: float = 10.0, **fields: Any) -> list[GraphEvent]:
    """Root listings of ``n`` other users' drives (by user)."""
    return [event(ts=start + i * step, family="onedrive", category="storage",
                  template="/users/{id}/drive/root/children",
                  uri=f"{GRAPH}/users/u{i}/drive/root/children", target_user=f"U{i}",
                  **fields) for i in range(n)]


def folders(n: int, start: float = T0, step: float = 2.0, make: Any = delegated,
            **fields: Any) -> list[GraphEvent]:
    """``n`` folders of the caller's own drive listed (a TeamFiltration-style walk)."""
    return [make(ts=start + i * step, family="onedrive", category="storage",
                 template="/me/drive/items/{id}/children", target_user="me",
                 uri=f"{GRAPH}/me/drive/items/f{i}/children", target_item=f"F{i}", **fields)
            for i in range(n)]


@pytest.mark.parametrize(("n", "fires"), [(4, False), (5, True)])
def test_fires_at_the_drive_floor(n: int, fires: bool) -> None:
    result = run(OnedriveEnumeration(), drives(n))
    assert (TEN_MIN in result.lengths()) is fires
    if fires:
        evidence = result.final(TEN_MIN).evidence
        assert evidence[DRIVES]["count"] == 5 and evidence[FOLDERS]["count"] == 5


def test_drives_by_id_count_too() -> None:
    by_id = [event(ts=T0 + i, family="onedrive", template="/drives/{id}/root/children",
                   target_drive=f"b!{i}", uri=f"{GRAPH}/drives/b!{i}/root/children")
             for i in range(5)]
    assert run(OnedriveEnumeration(), by_id).finals()


@pytest.mark.parametrize(("n", "fires"), [(99, False), (100, True)])
def test_fires_on_a_fast_folder_walk_of_the_own_drive(n: int, fires: bool) -> None:
    result = run(OnedriveEnumeration(), folders(n, step=5.0))
    assert (TEN_MIN in result.lengths()) is fires
    if fires:
        assert result.final(TEN_MIN).evidence[DRIVES]["count"] == 0


def test_silent_for_the_callers_own_drive_by_me_or_by_id() -> None:
    own = [delegated(ts=T0 + i, family="onedrive", template="/users/{id}/drive/root",
                     target_user=USER.upper() if i % 2 else "me") for i in range(40)]
    assert run(OnedriveEnumeration(), own).signals == []


def test_silent_for_writes_and_other_families() -> None:
    writes = drives(20, method="PUT", is_write=True)
    sites = [event(ts=T0 + i, family="sharepoint", target_user=f"u{i}") for i in range(20)]
    assert run(OnedriveEnumeration(), writes + sites).signals == []


def test_silent_when_split_by_the_window_edge_or_late() -> None:
    split = drives(4, T0 + 560) + drives(4, T0 + 600)
    assert TEN_MIN not in run(OnedriveEnumeration(), split).lengths()
    newest = event(ts=T0 + TEN_MIN + LATENESS + 1)
    assert run(OnedriveEnumeration(), [newest, *drives(10)]).signals == []


def test_a_listing_without_item_is_the_root_folder() -> None:
    roots = [event(ts=T0 + i, family="onedrive", template="/drives/{id}/root/children",
                   target_drive="b!same", target_item=None) for i in range(5)]
    evidence = run(OnedriveEnumeration(), roots).signals
    assert evidence == []  # one drive, one folder
    acc = OnedriveEnumeration().new_accumulator()
    OnedriveEnumeration().add(acc, roots[0], None)  # type: ignore[arg-type]
    assert acc.folders.summary()["sample"] == ["drive:b!same/root"]


def test_slow_drive_walk_crosses_the_hour_window() -> None:
    assert run(OnedriveEnumeration(), drives(10, step=350.0)).lengths() == [ONE_HOUR]


def backup(days: int = 5) -> list[GraphEvent]:
    """A backup app listing 40 users' drives every night at 01:00."""
    return routine(days, hours=(1, 2)) + daily(lambda s: drives(40, s, step=5.0), days,
                                               1 * HOUR)


@pytest.mark.parametrize(("n", "at", "fires"), [
    (40, 1 * HOUR, False), (119, 1 * HOUR, False), (120, 1 * HOUR, True),
    (40, 13 * HOUR, True)])
def test_baseline_table(n: int, at: float, fires: bool) -> None:
    events = in_time_order(backup() + drives(n, T0 + at, step=2.0))
    assert (TEN_MIN in run(OnedriveEnumeration(), events).lengths(since=T0)) is fires


def test_params_validated() -> None:
    with pytest.raises(ValueError, match="min_folders: at most 10000"):
        Params(min_folders=(100, 250, 60_000))
