"""chat_collection: messages of many chats or channels read, or tenant-wide exports, against
the principal's own peak."""

from __future__ import annotations

from typing import Any

import pytest

from detectors.chat_collection import ChatCollection, Params, conversation_of, is_message_read
from detectors.event import GraphEvent
from tests.detectors.factory import (
    DAY,
    GRAPH,
    HOUR,
    LATENESS,
    NEW_IP,
    T0,
    daily,
    delegated,
    event,
    in_time_order,
    routine,
    run,
)

TEN_MIN, ONE_HOUR = 600.0, 3600.0


def chats(n: int, start: float = T0, step: float = 5.0, make: Any = delegated,
          **fields: Any) -> list[GraphEvent]:
    return [make(**{"ts": start + i * step, "family": "teams", "category": "chat",
                    "template": "/chats/{id}/messages",
                    "uri": f"{GRAPH}/chats/19:c{i}@thread.v2/messages", **fields})
            for i in range(n)]


@pytest.mark.parametrize(("n", "fires"), [(9, False), (10, True)])
def test_fires_at_the_chat_floor(n: int, fires: bool) -> None:
    result = run(ChatCollection(), chats(n))
    assert (TEN_MIN in result.lengths()) is fires
    if fires:
        evidence = result.final(TEN_MIN).evidence
        assert evidence["chats"]["count"] == 10 and evidence["exports"] == 0


@pytest.mark.parametrize(("template", "uri", "conversation"), [
    ("/chats/{id}/messages", "/chats/19:A@thread.v2/messages", "chat:19:a@thread.v2"),
    ("/me/chats/{id}/messages/{id}", "/me/chats/C1/messages/m1", "chat:c1"),
    ("/users/{id}/chats/{id}/messages", "/users/u1/chats/C2/messages", "chat:c2"),
    ("/teams/{id}/channels/{id}/messages", "/teams/T/channels/Ch/messages", "channel:t/ch"),
    ("/teams/{id}/channels/{id}/messages/{id}/replies",
     "/teams/T/channels/Ch/messages/m/replies", "channel:t/ch"),
    ("/users/{id}/chats/getAllMessages", "/users/u1/chats/getAllMessages", "export"),
    ("/teams/{id}/channels/getAllMessages", "/teams/t/channels/getAllMessages", "export"),
    ("/chats/{id}/members", "/chats/c/members", None),
    ("/chats/{id}/microsoft.graph.x/messages", "/chats/c9/microsoft.graph.x/messages",
     "chat:c9"),
])
def test_conversations_read(template: str, uri: str, conversation: str | None) -> None:
    assert conversation_of(template, GRAPH + uri) == conversation
    assert is_message_read(event(template=template, method="GET")) is (conversation is not None)


def test_fires_on_channels_and_on_a_tenant_wide_export() -> None:
    channels = [event(ts=T0 + i, family="teams", template="/teams/{id}/channels/{id}/messages",
                      uri=f"{GRAPH}/teams/t{i % 2}/channels/ch{i}/messages") for i in range(10)]
    assert run(ChatCollection(), channels).finals()
    export = event(template="/users/{id}/chats/getAllMessages", family="teams",
                   uri=f"{GRAPH}/users/u1/chats/getAllMessages")
    assert run(ChatCollection(), [export]).final(TEN_MIN).evidence["exports"] == 1


def test_silent_for_posting_and_one_chat() -> None:
    posts = chats(20, method="POST", is_write=True)
    one = [delegated(ts=T0 + i, family="teams", template="/chats/{id}/messages",
                     uri=f"{GRAPH}/chats/same/messages") for i in range(50)]
    assert run(ChatCollection(), posts + one).signals == []


def test_silent_when_split_by_the_window_edge_or_late() -> None:
    split = chats(6, T0 + 570) + chats(6, T0 + 600)
    assert TEN_MIN not in run(ChatCollection(), split).lengths()
    newest = delegated(ts=T0 + TEN_MIN + LATENESS + 1)
    assert run(ChatCollection(), [newest, *chats(20)]).signals == []


def test_a_missing_uri_path_counts_no_conversation() -> None:
    broken = chats(20, uri="https://graph.microsoft.com")
    assert run(ChatCollection(), broken).signals == []


def test_slow_collection_crosses_the_hour_and_day_windows() -> None:
    assert run(ChatCollection(), chats(20, step=175.0)).lengths() == [ONE_HOUR]
    assert run(ChatCollection(), chats(50, step=1700.0)).lengths() == [DAY]


# -- the user's own habits ---------------------------------------------------------------------

def habits(days: int = 5) -> list[GraphEvent]:
    """A person who opens a few chats (three) around 09:00 every day."""
    return routine(days, hours=(8, 9, 10), make=delegated) + daily(
        lambda s: chats(3, s), days, 9 * HOUR)


def test_fires_on_a_replayed_teams_token_reading_a_hundred_chats() -> None:
    today = chats(120, T0 + 9 * HOUR + 60, step=2.0, ip=NEW_IP)
    result = run(ChatCollection(), in_time_order(habits() + today))
    signal = result.final(TEN_MIN, since=T0)
    assert signal.evidence["chats"]["count"] == 120
    assert not signal.context.learning and signal.context.new_network == "198.51.100.0/24"


def archiver(days: int = 5) -> list[GraphEvent]:
    """A Teams compliance archiver reading 200 chats every night at 03:00."""
    return routine(days, hours=(3, 4)) + daily(lambda s: chats(200, s, step=1.0, make=event),
                                               days, 3 * HOUR)


@pytest.mark.parametrize(("n", "at", "fires"), [
    (200, 3 * HOUR, False), (599, 3 * HOUR, False), (600, 3 * HOUR, True),
    (200, 15 * HOUR, True)])
def test_baseline_table(n: int, at: float, fires: bool) -> None:
    events = in_time_order(archiver() + chats(n, T0 + at, step=0.5, make=event))
    assert (TEN_MIN in run(ChatCollection(), events).lengths(since=T0)) is fires


def test_params_validated() -> None:
    with pytest.raises(ValueError, match="min_chats: expected 3 values"):
        Params(min_chats=(10, 20))
