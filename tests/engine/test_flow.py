"""The detection dataflow run in process (``run_embedded``): same results as the engine alone,
rejects and late events routed, enrichment applied."""

from __future__ import annotations

from typing import Any

from detectors.base import AppInfo
from graphsentry.detection import run_embedded
from graphsentry.enrichment.memory import MemoryStore
from graphsentry.enrichment.store import AsnRange, ip_key
from tests.engine.scenario import APP, T0, attack, benign, shuffled_within, workload
from tests.engine.test_engine import engine_with, events_of, run


def ids(alerts: list[dict[str, Any]]) -> list[str]:
    return sorted(a["alert_id"] for a in alerts)


def test_embedded_flow_matches_the_engine() -> None:
    records = workload()
    expected, _, _ = run(engine_with(), events_of(records))
    alerts: list[dict[str, Any]] = []
    stats = run_embedded(records, on_alert=alerts.append)
    assert ids(alerts) == ids(expected)
    assert stats.events == len(records) and stats.alert_count == len(alerts)
    assert stats.alerts["attack_chain"] == 1


def test_embedded_flow_is_order_independent_within_the_lateness() -> None:
    records = workload()
    first: list[dict[str, Any]] = []
    run_embedded(records, on_alert=first.append)
    shuffled: list[dict[str, Any]] = []
    run_embedded(shuffled_within(records, 7000, seed=5), on_alert=shuffled.append)
    assert ids(first) == ids(shuffled)


def test_bad_records_are_rejected_and_late_events_routed() -> None:
    late_record = benign(T0 - 3 * 86_400, hours=0.1, principals=1)[0]
    records = [*workload(), {"not": "a record"}, dict(late_record, response_status_code="x"),
               late_record]
    rejects: list[dict[str, Any]] = []
    late: list[Any] = []
    stats = run_embedded(records, on_reject=rejects.append, on_late=late.append)
    assert stats.rejects == 2 and len(rejects) == 2
    assert all(r["reason"].startswith("bad_record:") for r in rejects)
    assert stats.late == 1 and [e.request_id for e in late] == [late_record["request_id"]]


def test_enrichment_reaches_the_alerts() -> None:
    store = MemoryStore()
    store.put_apps([AppInfo(APP, display_name="Backup Runner", owner_tenant_id="t-owner")])
    start, end = ip_key("203.0.113.0"), ip_key("203.0.113.255")
    assert start and end
    store.put_asn_ranges([AsnRange(start[1], end[1], 64500, "EXAMPLE-NET", 4)])
    alerts: list[dict[str, Any]] = []
    run_embedded(attack(), store=store, on_alert=alerts.append)
    assert alerts
    for alert in alerts:
        assert alert["app_display_name"] == "Backup Runner"
        assert alert["enrichment"]["asn"] == 64500
        assert alert["enrichment"]["app_first_party"] is False
        assert alert["enrichment"]["available"] is True
