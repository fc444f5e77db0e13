"""The detection flow's enrichment step (``dataflows.detect.Enricher``) on the real Redis: which
events a principal's stored profile travels with."""

from __future__ import annotations

import time

from dataflows.detect import Enricher, FlowCounters, StoreHolder
from graphsentry.enrichment.redis_store import RedisStore
from tests.detectors.factory import event
from tests.engine.test_engine import established_profile

SKEW = 900.0


def _enricher(redis_url: str, namespace: str) -> tuple[Enricher, str]:
    store = RedisStore(redis_url, key_prefix=namespace)
    profile = established_profile()
    key = event().principal_key
    assert store.save_profiles({key: profile}) == 1
    return Enricher(StoreHolder(lambda: store), FlowCounters(), 3 * 3600.0,
                    future_skew=SKEW), key


def test_a_refused_future_time_does_not_hold_back_the_profile(redis_url: str,
                                                             redis_namespace: str) -> None:
    """An event time far ahead of the wall clock (the engine refuses it) does not count as
    seen: the principal's next real event still brings its stored profile."""
    enricher, key = _enricher(redis_url, redis_namespace)
    future = event(ts=time.time() + 10 * 86_400.0)
    [(_key, alone)] = enricher([future])
    assert alone.parts.profile is None and key not in enricher.seen
    normal = event(ts=established_profile().last_seen + 3600.0)
    [(_key, first)] = enricher([normal])
    assert first.parts.profile is not None
    assert enricher.seen[key] == normal.ts
    [(_key, again)] = enricher([event(ts=normal.ts + 60.0)])
    assert again.parts.profile is None  # once per principal, not per event


def test_a_batch_sends_the_profile_with_its_first_event_of_the_principal(
        redis_url: str, redis_namespace: str) -> None:
    """In one batch the profile goes with the principal's first event, a refused future one
    included (the engine adopts it from there: tests/engine/test_engine.py)."""
    enricher, _key = _enricher(redis_url, redis_namespace)
    normal = event(ts=established_profile().last_seen + 3600.0)
    out = enricher([event(ts=time.time() + 10 * 86_400.0), normal])
    assert [value.parts.profile is not None for _k, value in out] == [True, False]
