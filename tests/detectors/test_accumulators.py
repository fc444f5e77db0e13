"""The shared accumulator pieces: bounded, and independent of arrival order."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors._accumulators import (
    ATTRIBUTE_CAP,
    Activity,
    CappedSet,
    caller_id,
    is_batch_envelope,
    is_file_download,
    target_user_key,
    validate_params,
    with_smallest,
)
from detectors.base import SAMPLE_SIZE
from detectors.storage_exfiltration import Params
from tests.detectors.factory import T0, USER, delegated, event


def _activity(ips: list[str]) -> Activity:
    acc = Activity()
    for n, ip in enumerate(ips):
        acc.count(event(ts=T0 + n, ip=ip, user_agent=f"agent-{ip}", status=403 if n % 2 else 200,
                        template=f"/t/{ip}"))
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
                                          "sample": sorted(ips)[:ATTRIBUTE_CAP]}
    assert evidences[0]["user_agents"]["capped"] and evidences[0]["templates"]["capped"]
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
    assert (more.first_seen, more.last_seen) == (T0, T0 + 49)


def test_missing_fields_are_skipped_not_counted() -> None:
    acc = Activity()
    acc.count(event(ip=None, user_agent=None, request_id=""))
    evidence = acc.evidence()
    assert evidence["source_ips"]["count"] == 0 and evidence["user_agents"]["count"] == 0
    assert evidence["sample_request_ids"] == [] and evidence["requests"] == 1


def test_a_lean_activity_counts_only_and_absorbs_attributes_in_any_order() -> None:
    parts = [_activity([f"192.0.2.{n}" for n in range(k, k + 15)]) for k in (0, 10, 20)]
    merged = []
    for order in (parts, parts[::-1]):
        lean = Activity(lean=True)
        lean.count(event(ip="198.51.100.1"))
        assert lean.source_ips is None and lean.requests == 1
        for part in order:
            lean.absorb(part)
        merged.append(lean.attribute_evidence())
    assert merged[0] == merged[1]
    assert merged[0]["source_ips"]["count"] == ATTRIBUTE_CAP
    assert "requests" not in merged[0] and set(merged[0]) == {
        "source_ips", "user_agents", "sample_request_ids", "templates"}


@settings(max_examples=80, deadline=None)
@given(st.lists(st.text("abcdef", min_size=1, max_size=3), max_size=40),
       st.randoms(use_true_random=False))
def test_with_smallest_keeps_the_smallest_distinct_values(values: list[str],
                                                          rng: random.Random) -> None:
    order = list(values)
    rng.shuffle(order)
    results = []
    for sequence in (values, order):
        kept = None
        for v in sequence:
            kept, _ = with_smallest(kept, v, 4)
        results.append([] if kept is None else [kept] if isinstance(kept, str) else kept)
    assert results[0] == results[1] == sorted(set(values))[:4]


def capped_set(cap: int) -> CappedSet:
    """A CappedSet whose cap is ``cap`` (the detectors' sets all use ``DISTINCT_CAP``)."""
    return type("SmallCappedSet", (CappedSet,), {"cap": cap, "__slots__": ()})()


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 60), max_size=80), st.randoms(use_true_random=False))
def test_a_capped_set_summary_does_not_depend_on_arrival_order(values: list[int],
                                                              rng: random.Random) -> None:
    """Even once saturated (values dropped), the count, the flag and the sample are the same
    in every order: the sample is the smallest values of all seen."""
    order = list(values)
    rng.shuffle(order)
    summaries = []
    for sequence in (values, order):
        capped = capped_set(20)
        for v in sequence:
            capped.add(f"v{v:02d}")
        summaries.append(capped.summary())
    assert summaries[0] == summaries[1]
    distinct = sorted({f"v{v:02d}" for v in values})
    assert summaries[0]["count"] == min(len(distinct), 20)
    assert summaries[0]["capped"] is (len(distinct) > 20)
    assert summaries[0]["sample"] == distinct[:SAMPLE_SIZE]


def test_capped_set_stays_distinct_across_its_list_to_set_switch() -> None:
    values = capped_set(40)
    for n in [*range(30), *range(30), *range(30, 60)]:
        values.add(f"v{n:02d}")
    values.add(None)
    values.add("")
    assert len(values) == 40 and values.saturated
    assert values.summary()["sample"] == [f"v{n:02d}" for n in range(SAMPLE_SIZE)]


def test_helpers_on_events() -> None:
    assert is_batch_envelope(event(family="batch")) and is_batch_envelope(
        event(template="/$batch"))
    assert not is_batch_envelope(event())
    download = event(is_download=True, status=302)
    assert is_file_download(download, (302,)) and not is_file_download(download, (200,))
    user = delegated(target_user="ME")
    assert caller_id(user) == USER.lower() and target_user_key(user) == USER.lower()
    assert target_user_key(delegated(target_user="Other@Contoso.com")) == "other@contoso.com"
    assert target_user_key(delegated(target_user=None)) is None


@pytest.mark.parametrize(("values", "message"), [
    ({"min_downloads": (25, 60)}, "min_downloads: expected 3 values"),
    ({"min_downloads": (25, 60, 0)}, "min_downloads: every value must be a positive"),
    ({"min_downloads": (25, 60, 1.5)}, "min_downloads: expected a list of int"),
    ({"baseline_multiplier": float("nan")}, "baseline_multiplier: must be a positive"),
    ({"baseline_multiplier": True}, "baseline_multiplier: expected float"),
    ({"min_items": (20, 40, 20_000)}, "min_items: at most 10000"),
])
def test_validate_params_names_the_field(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Params(**values)  # type: ignore[arg-type]


def test_validate_params_converts_lists_and_ints() -> None:
    params = Params(min_downloads=[1, 2, 3], baseline_multiplier=2)  # type: ignore[arg-type]
    assert params.min_downloads == (1, 2, 3) and params.baseline_multiplier == 2
    validate_params(params)
