"""graphsentry.metrics without a broker: samples, the families' naming, the counters of
embedded flows, the health logic, the HTTP endpoints, ``graphsentry health`` URLs and the
topic plan of ``graphsentry topics``."""

from __future__ import annotations

import gc
import json
import pickle
import re
import socket
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from graphsentry.commands.health import base_urls
from graphsentry.commands.topics import Existing, plan, problems
from graphsentry.config import config_from_dict
from graphsentry.detection import DetectStats, run_embedded
from graphsentry.errors import GraphsentryError
from graphsentry.metrics.health import Health, KafkaProbe
from graphsentry.metrics.samples import FAMILIES, Samples, alert_kind, reason_code
from graphsentry.metrics.server import serve, start
from graphsentry.metrics.views import delivery_samples, process_samples
from tests.engine.scenario import attack, benign

ROOT = Path(__file__).resolve().parents[1]
PROCESS_FAMILIES = ("graphsentry_kafka_consumer_lag_messages", "graphsentry_input_partitions",
                    "graphsentry_last_progress_timestamp_seconds",
                    "graphsentry_epoch_duration_seconds")
FORBIDDEN_LABELS = {"principal", "principal_id", "user", "user_id", "ip", "app", "app_id",
                    "tenant", "tenant_id", "request_id", "alert_id"}


def test_samples_add_merge_select_and_pickle() -> None:
    one = Samples()
    one.add("graphsentry_rejects_total", 2, flow="detect", reason="bad_avro")
    one.add("graphsentry_rejects_total", 1, reason="future_timestamp", flow="detect")
    one.add("graphsentry_events_total", 0, flow="detect")  # zeros are series too
    one.set("graphsentry_state_principals", 5, flow="detect")
    two = pickle.loads(pickle.dumps(one))
    assert type(two) is Samples and two == one
    two.merge(one)
    assert two.total("graphsentry_rejects_total") == 6
    assert two.count("graphsentry_rejects_total", reason="bad_avro") == 4
    assert two.by("graphsentry_rejects_total", "reason") == {"bad_avro": 4,
                                                             "future_timestamp": 2}
    assert ("graphsentry_events_total", (("flow", "detect"),)) in two
    assert set(k[0] for k in two.counters()) == {"graphsentry_rejects_total",
                                                 "graphsentry_events_total"}


@pytest.mark.parametrize(("reason", "code"), [
    ("bad_avro: ValueError: x", "bad_avro"), ("missing_value: tombstone", "missing_value"),
    ("future_timestamp", "future_timestamp"), ("Something odd: x", "other"),
    ("free text with spaces", "other"), ("x" * 80, "other")])
def test_reason_codes_are_bounded(reason: str, code: str) -> None:
    assert reason_code(reason) == code


def test_alert_kinds() -> None:
    assert [alert_kind(d) for d in ("attack_chain", "principal_risk", "new_origin")] == [
        "incident", "risk", "detector"]


def test_families_follow_the_naming_conventions_and_are_documented() -> None:
    doc = (ROOT / "docs" / "operations.md").read_text()
    for family in FAMILIES:
        assert re.fullmatch(r"graphsentry_[a-z_]+", family.name), family.name
        assert family.name.endswith("_total") == (family.kind == "counter"), family.name
        if "seconds" in family.name or "bytes" in family.name:
            assert re.search(r"_(seconds|bytes)(_total)?$", family.name), family.name
        assert not set(family.labels) & FORBIDDEN_LABELS, family.name
        assert f"`{family.name}`" in doc, f"{family.name} is not in docs/operations.md"
    for name in PROCESS_FAMILIES:
        assert f"`{name}`" in doc, f"{name} is not in docs/operations.md"


def _workload() -> list[dict[str, Any]]:
    records = attack() + benign(hours=2, principals=5)
    return [*records, {"not": "a record"}, records[0]]  # a reject and a duplicate


