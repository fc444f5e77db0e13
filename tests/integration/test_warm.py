"""``graphsentry warm`` on the real Redis (and broker): profiles learned from history, from files
and from a time range of the activity topic, stored as versions of ``prof:{tenant}/{principal}``;
a detection run on later records that reads them starts those principals as established.

The history: a service principal (``WORKER``) calling Graph every 30 minutes from one network
for four days (2026-03-01 to 03-04), and one (``NEWCOMER``) seen on the last of those days
only. On 2026-03-05 both call from their usual network, then from a network new to them.
``new_origin`` judges only established principals (``learning.min_days`` 3, ``min_age_seconds``
2 days): without warm both are new on the 5th and nothing fires; after warm ``WORKER`` is
established and its new network is a signal, while ``NEWCOMER``, one day old, is still
learning."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from confluent_kafka import Producer

from detectors.profile import Profile
from graphsentry.alerts import alert_to_json, signal_from_avro
from graphsentry.avro import encode_activity, message_key
from graphsentry.cli import main
from graphsentry.detection import DetectStats, run_embedded
from graphsentry.enrichment.redis_store import RedisStore
from graphsentry.enrichment.store import version_field
from graphsentry.ingest import iter_records
from tests.ingest.factory import TENANT, eh_record, message
from tests.integration.bounded import (
    graphsentry,
    publish,
    run_bounded,
    run_topics,
    write_config,
)
from tests.integration.kafka_util import read_all

WORKER = "5e5e5e5e-0000-4000-8000-000000000001"
NEWCOMER = "5e5e5e5e-0000-4000-8000-000000000002"
APP = "5e5e5e5e-0000-4000-8000-0000000000a1"
USUAL, NEW = "203.0.113.10", "192.0.2.99"
LIVE_START = "2026-03-05T00:00:00Z"
HISTORY_START = "2026-03-01T00:00:00Z"
DAY = 86_400.0


def calls(principal: str, first: str, count: int, every: float, ip: str,
          tag: str) -> list[dict[str, Any]]:
    """``count`` raw Event Hub records of ``principal``, ``every`` seconds from ``first``."""
    start = datetime.fromisoformat(first.replace("Z", "+00:00"))
    out = []
    for i in range(count):
        ts = start + timedelta(seconds=i * every)
        rid = f"{tag}-{i:04d}-{principal[-4:]}"
        out.append(eh_record(timeGenerated=ts.strftime("%Y-%m-%dT%H:%M:%S.0000000Z"),
                             requestId=rid, operationId=rid, ipAddress=ip,
                             servicePrincipalId=principal, appId=APP))
    return out


def history() -> list[dict[str, Any]]:
    return (calls(WORKER, HISTORY_START, 4 * 48, 1800, USUAL, "h")
            + calls(NEWCOMER, "2026-03-04T00:00:00Z", 48, 1800, USUAL, "h"))


def live() -> list[dict[str, Any]]:
    return [*(r for p in (WORKER, NEWCOMER)
              for r in calls(p, "2026-03-05T08:00:00Z", 4, 1800, USUAL, "l")
              + calls(p, "2026-03-05T10:00:00Z", 6, 300, NEW, "n"))]


def write_log(path: Path, records: list[dict[str, Any]]) -> Path:
    """Event Hub messages of 50 records, one per line, in time order."""
    records = sorted(records, key=lambda r: r["properties"]["timeGenerated"])
    with path.open("w") as out:
        for i in range(0, len(records), 50):
            out.write(json.dumps(message(*records[i:i + 50])) + "\n")
    return path


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp()


def profiles(client: redis.Redis, namespace: str) -> dict[str, dict[str, str]]:
    """principal id → {version field: stored JSON} under ``namespace``."""
    out = {}
    for key in client.scan_iter(match=f"{namespace}prof:*"):
        principal = key.decode().removeprefix(f"{namespace}prof:{TENANT}/")
        out[principal] = {f.decode(): v.decode() for f, v in client.hgetall(key).items()}
    return out


def detect(records: list[dict[str, Any]], redis_url: str, namespace: str
           ) -> tuple[DetectStats, list[dict[str, Any]]]:
    signals: list[dict[str, Any]] = []
    stats = run_embedded(records, store=RedisStore(redis_url, key_prefix=namespace),
                         on_signal=signals.append)
    return stats, signals


SUMMARY = re.compile(r"^graphsentry warm: (?P<profiles>\d+) profiles stored in Redis; "
                     r"(?P<events>\d+) events \([\d,]+/s\); detection: (?P<late>\d+) too late, "
                     r"(?P<duplicates>\d+) duplicates, (?P<rejects>\d+) rejected by the engine; "
                     r"(?P<signals>\d+) signal emissions \(\d+ suppressed\), (?P<alerts>\d+) "
                     r"alerts \(\d+ versions\), not published; in (?P<elapsed>\d+\.\d)s$",
                     re.MULTILINE)


def counts(stderr: str) -> dict[str, int]:
    """The detection line's counts (profiles, events, late, duplicates, rejects, …)."""
    summary = SUMMARY.search(stderr)
    assert summary is not None, stderr
    return {name: int(value) for name, value in summary.groupdict().items()
            if name != "elapsed"}


