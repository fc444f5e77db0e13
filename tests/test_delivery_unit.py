"""Pure logic of delivery and operability, without Kafka or Redis: secret masking, the
classification of client errors and failures, the restart policy, dead letters of unreadable
activity messages."""

from __future__ import annotations

import errno
import ssl
from typing import Any

import pytest
import redis
from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.errors import BytewaxRuntimeError
from confluent_kafka import KafkaError

from dataflows.kafka_client import ClientHealth, KafkaClientError, config_problem
from dataflows.kafka_io import DeliveryStats, decode_message
from graphsentry import cluster
from graphsentry.cluster import ClusterFailed, failure_cause, supervise
from graphsentry.enrichment.redis_store import _protocol_mismatch
from graphsentry.errors import DeliveryError, GraphsentryError, redact, redact_config


@pytest.mark.parametrize(("text", "masked"), [
    ("cannot reach Redis at redis://:hunter2@10.0.0.1:6379/0: refused",
     "cannot reach Redis at redis://:***@10.0.0.1:6379/0: refused"),
    ("rediss://default:p%40ss@cache.example:6380/1", "rediss://default:***@cache.example:6380/1"),
    ("redis://hunter2@cache/0", "redis://***@cache/0"),
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=a+b/c=",
     "Endpoint=sb://***"),
    ("sasl.password=Endpoint=sb://ns/;SharedAccessKey=k", "sasl.password=***"),
    ("sasl.password: hunter2, sasl.username: $ConnectionString",
     "sasl.password: ***, sasl.username: $ConnectionString"),
    ("https://acct.blob.core.windows.net/c?sv=2024-01&sig=AbC%2F&se=1",
     "https://acct.blob.core.windows.net/c?sv=2024-01&sig=***&se=1"),
    ("DefaultEndpointsProtocol=https;AccountName=a;AccountKey=Zm9v==;EndpointSuffix=x",
     "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=***;EndpointSuffix=x"),
    ('{"client_secret": "s3cr3t", "token_issued_at": "2026-01-01"}',
     '{"client_secret": "***", "token_issued_at": "2026-01-01"}'),
    ("the access token expired at 10:00", "the access token expired at 10:00"),
])
def test_redact_masks_every_kind_of_secret(text: str, masked: str) -> None:
    assert redact(text) == masked
    assert redact(masked) == masked  # idempotent


def test_redact_config_masks_secret_keys_at_any_depth() -> None:
    config = {"kafka": {"consumer": {"sasl.password": "Endpoint=sb://x/;SharedAccessKey=k",
                                     "sasl.username": "$ConnectionString",
                                     "ssl.key.password": "pw", "error_cb": print,
                                     "bootstrap.servers": "ns.servicebus.windows.net:9093"}},
              "redis": {"url": "redis://:pw@cache:6379/0"}, "list": ["password=x"]}
    assert redact_config(config) == {
        "kafka": {"consumer": {"sasl.password": "***", "sasl.username": "$ConnectionString",
                               "ssl.key.password": "***", "error_cb": "<print>",
                               "bootstrap.servers": "ns.servicebus.windows.net:9093"}},
        "redis": {"url": "redis://:***@cache:6379/0"}, "list": ["password=***"]}


def test_every_graphsentry_error_is_masked() -> None:
    for kind in (GraphsentryError, DeliveryError, ClusterFailed, KafkaClientError):
        assert str(kind("at redis://u:hunter2@h/0")) == "at redis://u:***@h/0"


@pytest.mark.parametrize(("error", "problem"), [
    (KafkaError(KafkaError._AUTHENTICATION, "SASL authentication error: Authentication failed"),
     "authentication failed"),
    (KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "denied"), "not authorized"),
    (KafkaError(KafkaError._TRANSPORT, "b/bootstrap: SSL handshake failed: connecting to a "
                "PLAINTEXT broker listener?"), "TLS handshake failed"),
    (KafkaError(KafkaError._FATAL, "producer fenced", fatal=True), "fatal error"),
    (KafkaError(KafkaError._TRANSPORT, "Connect to 127.0.0.1:9092 failed: Connection refused"),
     None),
    (KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"), None),
    (KafkaError(KafkaError._MSG_TIMED_OUT), None),
])
def test_configuration_problems_are_told_from_passing_faults(error: KafkaError,
                                                             problem: str | None) -> None:
    found = config_problem(error)
    assert (found is None) if problem is None else (found or "").startswith(problem)
    health = ClientHealth("input")
    health.on_error(error)
    if problem is None:
        health.raise_if_failed()
    else:
        with pytest.raises(KafkaClientError, match=f"Kafka input at b:9092: {problem}"):
            health.raise_if_failed("b:9092")


