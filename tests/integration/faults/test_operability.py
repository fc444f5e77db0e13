"""Failures that used to look like success, hang or spam: wrong credentials and TLS mismatches
are clear errors within a bounded time, SIGTERM is honoured meanwhile, Ctrl-C and a dead
worker process end ``graphsentry run`` with one line and a meaningful exit status, and no
password ever reaches the output. On the suite's own broker (SASL listener) and Redis (an
ACL user with a password), and on the shared broker where nothing is stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from dataflows.kafka_client import KafkaClientError
from dataflows.kafka_source import RawActivitySource
from tests.integration.faults.conftest import ROOT, SASL_USER, FaultStack
from tests.integration.faults.harness import (
    _env,
    children,
    publish,
    simulate,
    start,
    wait_for,
)

WRONG = "not-the-password-42"
CHECK_BOUND_S = 15.0  # documented: a configuration problem is reported within seconds


def graphsentry(*args: str, config: dict[str, Any] | None = None, tmp: Path,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
    extra: list[str] = []
    if config is not None:
        path = tmp / f"config-{time.monotonic_ns()}.yaml"
        path.write_text(yaml.safe_dump(config))
        extra = ["--config", str(path)]
    return subprocess.run([sys.executable, "-m", "graphsentry.cli", args[0], *extra, *args[1:]],
                          env=_env(), cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def sasl(stack: FaultStack, password: str) -> dict[str, str]:
    return {"bootstrap.servers": stack.sasl_bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN", "sasl.username": SASL_USER, "sasl.password": password}


def one_clear_line(stderr: str) -> None:
    assert "panicked" not in stderr and "Traceback" not in stderr, stderr
    assert "%3|" not in stderr and "FAIL|rdkafka" not in stderr, stderr  # no librdkafka spam
    assert len(stderr.splitlines()) <= 3, stderr


@pytest.mark.parametrize("command", ["run", "bridge"])
def test_a_wrong_sasl_password_is_an_error_within_seconds(
        fault_stack: FaultStack, tmp_path: Path, command: str) -> None:
    topics = {"raw": fault_stack.topic("raw"), "activity": fault_stack.topic("activity"),
              "alerts": fault_stack.topic("alerts"), "alerts_json": fault_stack.topic("aj"),
              "dlq": fault_stack.topic("dlq"), "signals": fault_stack.topic("signals"),
              "late": fault_stack.topic("late")}
    config = {"kafka": {"bootstrap": fault_stack.bootstrap, "topics": topics,
                        "consumer": sasl(fault_stack, WRONG)}, "redis": {"url": None}}
    started = time.monotonic()
    done = graphsentry(command, "--bounded", config=config, tmp=tmp_path)
    took = time.monotonic() - started
    assert done.returncode == 2, done.stderr
    assert (f"error: Kafka {'input' if command == 'run' else 'raw'} at {fault_stack.sasl_bootstrap}"
            f": authentication failed" in done.stderr), done.stderr
    assert "Invalid username or password" in done.stderr
    assert WRONG not in done.stderr
    one_clear_line(done.stderr)
    assert took < CHECK_BOUND_S
    # The right password passes the same check (the bounded run then ends normally).
    config["kafka"]["consumer"] = sasl(fault_stack, "fault-secret-8")  # type: ignore[index]
    assert graphsentry(command, "--bounded", config=config, tmp=tmp_path).returncode == 0


def test_sasl_ssl_against_a_plain_text_listener_is_named(
        kafka_bootstrap: str, tmp_path: Path) -> None:
    config = {"kafka": {"bootstrap": kafka_bootstrap, "consumer": {
        "security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN",
        "sasl.username": "$ConnectionString",
        "sasl.password": "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=l;"
                         "SharedAccessKey=c2VjcmV0"}}, "redis": {"url": None}}
    started = time.monotonic()
    done = graphsentry("run", "--bounded", config=config, tmp=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "TLS handshake failed" in done.stderr and "PLAINTEXT" in done.stderr, done.stderr
    assert "c2VjcmV0" not in done.stderr
    one_clear_line(done.stderr)
    assert time.monotonic() - started < CHECK_BOUND_S


def test_sigterm_is_honoured_while_waiting_for_an_unreachable_cluster(tmp_path: Path) -> None:
    path = tmp_path / "unreachable.yaml"
    path.write_text(yaml.safe_dump({"kafka": {"bootstrap": "127.0.0.1:1"},
                                    "redis": {"url": None}}))
    process = start([sys.executable, "-m", "graphsentry.cli", "run", "--config", str(path)])
    time.sleep(2.0)
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert time.monotonic() - sent < 3.0
    assert process.returncode == 143, stderr
    assert "interrupted (SIGTERM)" in stderr
    one_clear_line(stderr)


def test_a_consumer_whose_credentials_fail_while_running_stops_its_worker(
        fault_stack: FaultStack) -> None:
    """The runtime path (credentials revoked while running): the guarded source raises,
    naming the cause, at its next batch after librdkafka reports the failure."""
    from dataflows.kafka_client import ClientHealth, GuardedSource, client_config

    topic = fault_stack.topic("activity")
    health = ClientHealth("consumer")
    inner = RawActivitySource([fault_stack.sasl_bootstrap], topic, tail=True,
                              starting_offset=0,
                              add_config=client_config(sasl(fault_stack, WRONG), health),
                              batch_size=10)
    part = GuardedSource(inner, None, health).build_part("read", f"0-{topic}", None)
    deadline = time.monotonic() + CHECK_BOUND_S
    with pytest.raises(KafkaClientError, match="authentication failed"):
        while time.monotonic() < deadline:
            part.next_batch()
            time.sleep(0.05)
    part.close()


@pytest.mark.parametrize(("url", "says"), [
    ("redis://{user}:{wrong}@{host}/0", "invalid username-password pair"),
    ("redis://{host}/99", "DB index is out of range"),
    ("rediss://{host}/0", "TLS handshake failed: is this a plain-text port?"),
])
def test_a_persistent_redis_problem_is_an_error_at_start(
        fault_stack: FaultStack, kafka_bootstrap: str, topic_factory: Callable[..., str],
        tmp_path: Path, url: str, says: str) -> None:
    client = redis.Redis.from_url(fault_stack.redis_url)
    client.acl_setuser("graphsentry-app", enabled=True, passwords=["+right-pw-1"], keys=["*"],
                       commands=["+@all"])
    client.close()
    host = fault_stack.redis_url.split("//", 1)[1].split("/", 1)[0]
    target = url.format(user="graphsentry-app", wrong=WRONG, host=host)
    topics = {name: topic_factory(1, name.replace("_", ""))
              for name in ("activity", "alerts", "alerts_json", "dlq", "signals", "late")}
    config = {"kafka": {"bootstrap": kafka_bootstrap, "topics": topics},
              "redis": {"url": target, "socket_timeout_seconds": 0.5}}
    done = graphsentry("run", "--bounded", config=config, tmp=tmp_path)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr and WRONG not in done.stderr, done.stderr
    one_clear_line(done.stderr)
    if "{wrong}" in url:  # the same store with the right password works
        config["redis"]["url"] = target.replace(WRONG, "right-pw-1")  # type: ignore[index]
        assert graphsentry("enrich", "show-app", "x", config=config,
                           tmp=tmp_path).returncode == 1  # "unknown": it could ask


def test_enrich_never_prints_the_redis_password(fault_stack: FaultStack,
                                                tmp_path: Path) -> None:
    client = redis.Redis.from_url(fault_stack.redis_url)
    client.acl_setuser("graphsentry-app", enabled=True, passwords=["+right-pw-1"], keys=["*"],
                       commands=["+@all"])
    client.close()
    host = fault_stack.redis_url.split("//", 1)[1].split("/", 1)[0]
    apps = tmp_path / "apps.json"
    apps.write_text(json.dumps({"value": [{"appId": "0a0b0c0d-0000-4000-8000-000000000001",
                                           "displayName": "Runner"}]}))
    good = graphsentry("enrich", "--redis-url", f"redis://graphsentry-app:right-pw-1@{host}/0",
                       "load-apps", str(apps), tmp=tmp_path)
    assert good.returncode == 0, good.stderr
    assert f"apps -> redis://graphsentry-app:***@{host}/0: loaded 1" in good.stderr
    bad = graphsentry("enrich", "--redis-url", f"redis://graphsentry-app:{WRONG}@{host}/0",
                      "load-apps", str(apps), tmp=tmp_path)
    assert bad.returncode == 2
    assert f"redis://graphsentry-app:***@{host}/0" in bad.stderr, bad.stderr
    down = graphsentry("enrich", "--redis-url", f"redis://:{WRONG}@127.0.0.1:1/0",
                       "show-app", "x", tmp=tmp_path)
    assert down.returncode == 2 and "cannot reach Redis at redis://:***@127.0.0.1:1/0" in \
        down.stderr, down.stderr
    for done in (good, bad, down):
        assert "right-pw-1" not in done.stdout + done.stderr
        assert WRONG not in done.stdout + done.stderr


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return simulate(tmp_path_factory.mktemp("tenant")).records


def live_run(kafka_bootstrap: str, topic_factory: Callable[..., str], tmp_path: Path,
             records: list[dict[str, Any]], processes: int) -> subprocess.Popen[str]:
    topics = {"activity": topic_factory(processes, "activity"),
              "alerts": topic_factory(1, "alerts"), "alerts_json": topic_factory(1, "aj"),
              "dlq": topic_factory(1, "dlq"), "signals": topic_factory(1, "signals"),
              "late": topic_factory(1, "late")}
    publish(kafka_bootstrap, topics["activity"], records[:2000])
    path = tmp_path / "live.yaml"
    path.write_text(yaml.safe_dump({"kafka": {"bootstrap": kafka_bootstrap, "topics": topics},
                                    "redis": {"url": None}}))
    process = start([sys.executable, "-m", "graphsentry.cli", "run", "--config", str(path),
                     "--processes", str(processes)])
    wait_for(lambda: len(workers(process)) == processes, "the workers", 60, process)
    return process


def workers(process: subprocess.Popen[str]) -> list[int]:
    return [pid for pid in children(process.pid)
            if "resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")]


def test_ctrl_c_on_run_prints_one_line_and_exits_130(
        kafka_bootstrap: str, topic_factory: Callable[..., str], tmp_path: Path,
        records: list[dict[str, Any]]) -> None:
    process = live_run(kafka_bootstrap, topic_factory, tmp_path, records, processes=2)
    time.sleep(3.0)  # running: the workers read the topic
    os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    lines = stderr.strip().splitlines()
    assert lines[-1].startswith("graphsentry run: stopped by SIGINT: events="), stderr
    assert len(lines) == 2, stderr  # the start line and the stop line
    one_clear_line(stderr)


def test_a_dead_worker_stops_the_others_with_one_line(
        kafka_bootstrap: str, topic_factory: Callable[..., str], tmp_path: Path,
        records: list[dict[str, Any]]) -> None:
    process = live_run(kafka_bootstrap, topic_factory, tmp_path, records, processes=2)
    time.sleep(2.0)
    victim, other = workers(process)
    os.kill(victim, signal.SIGKILL)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1, stderr  # no recovery directory: no restart
    assert stderr.strip().splitlines()[-1].startswith("graphsentry run: error: process detect-")
    assert "was killed by SIGKILL" in stderr
    one_clear_line(stderr)
    assert not Path(f"/proc/{other}").exists() or "Z" in \
        Path(f"/proc/{other}/stat").read_text().rsplit(")", 1)[1].split()[0]