@pytest.mark.slow
def test_warm_from_files_stores_versioned_profiles_and_detection_starts_established(
        tmp_path: Path, redis_url: str, redis_namespace: str,
        redis_client: redis.Redis) -> None:
    hist = history()
    logs = write_log(tmp_path / "history.jsonl", hist)
    future = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
    with logs.open("a") as out:  # bad lines are counted by reason, never crash or vanish
        out.write('{"records": [{"time": "yesterday"}]}\nnot json\n')
        out.write(json.dumps(message(hist[0])) + "\n")  # delivered twice: dropped by ingest
        out.write(json.dumps(message(eh_record(timeGenerated=future, requestId="f-1",
                                               operationId="f-1"))) + "\n")
    config = write_config(tmp_path / "warm.yaml", "127.0.0.1:1", redis_url,
                          f"{redis_namespace}warm:")
    started = time.monotonic()
    done = graphsentry("warm", "--config", str(config), "--progress", str(logs), timeout=120)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    # Each stage its own counts: ingest's rejects (the configured future skew applies there, as
    # in detect) and duplicate deliveries, none of which reached the engine, which rejected none.
    assert (done.stderr.count("\ningest: 3 rejected (bad_timestamp 1, future_timestamp 1, "
                              "invalid_json 1), 1 duplicate deliveries dropped\n") == 1)
    assert counts(done.stderr) == {"profiles": 2, "events": len(hist), "late": 0,
                                   "duplicates": 0, "rejects": 0, "signals": 0, "alerts": 0}
    assert "rejected by the engine:" not in done.stderr
    summary = SUMMARY.search(done.stderr)
    assert summary is not None and float(summary["elapsed"]) <= elapsed
    # The progress line (text mode turns its \r into \n) ends before the summary, with the
    # records read and a time measured from the start of this run.
    progress = re.findall(r"\x1b\[2Kwarm: records read: (\d+) +(\d+\.\d)s\n", done.stderr)
    assert progress and int(progress[-1][0]) == len(hist)
    assert float(progress[-1][1]) <= elapsed

    stored = profiles(redis_client, f"{redis_namespace}warm:")
    for principal, days in ((WORKER, 4), (NEWCOMER, 1)):
        ts = sorted(epoch(r["properties"]["timeGenerated"]) for r in hist
                    if r["properties"]["servicePrincipalId"] == principal)
        [(field, text)] = stored[principal].items()  # one version, keyed by its newest event
        assert field == version_field(ts[-1]) == f"{ts[-1]:017.6f}"
        profile = Profile.from_dict(json.loads(text))
        assert (profile.first_seen, profile.last_seen, profile.events) == (ts[0], ts[-1],
                                                                           48 * days)
        assert profile.networks == {"203.0.113.0/24": ts[0]}
        assert profile.apps == {APP: ts[0]}
        ttl = redis_client.ttl(f"{redis_namespace}warm:prof:{TENANT}/{principal}")
        assert 29 * DAY < ttl <= 30 * DAY  # redis.history_ttl_days
    # Warming the same history again writes the same version, not a second one.
    again = graphsentry("warm", "--config", str(config), str(logs), timeout=120)
    assert again.returncode == 0, again.stderr
    assert profiles(redis_client, f"{redis_namespace}warm:") == stored

    records = list(iter_records([str(write_log(tmp_path / "live.jsonl", live()))]))
    cold, cold_signals = detect(records, redis_url, f"{redis_namespace}cold:")
    warm, warm_signals = detect(records, redis_url, f"{redis_namespace}warm:")
    assert (cold.events, warm.events) == (len(records), len(records)) == (20, 20)
    assert (cold.profiles_adopted, warm.profiles_adopted) == (0, 2)
    assert cold_signals == []  # both principals are in their learning period
    finals = [s for s in warm_signals if s["final"]]
    assert [(s["detector"], s["principal_id"]) for s in finals] == [("new_origin", WORKER)]
    [origin] = finals
    evidence = json.loads(origin["evidence"]["evidence_json"])
    assert (evidence["ip"], evidence["known_networks_sample"]) == (NEW, ["203.0.113.0/24"])
    assert evidence["profile_first_seen"] == "2026-03-01T00:00:00+00:00"  # from the warm
    assert origin["window_start"] == datetime(2026, 3, 5, 10, tzinfo=UTC)
    assert origin["suppressed_by"] == []


