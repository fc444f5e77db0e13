"""``graphsentry exceptions add|list|remove`` on the real Redis, and detection applying what it
stored (``ExceptionStore``: hash ``{prefix}exceptions``, field = id, value = JSON).

The command runs in this process through ``graphsentry.cli.main`` (its return value is the
exit status; argparse's errors exit with 2), except where a test needs a real process. Running
detection reads the stored exceptions when it starts and again every
``dataflows.detect.EXCEPTIONS_REFRESH`` (60 s of wall clock, not configurable): the detection
test starts ``graphsentry run --bounded`` after the exceptions were added and removed."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from graphsentry.alerts import alert_from_avro, alert_to_avro, iso, signal_from_avro, to_datetime
from graphsentry.cli import main
from graphsentry.config import load_config
from graphsentry.detection import run_embedded
from graphsentry.enrichment.redis_store import RedisStore
from tests.engine.scenario import APP, ATTACKER, T0, record, workload
from tests.integration.bounded import graphsentry, publish, run_bounded, run_topics, write_config
from tests.integration.kafka_util import read_all

DAY = 86_400.0
PIPELINE = "44444444-4444-4444-4444-444444444444"
PIPELINE_APP = "44444444-4444-4444-4444-000000000001"
LINE = re.compile(r"^(?P<id>exc-[0-9a-f]{12})  (?P<state>active |expired|removed)  "
                  r"(?:starts (?P<starts>\S+)  )?expires (?P<expires>\S+)  (?P<scope>.*?)  — "
                  r"(?P<reason>.*) \((?P<author>[^,]+), (?P<created>\S+?Z)"
                  r"(?:; removed by (?P<removed_by>.+), (?P<removed>\S+Z))?\)$")

Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def config(tmp_path: Path, redis_url: str, redis_namespace: str) -> Path:
    return write_config(tmp_path / "graphsentry.yaml", "127.0.0.1:1", redis_url,
                        redis_namespace)


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """``cli(config, *args) -> (exit status, stdout, stderr)`` of ``graphsentry exceptions``."""
    for name in ("REDIS_URL", "KAFKA_BOOTSTRAP", "GRAPHSENTRY_CONFIG"):
        monkeypatch.delenv(name, raising=False)

    def run(config: Path, *args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = main(["exceptions", "--config", str(config), *args])
        except SystemExit as exc:  # argparse
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def stored(client: redis.Redis, namespace: str) -> dict[str, dict[str, Any]]:
    """The exceptions hash as Redis holds it: id → the stored JSON."""
    raw = client.hgetall(f"{namespace}exceptions")
    return {k.decode(): json.loads(v) for k, v in raw.items()}


def when(epoch: float) -> str:
    return iso(to_datetime(epoch))


def test_add_list_and_remove_with_every_scope_field_and_the_audit_trail(
        cli: Cli, config: Path, redis_client: redis.Redis, redis_namespace: str) -> None:
    adds = [
        ("--detector", "storage_exfiltration", "detector", "storage_exfiltration"),
        ("--app-id", APP, "app_id", APP),
        ("--principal-id", PIPELINE, "principal_id", PIPELINE),
        ("--network", "203.0.113.77/24", "network", "203.0.113.0/24"),  # normalized
        ("--asn", "64500", "asn", 64500),
        ("--template", "/Users/{id}/MailFolders/*", "template",
         "/users/{id}/mailfolders/*"),  # canonical (lower case)
    ]
    added: dict[str, dict[str, Any]] = {}
    for flag, value, field, kept in adds:
        before = time.time()
        code, out, err = cli(config, "add", flag, value, "--reason", f"CHG-{field}",
                             "--author", "alice@example.com", "--expires", "30d")
        after = time.time()
        assert (code, err) == (0, "")
        line = LINE.match(out.rstrip("\n"))
        assert line is not None and out.count("\n") == 1, out
        item = stored(redis_client, redis_namespace)[line["id"]]
        assert item[field] == kept
        assert set(item) == {"id", "reason", "author", "created", "expires", "source", field}
        assert (item["reason"], item["author"], item["source"]) == (
            f"CHG-{field}", "alice@example.com", "redis")
        assert before <= item["created"] <= after
        assert item["expires"] == pytest.approx(item["created"] + 30 * DAY, abs=1e-3)
        kept_text = str(kept)
        assert (line["state"], line["expires"], line["scope"], line["reason"],
                line["author"], line["created"]) == (
            "active ", when(item["expires"]), f"{field}={kept_text}", f"CHG-{field}",
            "alice@example.com", when(item["created"])[:19] + "Z")
        added[line["id"]] = item

    # All fields at once, an ISO validity in event time, no expiry-by-duration.
    code, out, _ = cli(config, "add", "--reason", "nightly export", "--author", "bob",
                       "--starts", "2026-01-01T00:00:00Z", "--expires", "2026-02-01T12:30:00Z",
                       "--detector", "new_origin", "--app-id", APP, "--principal-id", ATTACKER,
                       "--network", "2001:db8::/32", "--asn", "64501", "--template",
                       "/users/*")
    assert code == 0
    every = LINE.match(out.rstrip("\n"))
    assert every is not None
    item = stored(redis_client, redis_namespace)[every["id"]]
    assert (item["starts"], item["expires"]) == (T0, T0 + 31 * DAY + 45_000)
    assert every["starts"] == "2026-01-01T00:00:00.000000Z"
    assert every["scope"] == (f"detector=new_origin, app_id={APP}, principal_id={ATTACKER}, "
                              f"network=2001:db8::/32, asn=64501, template=/users/*")
    assert every["state"] == "expired"  # its validity ended before today's wall clock
    added[every["id"]] = item
    # A permanent one (no --expires) is an allow-list entry.
    code, out, _ = cli(config, "add", "--reason", "scanner", "--author", "carol",
                       "--network", "198.51.100.0/24")
    permanent = LINE.match(out.rstrip("\n"))
    assert code == 0 and permanent is not None and permanent["expires"] == "never"
    assert "expires" not in stored(redis_client, redis_namespace)[permanent["id"]]

    # list: active ones only, sorted by id, one line each; --json: the stored records.
    active = sorted([*(i for i in added if i != every["id"]), permanent["id"]])
    code, out, err = cli(config, "list")
    assert (code, err) == (0, "")
    assert [LINE.match(x)["id"] for x in out.splitlines()] == active  # type: ignore[index]
    code, out, _ = cli(config, "list", "--json")
    assert [json.loads(x) for x in out.splitlines()] == [
        stored(redis_client, redis_namespace)[i] for i in active]
    code, out, _ = cli(config, "list", "--all")
    assert sorted(LINE.match(x)["id"] for x in out.splitlines()) == sorted(  # type: ignore[index]
        [*added, permanent["id"]])

    # remove: kept with who and when (the audit trail), no longer listed, never twice.
    gone = next(i for i in active if i in added)
    before = time.time()
    code, out, err = cli(config, "remove", gone, "--author", "dave")
    after = time.time()
    assert (code, err) == (0, "")
    item = stored(redis_client, redis_namespace)[gone]
    assert item["removed_by"] == "dave" and before <= item["removed"] <= after
    assert {k: v for k, v in item.items() if k not in ("removed", "removed_by")} == added[gone]
    shown = LINE.match(out.rstrip("\n"))
    assert shown is not None and (shown["state"], shown["removed_by"], shown["removed"]) == (
        "removed", "dave", when(item["removed"])[:19] + "Z")
    _, out, _ = cli(config, "list")
    assert gone not in out and len(out.splitlines()) == len(active) - 1
    _, out, _ = cli(config, "list", "--all")
    assert any(x.startswith(f"{gone}  removed") and "removed by dave" in x
               for x in out.splitlines())
    code, out, err = cli(config, "remove", gone, "--author", "erin")
    assert (code, out) == (2, "")
    assert err == (f"graphsentry exceptions: error: exception {gone} was removed already "
                   f"(by dave)\n")
    assert stored(redis_client, redis_namespace)[gone]["removed_by"] == "dave"


def test_list_with_nothing_stored_says_so(cli: Cli, config: Path) -> None:
    assert cli(config, "list") == (0, "", "no exceptions\n")
    assert cli(config, "list", "--json") == (0, "", "")


@pytest.mark.parametrize(("args", "message"), [
    ((), "give at least one scope field (detector, app_id, principal_id, network, asn, "
         "template)"),
    (("--detector", "nope"), "unknown detector 'nope' (known: new_origin, "),
    (("--app-id", APP, "--expires", "soon"),
     "not a time or duration: 'soon' (ISO-8601, or e.g. 30d, 12h)"),
    (("--app-id", APP, "--starts", "2026-02-01T00:00:00Z", "--expires", "2026-01-01T00:00:00Z"),
     "expires must be after starts"),
    (("--network", "10.0.0.300/8"), "'10.0.0.300/8' does not appear to be an IPv4 or IPv6 "
                                     "network"),
    (("--principal-id", ""), "empty principal_id: leave a scope field out instead"),
    (("--principal-id", " "), "empty principal_id: leave a scope field out instead"),
    (("--app-id", "", "--detector", "new_origin"), "empty app_id"),
    (("--template", ""), "empty template"),
    (("--asn", "-5"), "asn -5 is not an autonomous system number (0..4294967295)"),
    (("--asn", "4294967296"), "asn 4294967296 is not an autonomous system number"),
])
def test_add_refuses_wrong_input_and_stores_nothing(
        cli: Cli, config: Path, redis_client: redis.Redis, redis_namespace: str,
        args: tuple[str, ...], message: str) -> None:
    code, out, err = cli(config, "add", "--reason", "r", "--author", "a", *args)
    assert (code, out) == (2, "")
    assert err.startswith(f"graphsentry exceptions: error: {message}"), err
    assert stored(redis_client, redis_namespace) == {}


@pytest.mark.parametrize(("args", "message"), [
    (("add", "--reason", " ", "--author", "a", "--app-id", APP),
     "error: reason and author are required"),
    (("add", "--author", "a", "--app-id", APP),
     "error: the following arguments are required: --reason"),
    (("add", "--reason", "r", "--author", "a", "--asn", "AS1"),
     "error: argument --asn: invalid int value: 'AS1'"),
    (("remove", "exc-000000000000", "--author", "a"), "error: no exception 'exc-000000000000'"),
    (("remove", "exc-000000000000"), "error: the following arguments are required: --author"),
    (("purge",), "argument ACTION: invalid choice: 'purge'"),
])
def test_wrong_actions_and_arguments_exit_2_with_the_reason(
        cli: Cli, config: Path, redis_client: redis.Redis, redis_namespace: str,
        args: tuple[str, ...], message: str) -> None:
    code, out, err = cli(config, *args)
    assert (code, out) == (2, "")
    assert message in err, err
    assert stored(redis_client, redis_namespace) == {}


def test_a_real_process_exits_2_and_names_the_problem(config: Path, redis_client: redis.Redis,
                                                      redis_namespace: str) -> None:
    done = graphsentry("exceptions", "--config", str(config), "add", "--reason", "r",
                       "--author", "a", "--detector", "nope", timeout=60)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith("graphsentry exceptions: error: unknown detector 'nope'")
    assert "Traceback" not in done.stderr
    assert stored(redis_client, redis_namespace) == {}


def test_without_redis_the_error_is_clear_and_the_password_masked(
        cli: Cli, tmp_path: Path) -> None:
    unreachable = write_config(tmp_path / "down.yaml", "127.0.0.1:1",
                               "redis://:hunter2-secret@127.0.0.1:1/0", "x:")
    for args in (("list",), ("add", "--reason", "r", "--author", "a", "--asn", "1"),
                 ("remove", "exc-000000000000", "--author", "a")):
        code, out, err = cli(unreachable, *args)
        assert (code, out) == (2, "")
        assert err.startswith("graphsentry exceptions: error: cannot reach Redis at "
                              "redis://:***@127.0.0.1:1/0"), err
        assert "hunter2" not in err
    none = write_config(tmp_path / "none.yaml", "127.0.0.1:1", None, "x:")
    assert cli(none, "list") == (
        2, "", "graphsentry exceptions: error: exceptions are stored in Redis, and redis.url "
               "is null; give them in the configuration (alerts.exceptions) instead\n")


def test_an_unreadable_stored_entry_is_skipped_with_a_warning(
        cli: Cli, config: Path, redis_client: redis.Redis, redis_namespace: str) -> None:
    code, out, _ = cli(config, "add", "--reason", "r", "--author", "a", "--asn", "64500")
    good = out.split()[0]
    redis_client.hset(f"{redis_namespace}exceptions", "exc-broken", "{not json")
    redis_client.hset(f"{redis_namespace}exceptions", "exc-blank",
                      json.dumps({"id": "exc-blank", "reason": "r", "author": "a",
                                  "created": 0, "principal_id": ""}))
    code, out, err = cli(config, "list")
    assert code == 0 and [x.split()[0] for x in out.splitlines()] == [good]
    assert "graphsentry: skipping stored exception exc-broken: " in err
    assert ("graphsentry: skipping stored exception exc-blank: exception exc-blank: empty "
            "principal_id" in err)


# -- detection applies what the command stored -------------------------------------------------

def rotations() -> list[dict[str, Any]]:
    """A deployment pipeline's service principal adds a password to another service principal
    every hour (high fidelity: each raises its alert on its own)."""
    out = []
    for h in range(6):
        target = f"88888888-8888-8888-8888-{h:012d}"
        out.append(record(T0 + h * 3600 + 60, f"rot-{h}", PIPELINE, app=PIPELINE_APP,
                          method="POST", path=f"/servicePrincipals/{target}/addPassword",
                          template="/servicePrincipals/{id}/addPassword",
                          family="serviceprincipals", ip="192.0.2.50",
                          target_application=target))
    return out


@pytest.mark.slow
def test_detection_started_after_the_command_applies_the_stored_exceptions(
        cli: Cli, config: Path, kafka_bootstrap: str, topic_factory: Callable[..., str],
        redis_url: str, redis_namespace: str, tmp_path: Path) -> None:
    records = sorted(workload() + rotations(),
                     key=lambda r: (r["time_generated"], r["request_id"]))
    plain_alerts: list[dict[str, Any]] = []
    run_embedded(records, on_alert=plain_alerts.append)

    def add(*args: str) -> str:
        code, out, err = cli(config, "add", "--reason", "test", "--author", "alice", *args)
        assert code == 0, err
        return out.split()[0]

    # Until 03:00 (event time) the pipeline's rotations are a planned change.
    rotation = add("--principal-id", PIPELINE, "--detector", "app_credential_added",
                   "--expires", "2026-01-01T03:00:00Z")
    # Would cover every signal of the attacker's app, but is removed before the run.
    removed = add("--app-id", APP)
    assert cli(config, "remove", removed, "--author", "bob")[0] == 0
    # Covers nothing: no event comes from this network.
    elsewhere = add("--network", "100.64.0.0/10", "--expires", "30d")

    topics = run_topics(topic_factory, topic_factory(3, "activity"))
    publish(kafka_bootstrap, topics["activity"], records)
    run_config = write_config(tmp_path / "run.yaml", kafka_bootstrap, redis_url,
                              redis_namespace, topics)
    done = run_bounded(run_config)
    assert f"events={len(records)}" in done.stderr
    alerts = [alert_from_avro(m.value()) for m in read_all(kafka_bootstrap, topics["alerts"])]
    signals = [signal_from_avro(m.value()) for m in read_all(kafka_bootstrap, topics["signals"])]

    finals = sorted((s for s in signals if s["final"] and s["principal_id"] == PIPELINE),
                    key=lambda s: s["window_start"])
    assert [s["detector"] for s in finals] == ["app_credential_added"] * 6
    assert [s["suppressed_by"] for s in finals] == [[rotation]] * 3 + [[]] * 3  # kept, marked
    assert all(s["suppressed_by"] == [] for s in signals if s["principal_id"] != PIPELINE)
    assert {x for s in signals for x in s["suppressed_by"]} == {rotation}  # not removed/elsewhere
    assert elsewhere not in {x for a in alerts for x in a["suppressed_by"]}

    pipeline = sorted((a for a in alerts if a["principal_id"] == PIPELINE),
                      key=lambda a: a["revision"])
    assert len({a["alert_id"] for a in pipeline}) == 1
    # Suppressed while it rests on covered signals only, open from the first one after 03:00.
    statuses = [a["status"] for a in pipeline]
    first_open = statuses.index("open")
    assert statuses == ["suppressed"] * first_open + ["open"] * (len(statuses) - first_open)
    assert first_open >= 3 and pipeline[-1]["suppressed_by"] == [rotation]
    assert pipeline[-1]["final"] and pipeline[-1]["revision"] == 12

    # The attacker's alert is exactly the one a run without any exception makes.
    mine = [a for a in alerts if a["principal_id"] == ATTACKER]
    theirs = [a for a in plain_alerts if a["principal_id"] == ATTACKER]
    assert [alert_to_avro(a) for a in mine] == [alert_to_avro(a) for a in theirs]
    assert all(a["status"] == "open" for a in plain_alerts)

    # The embedded flow on the same Redis reads the same exceptions: the same alert versions.
    store = RedisStore.from_config(load_config(str(run_config), env={}).redis)
    embedded: list[dict[str, Any]] = []
    run_embedded(records, store=store, on_alert=embedded.append)
    assert sorted(alert_to_avro(a) for a in embedded) == sorted(alert_to_avro(a) for a in alerts)


def test_running_detection_reads_stored_exceptions_at_start_and_keeps_them_when_redis_is_away(
        cli: Cli, config: Path, redis_url: str, redis_namespace: str) -> None:
    """``ExceptionRefresher`` (the enrichment step calls it before each batch): the first call
    reads Redis, the next ones within ``EXCEPTIONS_REFRESH`` seconds do not; with Redis away
    the exceptions in force stay as they are."""
    from dataflows.detect import EXCEPTIONS_REFRESH, ExceptionRefresher, StoreHolder
    from graphsentry.config import config_from_dict
    from graphsentry.engine import DetectionEngine
    from graphsentry.engine_config import configured_exceptions

    settings = config_from_dict({"alerts": {"exceptions": [
        {"reason": "export", "app_id": APP}]}}, env={})
    first = cli(config, "add", "--reason", "r", "--author", "a", "--asn", "64500")[1].split()[0]

    def in_force(engine: DetectionEngine) -> list[str]:
        return sorted(e.id for e in engine.layer.exceptions.items)

    engine = DetectionEngine.from_config(settings)
    live = ExceptionRefresher(engine, StoreHolder(
        lambda: RedisStore(redis_url, key_prefix=redis_namespace)),
        configured_exceptions(settings))
    live()
    assert in_force(engine) == sorted(["config-1", first])
    second = cli(config, "add", "--reason", "r", "--author", "a", "--asn", "64501")[1].split()[0]
    live()  # within the refresh interval: not read again
    assert second not in in_force(engine) and EXCEPTIONS_REFRESH == 60.0

    # Redis away: what was read last stays in force (not only the configured ones).
    away = DetectionEngine.from_config(settings)
    ExceptionRefresher(away, StoreHolder(
        lambda: RedisStore(redis_url, key_prefix=redis_namespace)),
        configured_exceptions(settings))()
    assert in_force(away) == sorted(["config-1", first, second])
    ExceptionRefresher(away, StoreHolder(lambda: RedisStore("redis://127.0.0.1:1/0")),
                       configured_exceptions(settings))()
    assert in_force(away) == sorted(["config-1", first, second])
