"""Fault injection on the detection deployment (``graphsentry run`` with a recovery directory,
on the suite's own Kafka and Redis): kill -9 at three points of a run, one worker process of
a cluster killed, the broker away for longer than the delivery timeout, Redis away. Each case
compares the alerts that reached the alert topic with an undisturbed run of the same input:
the same alert ids, every body byte-for-byte the same, duplicates only as identical messages.
The figures are printed at the end of the run (see conftest) and in docs/reliability.md."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from graphsentry.alerts import alert_from_avro
from tests.integration.faults.conftest import FaultStack
from tests.integration.faults.harness import (
    LONG_EPOCH_S,
    Comparison,
    Detection,
    Workload,
    children,
    committed_offsets,
    elapsed,
    kill9,
    publish,
    simulate,
    wait_for,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Workload:
    return simulate(tmp_path_factory.mktemp("tenant"))


Make = Callable[..., Detection]


@pytest.fixture
def deployment(fault_stack: FaultStack, tmp_path: Path) -> Make:
    """``make(redis=True, partitions=1, **extra)``: a detection deployment on fresh topics."""

    def make(redis: bool = True, partitions: int = 1, **extra: Any) -> Detection:
        stack = fault_stack
        return Detection(
            bootstrap=stack.bootstrap,
            activity=extra.pop("activity", None) or stack.topic("activity", partitions),
            alerts=stack.topic("alerts", 2), alerts_json=stack.topic("alertsjson", 2),
            dlq=stack.topic("dlq"), signals=stack.topic("signals"), late=stack.topic("late"),
            workdir=tmp_path / f"run-{time.monotonic_ns()}",
            redis_url=stack.redis_url if redis else None, **extra)

    return make


_BASELINES: dict[tuple[bool, int], list[tuple[bytes, bytes]]] = {}


def undisturbed(make: Make, workload: Workload, redis: bool,
                partitions: int = 1) -> list[tuple[bytes, bytes]]:
    """The alerts of one bounded run over the whole input (computed once per flavour)."""
    key = (redis, partitions)
    if key not in _BASELINES:
        run = make(redis=redis, partitions=partitions)
        run.workdir.mkdir(parents=True)
        for n, phase in enumerate(workload.phases(), 1):
            publish(run.bootstrap, run.activity, phase, marker=f"phase-{n}")
        run.run_bounded()
        _BASELINES[key] = run.alert_messages()
        assert len(Comparison.of(_BASELINES[key], []).baseline) >= 5  # the chain's versions
    return _BASELINES[key]


def messages(workload: Workload) -> int:
    """Input messages: every record and one marker per phase."""
    return sum(len(p) + 1 for p in workload.phases())


def stop_when_complete(run: Detection, live: subprocess.Popen[str], workload: Workload,
                       baseline: list[tuple[bytes, bytes]], reading: str) -> str:
    """Wait until the live run has read every message (``reading`` names that wait) and
    written every alert version of ``baseline``, stop it with SIGTERM (exit 143); its
    stderr (also kept in ``run.outputs``)."""
    total = messages(workload)
    wait_for(lambda: sum(committed_offsets(run.recovery).values()) == total, reading,
             process=live)
    wait_for(lambda: not Comparison.of(baseline, run.alert_messages()).missing,
             "every alert version", process=live)
    live.send_signal(signal.SIGTERM)
    _, stderr = live.communicate(timeout=60)
    run.outputs.append(stderr)
    assert live.returncode == 143, stderr[-3000:]
    return stderr


def report(lines: list[str], case: str, workload: Workload, run: Detection,
           result: Comparison, started: float, note: str = "") -> None:
    total = messages(workload)
    read = sum(committed_offsets(run.recovery).values())
    restarts = sum(out.count("restarting from the last snapshot") for out in run.outputs)
    lines.append(f"{case}: {total} input messages, {total - read} not covered by the final "
                 f"snapshot; {result.figures()}; {restarts} supervised restart(s); "
                 f"{elapsed(started)}{f'; {note}' if note else ''}")


POINTS = {1: "before the first snapshot (warm-up day read)",
          2: "after a snapshot, the attacker's new-network request read",
          3: "after the last snapshot, the attack read and its alerts emitted"}


@pytest.mark.parametrize("store", [
    "redis", "memory"])
@pytest.mark.parametrize("point", list(POINTS), ids=list(POINTS.values()))
def test_kill_9_of_the_detection_run(deployment: Make, workload: Workload, point: int,
                                     store: str, fault_report: list[str]) -> None:
    """Phases: warm-up and run-up | the attacker's first request (new network) | the rest.
    Phases before ``point`` are processed by bounded runs (each ends with a snapshot); phase
    ``point`` by a live run with a long epoch, killed (SIGKILL, workers included) once it read
    the whole phase, before any further snapshot; then a bounded run resumes from the last
    snapshot and processes what is left. Both enrichment stores: Redis (profiles are written
    only for principals leaving worker state, versioned, and read as of the events' time, so a
    resumed run never sees what the killed run wrote after its snapshot) and process memory
    (``redis.url: null``)."""
    redis = store == "redis"
    baseline = undisturbed(deployment, workload, redis=redis)
    run = deployment(redis=redis)
    run.workdir.mkdir(parents=True)
    started = time.monotonic()
    phases = workload.phases()
    for n, phase in enumerate(phases[:point - 1], 1):
        publish(run.bootstrap, run.activity, phase, marker=f"phase-{n}")
        run.run_bounded()
    publish(run.bootstrap, run.activity, phases[point - 1], marker=f"phase-{point}")
    live = run.start_live(epoch=LONG_EPOCH_S)
    wait_for(lambda: run.read_up_to(f"phase-{point}"), f"phase {point} read", process=live)
    run.outputs.append(kill9(live))
    for n, phase in enumerate(phases[point:], point + 1):
        publish(run.bootstrap, run.activity, phase, marker=f"phase-{n}")
    run.run_bounded()

    result = Comparison.of(baseline, run.alert_messages())
    report(fault_report, f"kill -9 of graphsentry run {POINTS[point]}, histories in {store}",
           workload, run, result, started)
    assert sum(committed_offsets(run.recovery).values()) == messages(workload)
    result.check()


def test_a_killed_worker_process_restarts_the_cluster_from_the_last_snapshot(
        deployment: Make, workload: Workload, fault_report: list[str]) -> None:
    """Two processes, profiles in process memory (this case measures recovery and delivery
    alone): one worker is SIGKILLed mid-run; ``graphsentry run``
    stops the other, says why in one line, restarts both from the last snapshot and ends
    with the same alerts."""
    baseline = undisturbed(deployment, workload, redis=False, partitions=2)
    run = deployment(redis=False, partitions=2)
    run.workdir.mkdir(parents=True)
    started = time.monotonic()
    phases = workload.phases()
    publish(run.bootstrap, run.activity, phases[0], marker="phase-1")
    live = run.start_live(epoch=0.5, processes=2)
    wait_for(lambda: bool(committed_offsets(run.recovery)), "a first snapshot", process=live)
    workers = [pid for pid in children(live.pid) if "resource_tracker" not in
               Path(f"/proc/{pid}/cmdline").read_text(errors="replace")]
    assert len(workers) == 2, workers
    for n, phase in enumerate(phases[1:], 2):
        publish(run.bootstrap, run.activity, phase, marker=f"phase-{n}")
    os.kill(workers[0], signal.SIGKILL)
    stderr = stop_when_complete(run, live, workload, baseline,
                                "the restarted cluster to read everything")
    restarts = re.findall(r"graphsentry run: process detect-\d was killed by SIGKILL; restarting "
                          r"from the last snapshot in 2s \(restart 1 of 5\)\n", stderr)
    assert len(restarts) == 1, stderr
    assert "panicked" not in stderr and "Traceback" not in stderr, stderr

    result = Comparison.of(baseline, run.alert_messages())
    report(fault_report, "kill -9 of one of two worker processes (memory store)", workload,
           run, result, started)
    result.check()


def test_broker_away_longer_than_the_delivery_timeout(
        deployment: Make, workload: Workload, fault_stack: FaultStack, kafka_bootstrap: str,
        topic_factory: Callable[..., str], fault_report: list[str]) -> None:
    """Input on the shared broker, outputs on the suite's broker, which is stopped while the
    flow is producing alerts (``message.timeout.ms`` 1500): the alert sink retries in place,
    then fails its batch; ``graphsentry run`` restarts from the last snapshot until the broker
    is back. Profiles in process memory (this case measures delivery alone)."""
    baseline = undisturbed(deployment, workload, redis=False)
    run = deployment(redis=False, activity=topic_factory(1, "activity"),
                     input_bootstrap=kafka_bootstrap,
                     producer={"message.timeout.ms": 1500})
    run.workdir.mkdir(parents=True)
    started = time.monotonic()
    phases = workload.phases()
    publish(kafka_bootstrap, run.activity, phases[0], marker="phase-1")
    live = run.start_live(epoch=0.5)
    wait_for(lambda: sum(committed_offsets(run.recovery).values()) == len(phases[0]) + 1,
             "the first phase snapshotted", process=live)
    fault_stack.down("kafka")
    outage = time.monotonic()
    for n, phase in enumerate(phases[1:], 2):
        publish(kafka_bootstrap, run.activity, phase, marker=f"phase-{n}")
    # The broker stays away for 20 s: longer than a try (1.5 s), than all three tries with
    # their back-off (~7.5 s), and than the first supervised restart.
    time.sleep(20)
    fault_stack.up("kafka")
    down_for = time.monotonic() - outage
    stderr = stop_when_complete(run, live, workload, baseline,
                                "everything read after the outage")
    assert "did not acknowledge" in stderr and "_MSG_TIMED_OUT" in stderr, stderr
    assert "restarting from the last snapshot" in stderr, stderr

    result = Comparison.of(baseline, run.alert_messages())
    report(fault_report, f"broker down {down_for:.0f}s (message.timeout.ms 1500)", workload,
           run, result, started)
    result.check()


def test_redis_away_during_a_run(deployment: Make, workload: Workload,
                                 fault_stack: FaultStack, fault_report: list[str]) -> None:
    """Redis is stopped (its data kept) when a run starts and back 4 s later: lookups answer
    "unavailable" at once (the alerts fired meanwhile say ``enrichment.available=false``, by
    design) and history saves retry in place until Redis answers. Apart from that flag, every
    body must equal the undisturbed run's."""
    baseline = undisturbed(deployment, workload, redis=True)
    run = deployment()
    run.workdir.mkdir(parents=True)
    started = time.monotonic()
    phases = workload.phases()
    publish(run.bootstrap, run.activity, phases[0], marker="phase-1")
    run.run_bounded()
    for n, phase in enumerate(phases[1:], 2):
        publish(run.bootstrap, run.activity, phase, marker=f"phase-{n}")
    fault_stack.down("redis")
    back = threading.Timer(4.0, fault_stack.up, args=("redis",))
    back.start()
    try:
        stderr = run.run_bounded()
    finally:
        back.join()
    assert "warning: cannot reach Redis" in stderr, stderr

    got = run.alert_messages()
    flagged = {k for k, v in got if not alert_from_avro(v)["enrichment"]["available"]}
    flag_only = [(k, _with_enrichment_available(v) if k in flagged else v) for k, v in got]
    result = Comparison.of(baseline, flag_only)
    report(fault_report, "Redis down 4s at the start of a run", workload, run, result, started,
           note=f"{len(flagged)} alert(s) fired during the outage say "
                "enrichment.available=false (compared without that flag)")
    assert flagged, "the outage hit no alert: the case proved nothing"
    result.check()


def _with_enrichment_available(value: bytes) -> bytes:
    from graphsentry.alerts import alert_to_avro

    alert = alert_from_avro(value)
    alert["enrichment"]["available"] = True
    return alert_to_avro(alert)
