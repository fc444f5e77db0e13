"""mailbox_enumeration: many distinct mailboxes touched by one principal."""

from __future__ import annotations

import pickle

import pytest

from detectors.event import GraphEvent
from detectors.mailbox_enumeration import MailboxEnumeration, Params
from tests.detectors.factory import T0, USER, alert_ids_in_orders, delegated, event, run

GRAPH = "https://graph.microsoft.com/v1.0"


def inbox_reads(mailboxes: int, start: float = T0, status: int = 200) -> list[GraphEvent]:
    return [event(family="mail", category="mail",
                  template="/users/{upn}/mailFolders/Inbox/messages",
                  uri=f"{GRAPH}/users/user{n}@contoso.com/mailFolders/Inbox/messages?$top=999",
                  target_user=f"user{n}@contoso.com", ts=start + n, status=status)
            for n in range(mailboxes)]


@pytest.mark.parametrize(("mailboxes", "fires"), [(4, False), (5, True)])
def test_distinct_mailboxes_threshold(mailboxes: int, fires: bool) -> None:
    findings = run(MailboxEnumeration(), inbox_reads(mailboxes))
    assert bool(findings) is fires
    if fires:
        evidence = findings[0].evidence
        assert evidence["mailboxes"]["count"] == 5
        assert evidence["sample_request_ids"] == sorted(evidence["sample_request_ids"])


def test_denied_attempts_count() -> None:
    findings = run(MailboxEnumeration(), inbox_reads(5, status=403))
    assert findings and findings[0].evidence["denied"] == 5


def test_own_mailbox_by_me_and_by_id_is_one_mailbox() -> None:
    own = [delegated(family="mail", category="mail", template="/me/messages", target_user="me"),
           delegated(family="mail", category="mail", template="/users/{id}/messages",
                     target_user=USER.upper())]
    state = MailboxEnumeration().new_state()
    others = inbox_reads(3)
    assert run(MailboxEnumeration(), own * 20 + others, state) == []
    assert len(state.windows[T0].mailboxes) == 4


def test_same_mailbox_repeated_counts_once_and_fires_once() -> None:
    detector, state = MailboxEnumeration(), MailboxEnumeration().new_state()
    assert run(detector, inbox_reads(4) * 25, state) == []
    assert len(run(detector, inbox_reads(12), state)) == 1


def test_other_families_ignored() -> None:
    users = [event(target_user=f"u{n}") for n in range(10)]  # directory reads of users
    assert run(MailboxEnumeration(), users) == []


def test_window_edge_split_does_not_fire() -> None:
    events = inbox_reads(3, start=T0 + 590) + inbox_reads(4, start=T0 + 600)
    assert run(MailboxEnumeration(), events) == []


def test_arrival_order_does_not_change_alerts() -> None:
    events = inbox_reads(7) + inbox_reads(4, start=T0 + 600) + inbox_reads(5, start=T0 + 1200)
    first, *others = alert_ids_in_orders(MailboxEnumeration, events)
    assert len(first) == 2 and all(ids == first for ids in others)


def test_state_pickles_expires_and_is_configurable() -> None:
    detector = MailboxEnumeration(Params(min_mailboxes=2, window_seconds=60))
    state = detector.new_state()
    run(detector, inbox_reads(1), state)
    restored = pickle.loads(pickle.dumps(state))
    findings = run(detector, inbox_reads(2), restored)
    assert findings and findings[0].window_end == T0 + 60
    assert detector.expire(restored, T0 + 61) is True
    with pytest.raises(ValueError, match="min_mailboxes"):
        Params(min_mailboxes=-1)