def test_failure_cause_finds_the_python_root_of_a_bytewax_failure() -> None:
    def chained(root: BaseException) -> BaseException:
        try:
            try:
                raise root
            except BaseException as exc:
                raise BytewaxRuntimeError("error writing output batch") from exc
        except BaseException as outer:
            return outer

    assert failure_cause(chained(DeliveryError("Kafka did not acknowledge 3 message(s)"))) == (
        "Kafka did not acknowledge 3 message(s)", False)
    assert failure_cause(chained(KeyError("alert_id"))) == (
        "internal error: KeyError: 'alert_id'", False)
    assert failure_cause(BytewaxRuntimeError("Send thread panic")) == (
        "lost the connection to another process of the cluster", True)


def test_supervise_restarts_with_backoff_only_with_a_snapshot_to_resume_from() -> None:
    calls: list[int] = []
    slept: list[float] = []
    said: list[str] = []

    def flaky(attempt: int) -> str:
        calls.append(attempt)
        if attempt < 3:
            raise ClusterFailed(f"broker away ({attempt})")
        return "done"

    assert supervise(flaky, name="run", restart=True, say=said.append,
                     sleep=slept.append) == ("done", 2)
    assert calls == [1, 2, 3] and slept == [2.0, 4.0]
    assert said == ["graphsentry run: broker away (1); restarting from the last snapshot in 2s "
                    "(restart 1 of 5)",
                    "graphsentry run: broker away (2); restarting from the last snapshot in 4s "
                    "(restart 2 of 5)"]
    with pytest.raises(ClusterFailed, match=r"broker away \(1\)"):
        supervise(flaky, name="run", restart=False, say=said.append, sleep=slept.append)

    def always(_attempt: int) -> str:
        raise ClusterFailed("no luck")

    slept.clear()
    with pytest.raises(ClusterFailed, match=r"no luck \(gave up after 5 restarts\)"):
        supervise(always, name="run", restart=True, say=lambda _l: None, sleep=slept.append)
    assert slept == [2.0, 4.0, 8.0, 16.0, 32.0]


def test_exit_codes_follow_the_shell_convention() -> None:
    assert cluster.exit_code(2) == 130 and cluster.exit_code(15) == 143


def test_redis_protocol_mismatches_are_configuration_errors() -> None:
    def error_with_context(outer: Exception, inner: BaseException) -> Exception:
        try:
            try:
                raise inner
            except BaseException:
                raise outer from None
        except Exception as exc:
            exc.__context__ = inner
            return exc

    reset = error_with_context(redis.ConnectionError("Error while reading from h:6380"),
                               ConnectionResetError(errno.ECONNRESET, "reset by peer"))
    assert "is this a TLS port? (use rediss://)" in (_protocol_mismatch(reset, "redis://h") or "")
    handshake = error_with_context(redis.TimeoutError("Timeout connecting to server"),
                                   ssl.SSLError("handshake operation timed out"))
    assert "is this a plain-text port?" in (_protocol_mismatch(handshake, "rediss://h") or "")
    refused = error_with_context(redis.ConnectionError("Error 111 connecting"),
                                 ConnectionRefusedError(errno.ECONNREFUSED, "refused"))
    assert _protocol_mismatch(refused, "redis://h") is None


def source_message(value: bytes | None, key: bytes | None = b"tenant/app") -> Any:
    return KafkaSourceMessage(key=key, value=value, topic="graph.activity.v1", headers=[],
                              latency=None, offset=7, partition=2, timestamp=None)


def test_an_empty_activity_message_has_its_own_reason_and_dead_letters_keep_their_key() -> None:
    def decode(_value: bytes) -> dict[str, Any]:
        raise EOFError("never called for an empty value")

    empty = decode_message(source_message(b""), decode)["reject"]
    assert empty["reason"] == "empty_value: the message value is empty (0 bytes)"
    assert empty["key"] == b"tenant/app" and empty["source"] == "graph.activity.v1/2/7"
    tombstone = decode_message(source_message(None), decode)["reject"]
    assert tombstone["reason"].startswith("missing_value: tombstone")
    bad = decode_message(source_message(b"\xff\x00"), lambda _v: {}["x"])["reject"]
    assert bad["reason"].startswith("bad_avro: KeyError") and bad["key"] == b"tenant/app"


def test_delivery_stats_summary_counts_acknowledgements() -> None:
    stats = DeliveryStats()
    assert stats.summary() == ""
    stats.merge({"acknowledged": {"graph.alerts.v1": 3, "graph.alerts.json.v1": 3},
                 "refused": {"INVALID_TIMESTAMP": 1}, "retried": 2})
    assert stats.summary() == ("graph.alerts.json.v1 3, graph.alerts.v1 3, refused 1 "
                               "(INVALID_TIMESTAMP 1) -> dead letters, 2 produced again after "
                               "a failure")
