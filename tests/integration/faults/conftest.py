"""The fault-injection suite's own stack: a Kafka broker (with a SASL listener) and a Redis
server started by ``scripts/stack.sh`` on free ports with a state directory of their own, so
the tests can stop and restart them. The shared services (``KAFKA_BOOTSTRAP``/``REDIS_URL``)
are never stopped; the broker-outage case reads its input from the shared broker.

Each case records its figures with ``fault_report``; they are printed at the end of the run
(``graphsentry fault injection``) and copied into docs/reliability.md.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

ROOT = Path(__file__).parents[3]
STACK = ROOT / "scripts" / "stack.sh"
SASL_USER, SASL_PASSWORD = "graphsentry", "fault-secret-8"
FIGURES: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "faults: the fault-injection suite (own Kafka + Redis)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            for marker in ("faults", "kafka", "redis", "slow"):
                item.add_marker(marker)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("graphsentry fault injection")
        for line in FIGURES:
            terminalreporter.write_line(line)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


class FaultStack:
    """The suite's own Kafka and Redis, stoppable and restartable (state kept: Redis with its
    append-only file, Kafka with its log directory)."""

    def __init__(self, state: Path) -> None:
        kafka, controller, sasl, redis_port = _free_ports(4)
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("KAFKA_BOOTSTRAP", "REDIS_URL")}
        self.env.update({
            "GRAPHSENTRY_STATE_DIR": str(state),
            "GRAPHSENTRY_KAFKA_LIBS": str(ROOT / ".state" / "kafka" / "libs"),
            "GRAPHSENTRY_KAFKA_PORT": str(kafka),
            "GRAPHSENTRY_KAFKA_CONTROLLER_PORT": str(controller),
            "GRAPHSENTRY_KAFKA_SASL_PORT": str(sasl),
            "GRAPHSENTRY_KAFKA_SASL_USER": SASL_USER,
            "GRAPHSENTRY_KAFKA_SASL_PASSWORD": SASL_PASSWORD,
            "GRAPHSENTRY_REDIS_PORT": str(redis_port),
            "GRAPHSENTRY_REDIS_PERSIST": "1",
            "GRAPHSENTRY_STOP_TIMEOUT": "20",
        })
        self.bootstrap = f"127.0.0.1:{kafka}"
        self.sasl_bootstrap = f"127.0.0.1:{sasl}"
        self.redis_url = f"redis://127.0.0.1:{redis_port}/0"
        self.admin: AdminClient | None = None

    def stack(self, *args: str) -> None:
        done = subprocess.run([str(STACK), *args], env=self.env, cwd=ROOT, text=True,
                              capture_output=True, timeout=180)
        assert done.returncode == 0, f"stack.sh {' '.join(args)}: {done.stderr[-2000:]}"

    def up(self, *services: str) -> None:
        self.stack("up", *services)
        if self.admin is None:  # quiet while the broker is away on purpose
            self.admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})

    def down(self, *services: str) -> None:
        self.stack("down", *services)

    def topic(self, prefix: str, partitions: int = 1) -> str:
        """A new topic on this stack's broker (kept: the stack's state is thrown away)."""
        assert self.admin is not None
        name = f"{prefix}.{uuid.uuid4().hex[:12]}"
        future = self.admin.create_topics([NewTopic(name, partitions, 1,
                                                    config={"retention.ms": "-1"})])[name]
        future.result(timeout=30)
        deadline = time.monotonic() + 30
        while True:
            described = self.admin.list_topics(name, timeout=5).topics.get(name)
            if described is not None and described.error is None and all(
                    p.leader >= 0 for p in described.partitions.values()):
                return name
            assert time.monotonic() < deadline, f"topic {name} not ready"
            time.sleep(0.1)


@pytest.fixture(scope="session")
def fault_stack(kafka_bootstrap: str, redis_url: str,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    """Requires the shared stack too (the suite runs under scripts/test.sh)."""
    stack = FaultStack(tmp_path_factory.mktemp("fault-stack"))
    stack.up()
    try:
        yield stack
    finally:
        stack.admin = None
        stack.down()


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    """A case that fails half-way leaves no graphsentry process running."""
    from tests.integration.faults.harness import kill_leftovers

    yield
    kill_leftovers()


@pytest.fixture
def fault_report() -> Iterator[list[str]]:
    """Lines a case appends are printed in the terminal summary."""
    lines: list[str] = []
    yield lines
    FIGURES.extend(lines)
