"""``graphsentry topics create|check``: provision and check the configured Kafka topics.

Every topic of ``kafka.topics`` — ``raw``, ``activity``, ``dlq``, ``signals``, ``late``,
``alerts``, ``alerts_json`` and ``alerts_ocsf`` when set — has a recommended shape
(:data:`SHAPES`): partitions, ``cleanup.policy`` and retention. The alert topics are
log-compacted: every version of an alert is keyed by its ``alert_id``, so compaction keeps the
latest revision of every alert for as long as the topic exists. The others delete by time;
``graph.activity.v1`` messages carry event time, so its retention counts from
``time_generated``.

* ``create`` creates the topics that do not exist (idempotent: existing topics are never
  changed, only checked); ``--dry-run`` has the broker validate the creations without making
  them. A raw topic read from another cluster (``kafka.consumer`` has its own
  ``bootstrap.servers``, e.g. an Event Hub) is not managed here.
* ``check`` changes nothing and reports what is missing or misconfigured.

Exit status: 0 when every topic exists (or, with ``--dry-run``, would be created) with the
right cleanup policy; 1 otherwise; 2 when the cluster cannot be reached.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graphsentry.errors import GraphsentryError, redact

if TYPE_CHECKING:
    from graphsentry.config import Config

HELP = "create the configured Kafka topics (alert topics log-compacted) or check them"
DAY_MS = 86_400_000
ADMIN_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Shape:
    """The recommended shape of one topic role."""

    partitions: int
    config: dict[str, str]
    purpose: str


def _delete(days: int) -> dict[str, str]:
    return {"cleanup.policy": "delete", "retention.ms": str(days * DAY_MS)}


COMPACT = {"cleanup.policy": "compact"}
SHAPES: dict[str, Shape] = {
    "raw": Shape(8, _delete(7), "raw Graph activity logs (Event Hub export) for the bridge"),
    "activity": Shape(8, _delete(30), "normalized activity (Avro), the detection input: "
                      "partitions bound the detection processes reading in parallel"),
    "dlq": Shape(2, _delete(30), "dead letters"),
    "signals": Shape(4, _delete(30), "detector signals (Avro)"),
    "late": Shape(2, _delete(30), "events later than the allowed lateness"),
    "alerts": Shape(4, COMPACT, "alerts (Avro), every version keyed by alert_id"),
    "alerts_json": Shape(4, COMPACT, "alerts (JSON), every version keyed by alert_id"),
    "alerts_ocsf": Shape(4, COMPACT, "OCSF Detection Findings, keyed by alert_id"),
}


@dataclass(frozen=True)
class TopicPlan:
    """One configured topic and the shape it should have."""

    role: str
    name: str
    partitions: int
    config: dict[str, str]

    @property
    def compacted(self) -> bool:
        return self.config["cleanup.policy"] == "compact"

    def describe(self) -> str:
        settings = ", ".join(f"{k}={v}" for k, v in self.config.items())
        return f"{self.partitions} partitions, {settings}"


@dataclass
class Plan:
    topics: list[TopicPlan]
    skipped: dict[str, str] = field(default_factory=dict)
    """role → why it is not managed (a raw topic on another cluster)."""


def plan(config: Config, partitions: int | None = None) -> Plan:
    """The topics of ``config`` to provision, in ``Topics`` field order; ``partitions``
    overrides the count of the raw and activity topics."""
    kafka = config.kafka
    out = Plan([])
    consumer_cluster = str(kafka.consumer.get("bootstrap.servers", kafka.bootstrap))
    for role, name in kafka.topics.model_dump().items():
        if not name:
            continue
        if role == "raw" and consumer_cluster != kafka.bootstrap:
            out.skipped[role] = (f"{name} is read from another cluster "
                                 f"({redact(consumer_cluster)}): not managed here")
            continue
        shape = SHAPES[role]
        count = partitions if partitions and role in ("raw", "activity") else shape.partitions
        out.topics.append(TopicPlan(role, name, count, dict(shape.config)))
    return out


@dataclass
class Existing:
    """What the cluster says about one topic."""

    partitions: int
    config: dict[str, str]
    replication: int


def problems(want: TopicPlan, have: Existing) -> tuple[list[str], list[str]]:
    """``(problems, notes)`` of an existing topic: a wrong cleanup policy is a problem (a
    compacted activity topic loses records; an alert topic that deletes loses alerts); fewer
    partitions or another retention are notes (the operator's choice)."""
    found, notes = [], []
    policy = set(have.config.get("cleanup.policy", "delete").split(","))
    if want.compacted and "compact" not in policy:
        found.append(f"cleanup.policy is {have.config.get('cleanup.policy')}, must be compact "
                     "(every alert version is keyed by alert_id; compaction keeps the latest)")
    elif not want.compacted and "compact" in policy:
        found.append(f"cleanup.policy is {have.config.get('cleanup.policy')}, must be delete "
                     "(compaction would drop records that share a key)")
    elif want.compacted and "delete" in policy:
        notes.append("cleanup.policy also deletes: alerts older than retention.ms go")
    if have.partitions < want.partitions:
        notes.append(f"{have.partitions} partition(s), {want.partitions} recommended")
    retention = want.config.get("retention.ms")
    if retention is not None and have.config.get("retention.ms") != retention:
        notes.append(f"retention.ms is {have.config.get('retention.ms')} "
                     f"(recommended {retention})")
    return found, notes


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="create every configured topic that does not exist "
                            "(existing ones are checked, never changed)")
    create.add_argument("--dry-run", action="store_true",
                        help="have the broker validate the creations; create nothing")
    create.add_argument("--partitions", type=int, metavar="N",
                        help="partitions of the raw and activity topics (default 8; at least "
                        "the number of processes that read them)")
    create.add_argument("--replication-factor", type=int, metavar="N",
                        help="replicas of each new topic (default: 3, or the number of "
                        "brokers when fewer)")
    check = sub.add_parser("check", help="report missing or misconfigured topics (exit 1)")
    for command in (create, check):
        command.add_argument("--config", help="YAML configuration (default: "
                             "$GRAPHSENTRY_CONFIG or built-in defaults)")
        command.add_argument("--bootstrap", help="Kafka bootstrap servers (default: the "
                             "config's)")