@pytest.mark.slow
def test_warm_from_a_topic_range_equals_warm_from_files_and_feeds_a_kafka_run(
        tmp_path: Path, kafka_bootstrap: str, topic_factory: Callable[..., str],
        redis_url: str, redis_namespace: str, redis_client: redis.Redis) -> None:
    hist_path = write_log(tmp_path / "history.jsonl", history())
    live_path = write_log(tmp_path / "live.jsonl", live())
    hist_records = list(iter_records([str(hist_path)]))
    live_records = list(iter_records([str(live_path)]))
    archive = topic_factory(3, "archive")  # the activity topic: history, then live
    publish(kafka_bootstrap, archive, hist_records)
    # On the fourth day, two messages the detection engine rejects: one that is no Avro, and
    # one of WORKER's records dated a day ahead of the wall clock.
    ahead = {**next(r for r in hist_records if r["principal_id"] == WORKER),
             "request_id": "ahead-1", "time_generated": datetime.now(UTC) + timedelta(days=1)}
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    fourth_day = int(epoch("2026-03-04T12:00:00Z") * 1000)
    producer.produce(archive, key=message_key(ahead), value=b"not avro", timestamp=fourth_day)
    producer.produce(archive, key=message_key(ahead), value=encode_activity(ahead),
                     timestamp=fourth_day)
    assert producer.flush(30) == 0
    publish(kafka_bootstrap, archive, live_records)

    files = write_config(tmp_path / "files.yaml", kafka_bootstrap, redis_url,
                         f"{redis_namespace}files:")
    assert graphsentry("warm", "--config", str(files), str(hist_path)).returncode == 0
    topic = write_config(tmp_path / "topic.yaml", kafka_bootstrap, redis_url,
                         f"{redis_namespace}topic:")
    # First three days, then all four: two versions of WORKER's profile.
    early = graphsentry("warm", "--config", str(topic), "--topic", archive,
                        "--from", HISTORY_START, "--to", "2026-03-04T00:00:00Z")
    assert early.returncode == 0, early.stderr
    assert (counts(early.stderr)["events"], counts(early.stderr)["profiles"]) == (3 * 48, 1)
    started = time.monotonic()
    full = graphsentry("warm", "--config", str(topic), "--topic", archive, "--from",
                       HISTORY_START, "--to", LIVE_START, "--progress")
    elapsed = time.monotonic() - started
    assert full.returncode == 0, full.stderr
    # A topic's records were normalized by the bridge: no ingest line, and the engine's
    # rejects are counted and named by the detection stage alone.
    assert {k: v for k, v in counts(full.stderr).items() if k not in ("signals", "alerts")} == {
        "profiles": 2, "events": len(hist_records), "late": 0, "duplicates": 0, "rejects": 2}
    assert "\ndetection: rejected by the engine: bad_avro 1, future_timestamp 1\n" in full.stderr
    assert "\ningest:" not in full.stderr
    read = str(len(hist_records) + 2)
    progress = re.findall(r"\x1b\[2Kwarm: (\d+)/(\d+) \( *(\d+\.\d)%\) +(\d+\.\d)s\n",
                          full.stderr)
    assert progress and progress[-1][:3] == (read, read, "100.0")
    assert float(progress[-1][3]) <= elapsed

    by_files = profiles(redis_client, f"{redis_namespace}files:")
    by_topic = profiles(redis_client, f"{redis_namespace}topic:")
    third_day_end = epoch("2026-03-03T23:30:00Z")
    assert sorted(by_topic[WORKER]) == sorted([version_field(third_day_end),
                                               *by_files[WORKER]])
    for principal, versions in by_files.items():  # the same history, the same profile
        for field, text in versions.items():
            assert by_topic[principal][field] == text

    # Live detection on the deployment's topic reads the newest version older than each
    # principal's first live event: the same signals as the embedded run after file warm.
    _, expected = detect(live_records, redis_url, f"{redis_namespace}files:")
    live_topic = topic_factory(3, "live")
    publish(kafka_bootstrap, live_topic, live_records)
    topics = run_topics(topic_factory, live_topic)
    done = run_bounded(write_config(tmp_path / "run.yaml", kafka_bootstrap, redis_url,
                                    f"{redis_namespace}topic:", topics))
    assert f"events={len(live_records)}" in done.stderr
    got = [signal_from_avro(m.value()) for m in read_all(kafka_bootstrap, topics["signals"])]
    finals = sorted(alert_to_json(s) for s in got if s["final"])
    assert finals == sorted(alert_to_json(s) for s in expected if s["final"])
    assert [json.loads(s)["detector"] for s in finals] == ["new_origin"]


