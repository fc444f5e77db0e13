"""The shared accumulator pieces: bounded, and independent of arrival order."""

from __future__ import annotations

import random

from detectors._accumulators import ATTRIBUTE_CAP, Activity, CappedSet
from detectors.base import EMPTY_CONTEXT, SAMPLE_SIZE
from tests.detectors.factory import T0, event


def _activity(ips: list[str]) -> Activity:
    acc = Activity()
    for n, ip in enumerate(ips):
        acc.count(event(ts=T0 + n, ip=ip, user_agent=f"agent-{ip}", status=403 if n % 2 else 200))
    return acc


def test_attribute_counts_stop_at_the_cap_whatever_the_order() -> None:
    ips = [f"192.0.2.{n}" for n in range(ATTRIBUTE_CAP + 8)]
    evidences = []
    for seed in range(4):
        order = list(ips)
        random.Random(seed).shuffle(order)
        evidence = _activity(order).evidence()
        evidence.pop("sample_request_ids")  # request ids differ per run
        evidences.append(evidence)
    assert all(e == evidences[0] for e in evidences)
    assert evidences[0]["source_ips"] == {"count": ATTRIBUTE_CAP, "capped": True,
                                          "sample": sorted(ips)[:SAMPLE_SIZE]}
    assert evidences[0]["user_agents"]["count"] == ATTRIBUTE_CAP
    assert evidences[0]["requests"] == len(ips) and evidences[0]["denied"] == len(ips) // 2


def test_below_the_cap_counts_are_exact_and_request_ids_are_the_smallest() -> None:
    acc = _activity(["192.0.2.1", "192.0.2.2", "192.0.2.1"])
    evidence = acc.evidence()
    assert evidence["source_ips"] == {"count": 2, "capped": False,
                                      "sample": ["192.0.2.1", "192.0.2.2"]}
    assert len(evidence["sample_request_ids"]) == 3
    more = Activity()
    ids = [f"r-{n:03d}" for n in range(50)]
    for n, request_id in enumerate(reversed(ids)):
        more.count(event(ts=T0 + n, request_id=request_id))
    assert more.evidence()["sample_request_ids"] == ids[:SAMPLE_SIZE]


def test_capped_set_stays_distinct_across_its_list_to_set_switch() -> None:
    values = CappedSet(cap=40)
    for n in [*range(30), *range(30), *range(30, 60)]:
        values.add(f"v{n:02d}")
    values.add(None)
    assert len(values) == 40 and values.saturated
    assert values.summary()["sample"] == [f"v{n:02d}" for n in range(SAMPLE_SIZE)]


def test_windows_stay_in_start_order_and_expiry_closes_exactly_the_ended_ones() -> None:
    from detectors.denied_requests import DeniedRequests

    detector = DeniedRequests()
    length = detector.window_seconds
    starts = [T0 + n * length for n in range(8)]
    order = list(starts)
    random.Random(3).shuffle(order)
    state = detector.new_state()
    for start in order:
        detector.observe(state, event(ts=start + 1), EMPTY_CONTEXT)
    assert list(state.windows) == starts
    watermark = starts[4] + length  # windows 0..3 ended before it, 4.. did not
    assert not detector.expire(state, watermark)
    assert list(state.windows) == starts[4:] and state.closed_windows == 4