class _Cluster:
    """An admin client on the output cluster (``kafka.bootstrap``, producer settings)."""

    def __init__(self, config: Config) -> None:
        from confluent_kafka.admin import AdminClient

        from dataflows.kafka_client import ClientHealth, client_config

        kafka = config.kafka
        self.where = redact(kafka.bootstrap)
        self.health = ClientHealth("admin")
        settings = {"bootstrap.servers": kafka.bootstrap,
                    **{str(k): v for k, v in kafka.producer.items()}}
        self.admin = AdminClient(client_config(settings, self.health, silent=True))

    def metadata(self) -> Any:
        from confluent_kafka import KafkaException

        from dataflows.kafka_client import METADATA_TIMEOUT_S

        try:
            metadata = self.admin.list_topics(timeout=METADATA_TIMEOUT_S)
        except KafkaException as exc:
            self.health.raise_if_failed(self.where)
            reason = exc.args[0].str() if exc.args else str(exc)
            raise GraphsentryError(f"cannot reach Kafka at {self.where}: {reason}") from None
        self.health.raise_if_failed(self.where)
        return metadata

    def existing(self, names: list[str]) -> dict[str, Existing]:
        from confluent_kafka.admin import ConfigResource, ResourceType  # type: ignore[attr-defined]

        metadata = self.metadata()
        present = {n: metadata.topics[n] for n in names
                   if n in metadata.topics and metadata.topics[n].error is None}
        if not present:
            return {}
        futures = self.admin.describe_configs(
            [ConfigResource(ResourceType.TOPIC, name) for name in present],
            request_timeout=ADMIN_TIMEOUT_S)
        out = {}
        for resource, future in futures.items():
            entries = future.result(timeout=ADMIN_TIMEOUT_S)
            topic = present[resource.name]
            replicas = min((len(p.replicas) for p in topic.partitions.values()), default=0)
            out[resource.name] = Existing(len(topic.partitions),
                                          {k: str(e.value) for k, e in entries.items()},
                                          replicas)
        return out

    def create(self, topics: list[TopicPlan], replication: int,
               validate_only: bool) -> dict[str, str | None]:
        """name → None (created, or would be) or the broker's error."""
        from confluent_kafka import KafkaError, KafkaException
        from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

        if not topics:
            return {}
        futures = self.admin.create_topics(
            [NewTopic(t.name, num_partitions=t.partitions, replication_factor=replication,
                      config=t.config) for t in topics],
            operation_timeout=ADMIN_TIMEOUT_S, request_timeout=ADMIN_TIMEOUT_S,
            validate_only=validate_only)
        out: dict[str, str | None] = {}
        for name, future in futures.items():
            try:
                future.result(timeout=ADMIN_TIMEOUT_S)
                out[name] = None
            except KafkaException as exc:
                error = exc.args[0]
                out[name] = (None if error.code() == KafkaError.TOPIC_ALREADY_EXISTS
                             else f"{error.name()}: {error.str()}")
        return out


