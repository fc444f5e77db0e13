"""Building blocks of the fault-injection cases: the simulated tenant split into phases, running
``graphsentry run``/``bridge`` as real processes (and killing them), reading what reached the
topics, and comparing a disturbed run with an undisturbed one."""

from __future__ import annotations

import json
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from confluent_kafka import Producer

from graphsentry.alerts import alert_from_avro
from graphsentry.avro import encode_activity, message_key, message_timestamp_ms
from tests.integration.faults.conftest import ROOT
from tests.integration.kafka_util import read_all

RUN_TIMEOUT = 180.0
LIVE: list[subprocess.Popen[str]] = []
"""Processes a case started; the suite kills whatever a failed case left running."""


def start(command: list[str]) -> subprocess.Popen[str]:
    """A long-running graphsentry command (stderr piped), remembered for clean-up."""
    process = subprocess.Popen(command, env=_env(), cwd=ROOT, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    LIVE.append(process)
    return process


def kill_leftovers() -> None:
    while LIVE:
        process = LIVE.pop()
        if process.poll() is None:
            process.kill()  # its workers die with it
            process.wait(timeout=30)
LONG_EPOCH_S = 600.0
"""Epoch of a run that is going to be killed: no snapshot is committed while it runs."""


# --- the workload ----------------------------------------------------------------------------

@dataclass
class Workload:
    """The simulated tenant (``graphsentry simulate``, seed 7, 20 users, the managed-identity
    token theft chain): raw Event Hub messages and the normalized records in arrival order."""

    raw: Path
    records: list[dict[str, Any]]
    attacker: str
    start_of_attack: int
    """Index of the attacker's first record (the request from a new network)."""

    def phases(self) -> list[list[dict[str, Any]]]:
        """Warm-up day and the attack's run-up | the attacker's first request, from a new
        network | the rest."""
        cut = self.start_of_attack
        return [self.records[:cut], self.records[cut:cut + 1], self.records[cut + 1:]]


def simulate(workdir: Path) -> Workload:
    from graphsentry.ingest import iter_records

    raw = workdir / "tenant.jsonl"
    subprocess.run([sys.executable, "-m", "graphsentry.cli", "simulate", "--users", "20",
                    "--days", "4", "--seed", "7", "--scenario", "mi_token_theft_chain",
                    "--out", str(raw)],
                   check=True, capture_output=True, timeout=RUN_TIMEOUT, cwd=ROOT)
    scenario = json.loads(Path(f"{raw}.labels.json").read_text())["scenarios"][0]
    attacker = scenario["principal_id"]
    begins = datetime.fromisoformat(scenario["start"][:26] + "+00:00")
    records = list(iter_records([str(raw)], dedup=False))
    start = next(i for i, r in enumerate(records)
                 if r["principal_id"] == attacker and r["time_generated"] >= begins)
    return Workload(raw, records, attacker, start)


def publish(bootstrap: str, topic: str, records: Sequence[dict[str, Any]],
            marker: str | None = None) -> None:
    """Records as Avro messages (one partition keeps their order), then, with ``marker``, an
    empty message keyed ``marker``: its ``empty_value`` dead letter says that the flow read
    everything before it."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for record in records:
        producer.produce(topic, key=message_key(record), value=encode_activity(record),
                         timestamp=message_timestamp_ms(record))
        producer.poll(0)
    if marker is not None:
        producer.produce(topic, key=marker.encode(), value=b"")
    assert producer.flush(30) == 0


# --- running graphsentry ---------------------------------------------------------------------

@dataclass
class Detection:
    """One detection deployment: its topics, Redis namespace, recovery directory, config."""

    bootstrap: str
    activity: str
    alerts: str
    alerts_json: str
    dlq: str
    signals: str
    late: str
    workdir: Path
    redis_url: str | None
    producer: dict[str, Any] = field(default_factory=dict)
    input_bootstrap: str | None = None
    prefix: str = field(default_factory=lambda: f"faults:{uuid.uuid4().hex[:10]}:")
    outputs: list[str] = field(default_factory=list)

    @property
    def recovery(self) -> Path:
        return self.workdir / "recovery"

    def config(self, epoch: float) -> Path:
        kafka: dict[str, Any] = {
            "bootstrap": self.input_bootstrap or self.bootstrap,
            "topics": {"activity": self.activity, "alerts": self.alerts,
                       "alerts_json": self.alerts_json, "dlq": self.dlq,
                       "signals": self.signals, "late": self.late}}
        producer = dict(self.producer)
        if self.input_bootstrap:
            producer["bootstrap.servers"] = self.bootstrap
        if producer:
            kafka["producer"] = producer
        data = {"kafka": kafka, "bytewax": {"epoch_seconds": epoch},
                "redis": {"url": self.redis_url, "key_prefix": self.prefix}}
        path = self.workdir / f"config-{epoch:g}.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    def command(self, epoch: float, *extra: str) -> list[str]:
        return [sys.executable, "-m", "graphsentry.cli", "run", "--config",
                str(self.config(epoch)), "--recovery-dir", str(self.recovery),
                "--log-dir", str(self.workdir / "logs"), *extra]

    def run_bounded(self, epoch: float = 1.0, processes: int = 1) -> str:
        """``graphsentry run --bounded``; its stderr (asserts exit 0)."""
        done = subprocess.run(self.command(epoch, "--bounded", "--processes", str(processes)),
                              env=_env(), cwd=ROOT, capture_output=True, text=True,
                              timeout=RUN_TIMEOUT)
        self.outputs.append(done.stderr)
        assert done.returncode == 0, done.stderr[-4000:]
        return done.stderr

    def start_live(self, epoch: float = LONG_EPOCH_S, processes: int = 1) -> subprocess.Popen[str]:
        return start(self.command(epoch, "--processes", str(processes)))

    def read_up_to(self, marker: str) -> bool:
        """Whether the dead letter of ``publish``'s ``marker`` reached the DLQ."""
        return any(m.key() == marker.encode() for m in read_all(self.bootstrap, self.dlq))

    def alert_messages(self) -> list[tuple[bytes, bytes]]:
        return [(m.key() or b"", m.value() or b"") for m in read_all(self.bootstrap, self.alerts)]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if k not in ("KAFKA_BOOTSTRAP", "REDIS_URL", "GRAPHSENTRY_CONFIG")}