def test_embedded_run_counts_are_the_metric_samples_and_survive_the_flow() -> None:
    gc.collect()
    before = process_samples()
    found: list[dict[str, Any]] = []
    stats = run_embedded(_workload(), on_alert=found.append)
    gc.collect()  # the flow is gone: its counters are kept
    after = process_samples()

    def grew(name: str, **labels: str) -> float:
        return after.total(name, **labels) - before.total(name, **labels)

    assert grew("graphsentry_input_messages_total", flow="detect") == len(_workload())
    assert grew("graphsentry_events_total", flow="detect") == stats.events == len(_workload()) - 1
    assert grew("graphsentry_rejects_total", reason="bad_record") == stats.rejects == 1
    assert grew("graphsentry_duplicates_total", flow="detect") == stats.duplicates == 1
    assert grew("graphsentry_alert_updates_total") == stats.alert_updates == len(found)
    latest = {a["alert_id"]: a for a in sorted(found, key=lambda a: a["revision"])}
    assert grew("graphsentry_alerts_total") == stats.alert_count == len(latest) > 0
    assert stats.alerts == Counter(a["detector"] for a in latest.values())
    assert after.by("graphsentry_alerts_latest", "kind") - before.by(
        "graphsentry_alerts_latest", "kind") == Counter(a["kind"] for a in latest.values())


def test_report_line_of_a_bytewax_run_process() -> None:
    """``python -m bytewax.run "dataflows.detect:get_flow()"`` prints this at exit."""
    from collections import Counter as Count

    from dataflows.detect import CallbackSink, DetectSinks, build_flow, records_source, report_line
    from dataflows.kafka_io import DeliveryStats
    from graphsentry.enrichment import MemoryStore

    delivery = DeliveryStats()
    delivery.add(Count({"graph.alerts.v1": 2}), Count(), 0)
    built = build_flow(config_from_dict({}, env={}), records_source([]),
                       DetectSinks(alerts=CallbackSink(lambda _a: None)), MemoryStore,
                       delivery=delivery)
    line = report_line(built)
    assert line.startswith("events=0 late=0 ")
    assert line.endswith(" acknowledged: graph.alerts.v1 2")


def test_detect_stats_and_delivery_read_the_samples() -> None:
    from dataflows.kafka_io import DeliveryStats

    stats = DeliveryStats()
    stats.add(Counter({"graph.alerts.v1": 3}), Counter({"INVALID_TIMESTAMP": 1}), 2,
              Counter({"graph.signals.v1": 4}))
    samples = Samples()
    delivery_samples(stats, "detect", samples)
    again = DeliveryStats.from_samples(samples)
    assert again.as_dict() == stats.as_dict()
    assert samples.count("graphsentry_delivery_failed_messages_total",
                         topic="graph.signals.v1") == 4
    samples.add("graphsentry_events_total", 7, flow="replay")
    samples.add("graphsentry_rejects_total", 2, flow="replay", reason="future_timestamp")
    line = DetectStats.from_samples(samples).line()
    assert "events=7" in line and "future=2" in line and "rejects=2" in line


# --- health -------------------------------------------------------------------------------

def test_ready_waits_for_the_input_and_live_for_progress() -> None:
    health = Health()
    health.liveness_timeout = 30
    ready, body = health.ready()
    assert not ready and body["checks"]["input"].startswith("waiting")
    assert health.live()[0]  # starting up
    health.listed()
    assert not health.ready()[0]  # listed, assignment pending
    health.opened()
    health.opened()
    ready, body = health.ready()
    assert ready and body["checks"]["input"] == "2 partition(s) assigned"
    health.beat()
    assert health.live()[0]
    health.last_beat = time.monotonic() - 31  # stuck for longer than the limit
    live, body = health.live()
    assert not live and body["seconds_since_progress"] > 30
    health.closed()
    health.closed()
    assert health.ready()[1]["checks"]["input"].startswith("finished")


def test_a_process_without_partitions_is_ready_and_live() -> None:
    health = Health()
    health.listed()
    assert health.listed_at is not None
    health.listed_at -= 10  # listed long ago, nothing built here
    health.started -= 1000  # and long past the start-up grace
    assert health.ready() == (True, {"ready": True, "checks": {
        "input": "no partition assigned to this process"}})
    assert health.live()[0]


