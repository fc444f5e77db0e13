"""Ctrl-C and a closed stdout during embedded detection (``graphsentry detect``): one line and
the shell's exit code, never a Rust panic or a Python traceback. Real processes, real signals
and pipes; no Kafka or Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from graphsentry.simulate import SimulationConfig, simulate

ROOT = Path(__file__).resolve().parents[1]
NOISE = ("panicked", "Traceback", "BytewaxRuntimeError", "KeyboardInterrupt", "BrokenPipeError")


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two simulated days of the demo tenant (attacks included) as raw log lines."""
    sim = simulate(SimulationConfig(seed=3, users=60, days=2))
    path = tmp_path_factory.mktemp("signals") / "sim.jsonl"
    path.write_text("".join(m.to_json() + "\n" for m in sim.messages), encoding="utf-8")
    return path


def graphsentry(*args: str, **kwargs: object) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RUST_BACKTRACE": "1"}  # a panic would print its whole backtrace
    env.pop("GRAPHSENTRY_CONFIG", None)
    return subprocess.Popen([sys.executable, "-m", "graphsentry.cli", *args], cwd=ROOT,
                            env=env, **kwargs)  # type: ignore[call-overload]


def test_ctrl_c_while_detection_reads_stdin_is_one_line_and_exit_130(logs: Path,
                                                                     tmp_path: Path) -> None:
    alerts = tmp_path / "alerts.jsonl"
    proc = graphsentry("detect", "-", "--alerts-out", str(alerts), stdin=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stderr is not None
    # Feed every record and keep stdin open: the flow processes them, writes their alerts,
    # then waits inside its source (a Bytewax callback) for more input.
    writer = threading.Thread(target=lambda: (proc.stdin.write(logs.read_bytes()),  # type: ignore[union-attr]
                                              proc.stdin.flush()))  # type: ignore[union-attr]
    writer.start()
    deadline = time.monotonic() + 120
    while not (alerts.exists() and alerts.stat().st_size > 0):
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "no alert written within 120 s"
        time.sleep(0.2)
    writer.join(timeout=60)
    time.sleep(1.0)  # the flow is running: alerts came out of it
    proc.send_signal(signal.SIGINT)
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=60)
    proc.stdin.close()
    assert code == 130, err
    assert err.strip().splitlines()[-1] == "graphsentry: interrupted", err
    assert not any(word in err for word in NOISE), err
    assert alerts.read_text(encoding="utf-8").count("\n") >= 1  # what was found is kept


def test_a_closed_stdout_ends_detection_quietly(logs: Path) -> None:
    proc = graphsentry("detect", str(logs), "--signals-out", "-", "--quiet",
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.read(200)  # like `| head -c 200`
    assert first.startswith(b"{")
    proc.stdout.close()
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=120)
    assert code == 0, err
    assert not any(word in err for word in NOISE), err