def wait_for(condition: Callable[[], bool], what: str, timeout: float = RUN_TIMEOUT,
             process: subprocess.Popen[str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what}: the process exited ({process.returncode}): "
                                 f"{(process.stderr.read() if process.stderr else '')[-3000:]}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def children(pid: int) -> list[int]:
    """PIDs of a process's children (Linux)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text() if (task / "children").exists() else ""
        found += [int(p) for p in text.split()]
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def kill9(process: subprocess.Popen[str]) -> str:
    """SIGKILL a command (its spawned workers die with it); its stderr so far."""
    workers = children(process.pid)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers):
        assert time.monotonic() < deadline, f"workers {workers} outlived their parent"
        time.sleep(0.05)
    return process.stderr.read() if process.stderr else ""


def committed_offsets(recovery: Path) -> dict[str, int]:
    """The input offsets of the newest snapshot in a recovery directory, per partition."""
    offsets: dict[str, tuple[int, int]] = {}
    for part in recovery.glob("part-*.sqlite3"):
        try:
            with sqlite3.connect(part) as db:
                rows = db.execute("SELECT state_key, snap_epoch, ser_change FROM snaps "
                                  "WHERE step_id LIKE '%read_activity'").fetchall()
        except sqlite3.OperationalError:  # being created right now
            continue
        for key, epoch, blob in rows:
            if blob is not None and (key not in offsets or epoch > offsets[key][0]):
                offsets[key] = (epoch, int(pickle.loads(blob)))
    return {key: offset for key, (_epoch, offset) in offsets.items()}


# --- comparing -------------------------------------------------------------------------------

@dataclass
class Comparison:
    """Alerts of a disturbed run against an undisturbed one (Avro bodies, byte for byte), per
    alert version: ``alert_id#revision`` (every update of an alert is a message of its own,
    with the alert id as key)."""

    baseline: dict[str, bytes]
    got: dict[str, list[bytes]]

    @classmethod
    def of(cls, baseline: list[tuple[bytes, bytes]],
           got: list[tuple[bytes, bytes]]) -> Comparison:
        base: dict[str, bytes] = {}
        for key, value in baseline:
            assert base.setdefault(version(key, value), value) == value, \
                "baseline not deterministic"
        seen: dict[str, list[bytes]] = defaultdict(list)
        for key, value in got:
            seen[version(key, value)].append(value)
        return cls(base, dict(seen))

    @property
    def missing(self) -> list[str]:
        return sorted(set(self.baseline) - set(self.got))

    @property
    def extra(self) -> list[str]:
        return sorted(set(self.got) - set(self.baseline))

    @property
    def duplicates(self) -> int:
        return sum(len(values) - 1 for values in self.got.values())

    @property
    def inconsistent(self) -> list[str]:
        """Ids emitted with more than one body."""
        return sorted(k for k, values in self.got.items() if len(set(values)) > 1)

    @property
    def changed(self) -> list[str]:
        """Ids whose body differs from the undisturbed run's."""
        return sorted(k for k, values in self.got.items()
                      if k in self.baseline and any(v != self.baseline[k] for v in values))

    def describe(self, ids: list[str]) -> str:
        out = []
        for alert_id in ids[:5]:
            want = self.baseline.get(alert_id) or next(iter(self.got.get(alert_id, [])), None)
            detector = alert_from_avro(want)["detector"] if want else "?"
            fields = sorted({f for v in self.got.get(alert_id, []) if want
                             for f in _differing(alert_from_avro(want), alert_from_avro(v))})
            out.append(f"{alert_id[:12]}… ({detector}{': ' if fields else ''}"
                       f"{', '.join(fields)})")
        return "; ".join(out)

    def figures(self) -> str:
        return (f"alert versions: undisturbed {len(self.baseline)}, got {len(self.got)} "
                f"({len(self.missing)} missing, {len(self.extra)} extra), "
                f"{self.duplicates} duplicate messages ({len(self.inconsistent)} ids with "
                f"differing bodies), {len(self.changed)} bodies differ from the undisturbed run")

    def check(self) -> None:
        assert not self.missing, f"alerts lost: {self.describe(self.missing)}"
        assert not self.extra, f"alerts not in the undisturbed run: {self.extra[:5]}"
        assert not self.inconsistent, f"one id, several bodies: {self.describe(self.inconsistent)}"
        assert not self.changed, f"bodies differ: {self.describe(self.changed)}"


def version(key: bytes, value: bytes) -> str:
    """``alert_id#revision`` of one alert message (key: the alert id)."""
    return f"{key.decode()}#{alert_from_avro(value)['revision']}"


def _differing(want: dict[str, Any], got: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the fields that differ."""
    out: list[str] = []
    for key in sorted(set(want) | set(got)):
        a, b = want.get(key), got.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differing(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key} {a!r}->{b!r}" if not isinstance(a, (list, dict))
                       else f"{prefix}{key}")
    return out


def elapsed(started: float) -> str:
    return f"{timedelta(seconds=round(time.monotonic() - started))}"
