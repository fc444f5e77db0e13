"""mailbox_enumeration: many other users' mailboxes touched, against the principal's own peak."""

from __future__ import annotations

from typing import Any

import pytest

from detectors.event import GraphEvent
from detectors.mailbox_enumeration import MailboxEnumeration, Params
from tests.detectors.factory import (
    DAY,
    GRAPH,
    HOUR,
    LATENESS,
    NEW_IP,
    T0,
    USER,
    daily,
    delegated,
    event,
    in_time_order,
    routine,
    run,
)

TEN_MIN = 600.0


def mailboxes(n: int, start: float = T0, step: float = 10.0, make: Any = event,
              **fields: Any) -> list[GraphEvent]:
    return [make(**{"ts": start + i * step, "family": "mail", "category": "mail",
                    "template": "/users/{id}/mailFolders/Inbox/messages",
                    "uri": f"{GRAPH}/users/u{i}@contoso.com/mailFolders/Inbox/messages",
                    "target_user": f"U{i}@contoso.com", **fields}) for i in range(n)]


@pytest.mark.parametrize(("n", "fires"), [(4, False), (5, True)])
def test_fires_at_the_mailbox_floor(n: int, fires: bool) -> None:
    result = run(MailboxEnumeration(), mailboxes(n))
    assert (TEN_MIN in result.lengths()) is fires
    if fires:
        assert result.final(TEN_MIN).evidence["mailboxes"]["sample"] == [
            f"u{i}@contoso.com" for i in range(5)]


def test_denied_attempts_count() -> None:
    assert run(MailboxEnumeration(), mailboxes(5, status=403)).finals()


def test_silent_for_the_callers_own_mailbox() -> None:
    own = [delegated(ts=T0 + i, family="mail", template="/me/messages", target_user="me")
           for i in range(20)]
    own += [delegated(ts=T0 + 30 + i, family="mail", template="/users/{id}/messages",
                      target_user=USER.upper()) for i in range(20)]
    assert run(MailboxEnumeration(), own).signals == []


def test_silent_without_a_target_and_outside_mail() -> None:
    blank = mailboxes(20, target_user=None)
    drives = [event(ts=T0 + i, family="onedrive", target_user=f"u{i}") for i in range(20)]
    assert run(MailboxEnumeration(), blank + drives).signals == []


def test_silent_when_split_by_the_window_edge_or_late() -> None:
    split = mailboxes(4, T0 + 560) + mailboxes(4, T0 + 600)
    assert TEN_MIN not in run(MailboxEnumeration(), split).lengths()
    newest = event(ts=T0 + TEN_MIN + LATENESS + 1)
    assert run(MailboxEnumeration(), [newest, *mailboxes(10)]).signals == []


def test_slow_sweep_crosses_the_day_window() -> None:
    assert run(MailboxEnumeration(), mailboxes(25, step=3400.0)).lengths() == [DAY]


def test_a_delegated_user_reading_other_mailboxes_fires_too() -> None:
    result = run(MailboxEnumeration(), mailboxes(5, make=delegated, ip=NEW_IP))
    assert result.final(TEN_MIN).who.identity_type == "delegated"


def archiver(days: int = 5) -> list[GraphEvent]:
    """A compliance archiver reading 120 mailboxes every night at 02:00."""
    return routine(days, hours=(2, 3)) + daily(lambda s: mailboxes(120, s, step=2.0), days,
                                               2 * HOUR)


@pytest.mark.parametrize(("n", "at", "fires"), [
    (120, 2 * HOUR, False), (359, 2 * HOUR, False), (360, 2 * HOUR, True),
    (120, 12 * HOUR, True)])
def test_baseline_table(n: int, at: float, fires: bool) -> None:
    events = in_time_order(archiver() + mailboxes(n, T0 + at, step=1.0))
    assert (TEN_MIN in run(MailboxEnumeration(), events).lengths(since=T0)) is fires


def test_params_validated() -> None:
    with pytest.raises(ValueError, match="min_mailboxes: expected 3 values"):
        Params(min_mailboxes=(5,))
