"""``graphsentry simulate --kafka-topic T --config F`` writes to a secured broker: the suite's own
broker's SASL_PLAINTEXT listener, with the credentials in the configuration's ``kafka.producer``
as for every other Kafka-writing command. A wrong password is a clear error within seconds (the
broker is checked before the tenant is simulated) that never shows the password, and nothing is
produced or written."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.integration.faults.conftest import SASL_PASSWORD, SASL_USER, FaultStack
from tests.integration.faults.test_operability import (
    CHECK_BOUND_S,
    WRONG,
    graphsentry,
    one_clear_line,
)
from tests.integration.kafka_util import read_all

SIMULATE = ["simulate", "--users", "20", "--days", "1", "--scenario", "sp_credential_added"]


def secured(stack: FaultStack, password: str) -> dict[str, Any]:
    """The SASL listener as ``kafka.bootstrap``, the credentials under ``kafka.producer``."""
    return {"kafka": {"bootstrap": stack.sasl_bootstrap, "producer": {
        "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
        "sasl.username": SASL_USER, "sasl.password": password}}, "redis": {"url": None}}


def test_simulate_produces_to_a_sasl_listener_configured_in_the_file(
        fault_stack: FaultStack, tmp_path: Path) -> None:
    topic = fault_stack.topic("raw")
    out = tmp_path / "tenant.jsonl"
    done = graphsentry(*SIMULATE, "--out", str(out), "--kafka-topic", topic,
                       config=secured(fault_stack, SASL_PASSWORD), tmp=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = out.read_bytes().splitlines()
    assert f"{topic} ({len(lines)} messages)" in done.stderr
    assert SASL_PASSWORD not in done.stderr
    # Read back through the broker's plain-text listener: every message, in order.
    assert [m.value() for m in read_all(fault_stack.bootstrap, topic)] == lines


def test_a_wrong_password_is_a_clear_error_and_produces_nothing(
        fault_stack: FaultStack, tmp_path: Path) -> None:
    topic = fault_stack.topic("raw")
    started = time.monotonic()
    done = graphsentry(*SIMULATE, "--out", str(tmp_path / "tenant.jsonl"), "--kafka-topic",
                       topic, config=secured(fault_stack, WRONG), tmp=tmp_path)
    took = time.monotonic() - started
    assert done.returncode == 2, done.stderr
    assert (f"graphsentry simulate: error: Kafka output at {fault_stack.sasl_bootstrap}: "
            "authentication failed") in done.stderr, done.stderr
    assert "Invalid username or password" in done.stderr
    assert WRONG not in done.stderr
    one_clear_line(done.stderr)
    assert took < CHECK_BOUND_S  # checked before the tenant is simulated
    assert read_all(fault_stack.bootstrap, topic) == []
    assert not (tmp_path / "tenant.jsonl").exists()
