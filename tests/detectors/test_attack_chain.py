"""attack_chain: several stages of one principal within the horizon make one incident."""

from __future__ import annotations

import itertools

import pytest
from detectors.attack_chain import AttackChain, ChainState, Params

from detectors.base import Finding
from tests.detectors.factory import APP, SP, T0, TENANT

HOUR = 3600.0
STAGE_OF = {"graph_enumeration": "discovery", "onedrive_enumeration": "collection",
            "storage_exfiltration": "exfiltration", "app_credential_added": "persistence",
            "attack_tool": "discovery"}


def stage_finding(detector: str, first_seen: float, principal: str = SP,
                  dedup: str = "") -> Finding:
    return Finding(detector=detector, tenant_id=TENANT, app_id=APP, principal_id=principal,
                   identity_type="app_only", window_start=first_seen, window_end=first_seen + 600,
                   first_seen=first_seen, last_seen=first_seen + 60, evidence={}, dedup=dedup,
                   service_principal_id=principal)


def feed(findings: list[Finding], chain: AttackChain | None = None,
         state: ChainState | None = None) -> list[Finding]:
    """One finding per call, as the engine delivers them event by event."""
    chain = chain or AttackChain()
    state = state if state is not None else chain.new_state()
    return [i for f in findings for i in chain.observe_findings(state, [f], STAGE_OF)]


CHAIN = [stage_finding("graph_enumeration", T0 + HOUR),
         stage_finding("onedrive_enumeration", T0 + 2 * HOUR),
         stage_finding("app_credential_added", T0 + 5 * HOUR, dedup="app")]


def test_fires_on_three_stages_within_the_horizon() -> None:
    [incident] = feed(CHAIN)
    assert incident.detector == "attack_chain" and incident.severity == "critical"
    assert incident.principal_id == SP and incident.service_principal_id == SP
    assert (incident.window_start, incident.window_end) == (T0, T0 + 24 * HOUR)
    assert (incident.first_seen, incident.last_seen) == (T0 + HOUR, T0 + 5 * HOUR + 60)
    evidence = incident.evidence
    assert evidence["stage_order"] == ["discovery", "collection", "persistence"]
    assert evidence["stages"]["persistence"] == [CHAIN[2].alert_id]
    assert evidence["alert_ids"] == sorted(f.alert_id for f in CHAIN)
    assert evidence["detectors"] == ["app_credential_added", "graph_enumeration",
                                     "onedrive_enumeration"]


def test_silent_with_two_stages_however_many_findings() -> None:
    findings = [stage_finding("graph_enumeration", T0 + i * 600) for i in range(5)]
    findings += [stage_finding("attack_tool", T0 + 100), stage_finding("onedrive_enumeration",
                                                                       T0 + 900)]
    assert feed(findings) == []


def test_silent_when_the_stages_span_more_than_the_horizon() -> None:
    spread = [stage_finding("graph_enumeration", T0),
              stage_finding("onedrive_enumeration", T0 + 10 * HOUR),
              stage_finding("storage_exfiltration", T0 + 24 * HOUR + 1)]
    assert feed(spread) == []
    assert len(feed(spread, AttackChain(Params(horizon_seconds=25 * HOUR)))) == 1


def test_silent_for_findings_without_a_stage_and_for_its_own_findings() -> None:
    findings = [stage_finding("graph_enumeration", T0), stage_finding("new_detector", T0 + 1),
                stage_finding("attack_chain", T0 + 2), stage_finding("onedrive_enumeration", T0)]
    assert feed(findings) == []


def test_fires_once_per_chain_despite_more_stages_and_replays() -> None:
    more = [*CHAIN, stage_finding("storage_exfiltration", T0 + 6 * HOUR), *CHAIN]
    assert len(feed(more)) == 1


def test_fires_across_a_bucket_boundary_with_the_starting_bucket() -> None:
    late = [stage_finding("graph_enumeration", T0 + 23 * HOUR),
            stage_finding("onedrive_enumeration", T0 + 25 * HOUR),
            stage_finding("app_credential_added", T0 + 26 * HOUR)]
    [incident] = feed(late)
    assert incident.window_start == T0


def test_alert_id_does_not_depend_on_arrival_order() -> None:
    ids = {tuple(i.alert_id for i in feed(list(order))) for order in itertools.permutations(CHAIN)}
    chain = AttackChain()
    ids.add(tuple(i.alert_id for i in chain.observe_findings(chain.new_state(), CHAIN, STAGE_OF)))
    assert len(ids) == 1


def test_principals_are_kept_apart() -> None:
    other = "99999999-9999-9999-9999-999999999999"
    mixed = [CHAIN[0], stage_finding("onedrive_enumeration", T0 + 2 * HOUR, principal=other),
             CHAIN[1], stage_finding("app_credential_added", T0 + 3 * HOUR, principal=other)]
    assert feed(mixed) == []
    assert [i.principal_id for i in feed([*mixed, CHAIN[2]])] == [SP]


def test_a_later_separate_chain_fires_again() -> None:
    next_day = [stage_finding(f.detector, f.first_seen + 30 * HOUR, dedup="next") for f in CHAIN]
    incidents = feed(CHAIN + next_day)
    assert [i.window_start for i in incidents] == [T0, T0 + 24 * HOUR]


def test_expire_keeps_findings_for_twice_the_horizon() -> None:
    chain = AttackChain()
    state = chain.new_state()
    chain.observe_findings(state, CHAIN[:2], STAGE_OF)
    assert not chain.expire(state, T0 + 48 * HOUR)
    assert chain.expire(state, T0 + 53 * HOUR)
    assert chain.observe_findings(state, CHAIN[2:], STAGE_OF) == []


@pytest.mark.parametrize("values", [{"min_stages": 0}, {"horizon_seconds": -1}])
def test_params_reject_nonsense(values: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Params(**values)  # type: ignore[arg-type]