def _say(line: str) -> None:
    print(line, flush=True)


def _report_existing(want: TopicPlan, have: Existing, bootstrap: str) -> bool:
    """Print one existing topic's state; True when it is acceptable."""
    found, notes = problems(want, have)
    label = f"{want.name} ({want.role})"
    shown = (f"{have.partitions} partitions, cleanup.policy="
             f"{have.config.get('cleanup.policy')}")
    if found:
        policy = "compact" if want.compacted else "delete"
        _say(f"{label}: misconfigured: {'; '.join(found)}. Fix: kafka-configs.sh "
             f"--bootstrap-server {bootstrap} --alter --entity-type topics --entity-name "
             f"{want.name} --add-config cleanup.policy={policy}")
        return False
    _say(f"{label}: ok ({shown}{'; ' + '; '.join(notes) if notes else ''})")
    return True


def run(args: argparse.Namespace) -> int:
    from graphsentry.config import load_config

    config = load_config(args.config)
    if args.bootstrap:
        config = config.replace("kafka", bootstrap=args.bootstrap)
    partitions = getattr(args, "partitions", None)
    if partitions is not None and partitions < 1:
        raise GraphsentryError(f"--partitions must be at least 1, got {partitions}")
    wanted = plan(config, partitions)
    cluster = _Cluster(config)
    have = cluster.existing([t.name for t in wanted.topics])
    bootstrap = redact(config.kafka.bootstrap)
    for role, why in wanted.skipped.items():
        _say(f"({role}): {why}")
    healthy = True
    for topic in wanted.topics:
        if topic.name in have:
            healthy = _report_existing(topic, have[topic.name], bootstrap) and healthy
    missing = [t for t in wanted.topics if t.name not in have]
    if args.action == "check":
        for topic in missing:
            _say(f"{topic.name} ({topic.role}): missing (graphsentry topics create makes it: "
                 f"{topic.describe()})")
        return 0 if healthy and not missing else 1
    if args.replication_factor is not None and args.replication_factor < 1:
        raise GraphsentryError("--replication-factor must be at least 1, got "
                               f"{args.replication_factor}")
    replication = args.replication_factor or max(1, min(3, len(cluster.metadata().brokers)))
    results = cluster.create(missing, replication, validate_only=args.dry_run)
    for topic in missing:
        error = results.get(topic.name)
        verb = "would be created" if args.dry_run else "created"
        if error is None:
            _say(f"{topic.name} ({topic.role}): {verb}: {topic.describe()}, replication "
                 f"factor {replication}")
        else:
            healthy = False
            print(f"graphsentry topics: {topic.name} ({topic.role}): not created: {error}",
                  file=sys.stderr)
    return 0 if healthy else 1