def test_unreachable_kafka_is_not_ready_and_redis_down_is_degraded_not_unready() -> None:
    from graphsentry.enrichment.redis_store import RedisStore

    store = RedisStore("redis://127.0.0.1:1/0", socket_timeout_seconds=0.2)
    assert not store.lookup({"app"}, {"192.0.2.1"}, {}).available
    health = Health()
    health.listed()
    health.opened()
    health.store = lambda: store
    ready, body = health.ready()
    assert ready and body["checks"]["enrichment"].startswith("unavailable: detection continues")
    health.kafka = KafkaProbe({"kafka": {"bootstrap.servers": "127.0.0.1:1"}})
    ready, body = health.ready()
    assert not ready and body["checks"]["kafka"].startswith("unreachable")


# --- the endpoints --------------------------------------------------------------------------

def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_endpoints_serve_metrics_and_json_health() -> None:
    run_embedded(_workload())
    server = start("127.0.0.1", 0)
    try:
        status, text = _get(server.url + "/metrics")
        assert status == 200
        assert re.search(r'^graphsentry_events_total\{flow="detect"\} \d+', text, re.M)
        assert "# TYPE graphsentry_kafka_consumer_lag_messages gauge" in text
        assert "process_resident_memory_bytes" in text
        for path in ("/live", "/ready"):
            status, body = _get(server.url + path)
            assert status in (200, 503) and (status == 200) == json.loads(body)[path[1:]]
        status, body = _get(server.url + "/nope")
        assert status == 404 and json.loads(body)["endpoints"] == ["/metrics", "/ready", "/live"]
    finally:
        server.close()