@pytest.mark.parametrize(("args", "message"), [
    ((), "give log files or --topic with --from/--to"),
    (("--topic", "graph.activity.v1", "--from=-1d"), "--topic needs --from and --to"),
    (("x.jsonl", "--from=-1d"), "--from/--to apply to --topic only"),
    (("--topic", "t", "--from", "2026-03-02T00:00:00Z", "--to", "2026-03-01T00:00:00Z"),
     "--from 2026-03-02T00:00:00+00:00 is not before --to 2026-03-01T00:00:00+00:00"),
    (("--topic", "t", "--from", "yesterday", "--to", "now"), "bad time 'yesterday'"),
])
def test_warm_refuses_wrong_arguments(tmp_path: Path, redis_url: str, redis_namespace: str,
                                      monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str],
                                      args: tuple[str, ...], message: str) -> None:
    for name in ("REDIS_URL", "KAFKA_BOOTSTRAP", "GRAPHSENTRY_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    config = write_config(tmp_path / "warm.yaml", "127.0.0.1:1", redis_url, redis_namespace)
    assert main(["warm", "--config", str(config), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"graphsentry warm: error: {message}"), err


@pytest.mark.slow
def test_warm_needs_redis_and_an_existing_topic(
        tmp_path: Path, kafka_bootstrap: str, redis_url: str, redis_namespace: str,
        redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("REDIS_URL", "KAFKA_BOOTSTRAP", "GRAPHSENTRY_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    logs = write_log(tmp_path / "history.jsonl", history())
    none = write_config(tmp_path / "none.yaml", kafka_bootstrap, None, redis_namespace)
    assert main(["warm", "--config", str(none), str(logs)]) == 2
    assert capsys.readouterr().err == ("graphsentry warm: error: warm stores profiles in "
                                       "Redis, and redis.url is null\n")
    down = write_config(tmp_path / "down.yaml", kafka_bootstrap,
                        "redis://:hunter2@127.0.0.1:1/0", redis_namespace)
    assert main(["warm", "--config", str(down), str(logs)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("graphsentry warm: error: cannot reach Redis at "
                          "redis://:***@127.0.0.1:1/0") and "hunter2" not in err
    good = write_config(tmp_path / "good.yaml", kafka_bootstrap, redis_url, redis_namespace)
    missing = f"test.missing.{time.time_ns()}"
    assert main(["warm", "--config", str(good), "--topic", missing, "--from", HISTORY_START,
                 "--to", LIVE_START]) == 2
    assert capsys.readouterr().err.startswith(
        f"graphsentry warm: error: topic '{missing}' does not exist")
    assert main(["warm", "--config", str(good), str(tmp_path / "nowhere.jsonl")]) == 2
    assert "nowhere.jsonl" in capsys.readouterr().err
    assert profiles(redis_client, redis_namespace) == {}
