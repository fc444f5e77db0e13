"""graphsentry.alerting.risk: a signal's risk score from severity, fidelity and context."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.base import FIDELITIES, PRIVILEGE_TIERS, SEVERITIES, SignalContext, Who
from graphsentry.alerting.policy import RiskWeights
from graphsentry.alerting.risk import score
from tests.alerting.signals import WHO, signal

W = RiskWeights()
LEARNING = SignalContext(learning=True)
NEUTRAL = SignalContext(learning=False, new_client=True)  # no "familiar" bonus
"""Established, through a new client: +10 (new client) and no -20 (familiar)."""


@pytest.mark.parametrize(("severity", "fidelity", "expected"), [
    ("low", "low", 6), ("medium", "medium", 25), ("high", "high", 65),
    ("critical", "low", 45), ("high", "low", 30), ("critical", "medium", 75),
])
def test_severity_times_fidelity(severity: str, fidelity: str, expected: int) -> None:
    base = score(signal(severity=severity, fidelity=fidelity, context=NEUTRAL), W)
    assert base - round(W.new_client) == expected


@pytest.mark.parametrize(("context", "delta"), [
    (SignalContext(learning=False), -20),                         # familiar: known origin
    (SignalContext(learning=False, new_network="198.51.100.0/24"), 20),
    (SignalContext(learning=False, new_client=True), 10),
    (SignalContext(learning=False, new_network="x", new_client=True), 30),
    (SignalContext(learning=False, new_client=True, unusual_hour=True), 20),
    (SignalContext(learning=False, new_client=True, privilege="high"), 15),
    (SignalContext(learning=False, new_client=True, privilege="critical"), 25),
    (SignalContext(learning=False, new_client=True, privilege="medium"), 10),
])
def test_context_points(context: SignalContext, delta: int) -> None:
    base = 25  # medium / medium
    assert score(signal("graph_enumeration", context=context), W) == base + delta


def test_learning_halves_and_the_score_stays_within_1_and_100() -> None:
    assert score(signal("graph_enumeration", context=LEARNING), W) == round(25 * 0.5)
    assert score(signal(severity="low", fidelity="low", context=LEARNING), W) == 3
    loud = SignalContext(learning=False, new_network="x", new_client=True, unusual_hour=True,
                         privilege="critical")
    assert score(signal(severity="critical", fidelity="high", context=loud), W) == 100
    quiet = replace(W, familiar=-100.0)
    assert score(signal(severity="low", fidelity="low",
                        context=SignalContext(learning=False)), quiet) == 1


def test_new_origin_gets_no_extra_points_for_its_own_new_network() -> None:
    ctx = SignalContext(learning=False, new_network="198.51.100.0/24")
    assert score(signal("new_origin", severity="medium", fidelity="medium", context=ctx),
                 W) == 25
    assert score(signal("graph_enumeration", context=ctx), W) == 45


def test_first_party_apps_acting_app_only_score_lower_but_not_their_users() -> None:
    ctx = SignalContext(learning=False, new_client=True, first_party_app=True)
    assert score(signal("graph_enumeration", context=ctx), W) == 25
    user = Who(WHO.tenant_id, "u", "delegated", WHO.app_id, "u", None)
    assert score(signal("graph_enumeration", context=ctx, who=user), W) == 35


def test_weights_are_configurable() -> None:
    weights = RiskWeights(severity_points={"low": 1, "medium": 2, "high": 3, "critical": 4},
                          fidelity_factor={"low": 1, "medium": 1, "high": 1}, new_client=0,
                          familiar=0)
    assert score(signal("graph_enumeration", context=NEUTRAL), weights) == 2


contexts = st.builds(
    SignalContext, learning=st.booleans(),
    new_network=st.sampled_from((None, "198.51.100.0/24")), new_client=st.booleans(),
    unusual_hour=st.sampled_from((None, False, True)),
    privilege=st.sampled_from(PRIVILEGE_TIERS), first_party_app=st.booleans())


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(SEVERITIES), st.sampled_from(FIDELITIES), contexts, st.data())
def test_risk_never_falls_as_a_window_grows(severity: str, fidelity: str, ctx: SignalContext,
                                            data: st.DataObject) -> None:
    """What a final signal can add to its provisional one — a higher severity or fidelity, a
    new network or client, a higher privilege — never lowers the risk (the alert layer's
    risk alerts rely on it)."""
    grown = replace(
        ctx,
        new_network=ctx.new_network or data.draw(st.sampled_from((None, "203.0.113.0/24"))),
        new_client=ctx.new_client or data.draw(st.booleans()),
        privilege=data.draw(st.sampled_from(
            PRIVILEGE_TIERS[PRIVILEGE_TIERS.index(ctx.privilege):])))
    more_severe = data.draw(st.sampled_from(SEVERITIES[SEVERITIES.index(severity):]))
    more_faithful = data.draw(st.sampled_from(FIDELITIES[FIDELITIES.index(fidelity):]))
    detector = data.draw(st.sampled_from(("graph_enumeration", "new_origin")))
    before = score(signal(detector, severity=severity, fidelity=fidelity, context=ctx), W)
    after = score(signal(detector, severity=more_severe, fidelity=more_faithful,
                         context=grown), W)
    assert after >= before