def _free_pair() -> int:
    """A port P with P and P+1 free now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port < 65_535:
            try:
                with socket.socket() as next_one:
                    next_one.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue
    raise AssertionError("no free port pair")


def test_serve_offsets_the_port_by_the_process_index_and_is_off_by_default() -> None:
    assert serve(config_from_dict({}, env={}), name="test") is None
    port = _free_pair()
    config = config_from_dict({"metrics": {"enabled": True, "port": port}}, env={})
    server = serve(config, name="test", index=1)
    assert server is not None
    try:
        assert server.port == port + 1
        with pytest.raises(GraphsentryError, match=rf"cannot serve metrics on 127.0.0.1:"
                                                   rf"{port + 1}.*metrics.port"):
            serve(config, name="test", index=1)
    finally:
        server.close()
    high = config_from_dict({"metrics": {"enabled": True, "port": 65_535}}, env={})
    with pytest.raises(GraphsentryError, match="beyond 65535"):
        serve(high, name="test", index=1)


def test_health_command_finds_the_endpoints_from_the_configuration() -> None:
    config = config_from_dict({"metrics": {"enabled": True, "host": "0.0.0.0", "port": 9500}},
                              env={})
    assert base_urls(config, 2) == ["http://127.0.0.1:9500", "http://127.0.0.1:9501"]
    v6 = config_from_dict({"metrics": {"enabled": True, "host": "::"}}, env={})
    assert base_urls(v6, 1) == ["http://[::1]:9464"]
    with pytest.raises(GraphsentryError, match=r"metrics\.enabled is false"):
        base_urls(config_from_dict({}, env={}), 1)
    with pytest.raises(GraphsentryError, match="give --url"):
        base_urls(config_from_dict({"metrics": {"enabled": True, "port": 0}}, env={}), 1)


def test_health_command_fails_without_an_answer(capsys: pytest.CaptureFixture[str]) -> None:
    from graphsentry.cli import main

    assert main(["health", "--url", "http://127.0.0.1:1", "--timeout", "2"]) == 1
    assert "http://127.0.0.1:1/live: error no answer" in capsys.readouterr().out


# --- topics ---------------------------------------------------------------------------------

def test_topic_plan_covers_every_configured_topic_and_compacts_the_alert_topics() -> None:
    default = plan(config_from_dict({}, env={}))
    roles = {t.role: t for t in default.topics}
    assert set(roles) == {"raw", "activity", "dlq", "signals", "late", "alerts", "alerts_json"}
    assert {r for r, t in roles.items() if t.compacted} == {"alerts", "alerts_json"}
    ocsf = plan(config_from_dict({"kafka": {"topics": {"alerts_ocsf": "o"}}}, env={}),
                partitions=12)
    by_role = {t.role: t for t in ocsf.topics}
    assert by_role["alerts_ocsf"].compacted and by_role["alerts_ocsf"].name == "o"
    assert by_role["activity"].partitions == by_role["raw"].partitions == 12
    assert by_role["dlq"].partitions == 2
    hub = plan(config_from_dict({"kafka": {"consumer": {
        "bootstrap.servers": "ns.servicebus.windows.net:9093"}}}, env={}))
    assert "raw" not in {t.role for t in hub.topics}
    assert "another cluster" in hub.skipped["raw"]


def test_topic_problems_and_notes() -> None:
    topics = {t.role: t for t in plan(config_from_dict({}, env={})).topics}
    compacted = Existing(4, {"cleanup.policy": "compact"}, 1)
    deleting = Existing(2, {"cleanup.policy": "delete", "retention.ms": "604800000"}, 1)
    assert problems(topics["alerts"], compacted) == ([], [])
    found, _ = problems(topics["alerts"], deleting)
    assert found and "must be compact" in found[0]
    found, _ = problems(topics["activity"], compacted)
    assert found and "must be delete" in found[0]
    found, notes = problems(topics["activity"], deleting)
    assert not found and "2 partition(s), 8 recommended" in notes
    assert any("retention.ms is 604800000" in n for n in notes)


# --- the example alert rules of docs/operations.md ------------------------------------------------

_PROCESS_LABELS = {"graphsentry_kafka_consumer_lag_messages": ("topic", "partition"),
                   "graphsentry_input_partitions": (),
                   "graphsentry_last_progress_timestamp_seconds": (),
                   "graphsentry_epoch_duration_seconds_bucket": ("le",),
                   "up": (), "process_start_time_seconds": ()}
"""Families served besides FAMILIES, with their labels (the epoch histogram as its buckets;
``up`` is Prometheus' own, ``process_start_time_seconds`` prometheus-client's)."""
_TARGET_LABELS = {"job", "instance"}  # added by Prometheus to every scraped series


def _rule_expressions() -> list[tuple[str, str]]:
    import yaml

    doc = (ROOT / "docs" / "operations.md").read_text()
    section = doc.split("## Alert rules", 1)[1]
    block = section.split("```yaml", 1)[1].split("```", 1)[0]
    return [(rule["alert"], rule["expr"]) for group in yaml.safe_load(block)["groups"]
            for rule in group["rules"]]


def test_the_documented_alert_rules_are_promql_over_served_metrics_and_labels() -> None:
    """Each ``expr`` parses (promql-parser, the Rust PromQL parser's Python binding), names only
    metrics graphsentry serves, and groups or matches only by labels those metrics carry."""
    import promql_parser

    labels = {family.name: family.labels for family in FAMILIES}
    labels.update(_PROCESS_LABELS)
    rules = _rule_expressions()
    assert len(rules) >= 8
    for alert, expr in rules:
        tree = promql_parser.parse(expr)
        selectors: list[Any] = []
        groupings: list[tuple[list[str], list[str]]] = []

        def visit(node: Any, selectors: list[Any] = selectors,
                  groupings: list[tuple[list[str], list[str]]] = groupings) -> bool:
            if isinstance(node, promql_parser.VectorSelector):
                selectors.append(node)
            elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
                below: list[str] = []
                promql_parser.walk(node.expr, lambda n: below.append(n.name) if isinstance(
                    n, promql_parser.VectorSelector) else None)
                groupings.append((list(node.modifier.labels), below))
            return True

        promql_parser.walk(tree, visit)
        assert selectors, alert
        for selector in selectors:
            assert selector.name in labels, f"{alert}: {selector.name} is not served"
            for matcher in selector.matchers.matchers:
                assert matcher.name in {*labels[selector.name], *_TARGET_LABELS}, (
                    f"{alert}: {selector.name} has no label {matcher.name}")
        for by, below in groupings:
            for name in below:
                missing = set(by) - {*labels[name], *_TARGET_LABELS}
                assert not missing, f"{alert}: {name} has no label {sorted(missing)}"
