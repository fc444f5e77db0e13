"""The detection dataflow run in process (``run_embedded``): the same signals and alerts as the
engine alone, the same in any arrival order within the lateness, rejects and late events
routed, enrichment applied."""

from __future__ import annotations

from typing import Any

from detectors import catalog
from detectors.base import AppInfo
from detectors.event import GraphEvent
from graphsentry.detection import run_embedded
from graphsentry.enrichment.memory import MemoryStore
from graphsentry.enrichment.store import AsnRange, ip_key
from tests.detectors.factory import Recorder, Runner, in_time_order, settings
from tests.engine.scenario import APP, T0, attack, benign, shuffled_within, workload


def last_versions(alerts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {a["alert_id"]: a for a in alerts}


def finals(signals: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["signal_id"]: s for s in signals if s["final"]}


def embedded(records: list[dict[str, Any]], **kwargs: Any) -> tuple[Any, list[Any], list[Any]]:
    alerts: list[dict[str, Any]] = []
    signals: list[dict[str, Any]] = []
    stats = run_embedded(records, on_alert=alerts.append, on_signal=signals.append, **kwargs)
    return stats, signals, alerts


def test_embedded_flow_matches_the_engine() -> None:
    records = workload()
    runner = Runner(Recorder(catalog.build_detectors(), settings()))
    runner.feed(in_time_order(GraphEvent.from_record(r) for r in records)).flush()
    stats, signals, alerts = embedded(records)
    assert finals(signals) == finals(runner.out.signals)
    assert last_versions(alerts) == last_versions(runner.out.alerts)
    assert stats.events == len(records) and stats.alerts["attack_chain"] == 1
    assert stats.alert_updates == len(alerts)


def test_embedded_flow_is_order_independent_within_the_lateness() -> None:
    records = workload()
    _, signals, alerts = embedded(records)
    _, shuffled_signals, shuffled_alerts = embedded(shuffled_within(records, 7000, seed=5))
    assert finals(signals) == finals(shuffled_signals)
    assert last_versions(alerts) == last_versions(shuffled_alerts)


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


def test_enrichment_reaches_signals_and_alerts() -> None:
    store = MemoryStore()
    store.put_apps([AppInfo(APP, display_name="Backup Runner", owner_tenant_id="t-owner")])
    start, end = ip_key("203.0.113.0"), ip_key("203.0.113.255")
    assert start and end
    store.put_asn_ranges([AsnRange(start[1], end[1], 64500, "EXAMPLE-NET", 4)])
    _, signals, alerts = embedded(attack(), store=store)
    assert alerts and signals
    for record in [*signals, *alerts]:
        assert record["app_display_name"] == "Backup Runner"
        assert record["enrichment"]["app_first_party"] is False
        assert record["enrichment"]["available"] is True
    assert all(64500 in s["context"]["asns"] for s in signals)
