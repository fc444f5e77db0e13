"""``graphsentry run``: the Kafka detection dataflow as a local cluster of N processes."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from graphsentry.cluster import free_ports, prepare_recovery
from graphsentry.errors import GraphsentryError

HELP = "run the Kafka detection dataflow (graph.activity.v1 -> graph.alerts.v1) on N processes"
STOP_GRACE_SECONDS = 15.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML configuration (default: $GRAPHSENTRY_CONFIG)")
    p.add_argument("--processes", type=int, default=1,
                   help="Bytewax processes, one worker each (default 1; use ≤ partitions)")
    p.add_argument("--bounded", action="store_true",
                   help="stop at the current end of the topic (replay / backtest)")
    p.add_argument("--recovery-dir", metavar="DIR",
                   help="Bytewax recovery partitions (created if missing): resume where the "
                   "last run stopped")


def commands(processes: int, bounded: bool, epoch_seconds: float,
             recovery_dir: str | None) -> list[list[str]]:
    """One ``python -m bytewax.run`` command line per process."""
    flow = "dataflows.detect:get_flow(tail=False)" if bounded else "dataflows.detect:get_flow()"
    base = [sys.executable, "-m", "bytewax.run", flow, "-w", "1", "-s", f"{epoch_seconds:g}"]
    if recovery_dir:
        base += ["-r", recovery_dir, "-b", "0"]
    if processes == 1:
        return [base]
    addresses = ";".join(f"127.0.0.1:{port}" for port in free_ports(processes))
    return [[*base, "-i", str(i), "-a", addresses] for i in range(processes)]


def _default_signals() -> None:
    """In the child: SIGINT stops Bytewax cleanly even when this shell started us in the
    background (which leaves SIGINT ignored, and ignored signals survive exec)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _exit_code(code: int) -> int:
    return 128 - code if code < 0 else code


def run(args: argparse.Namespace) -> int:
    from graphsentry.config import load_config

    if args.processes < 1:
        raise GraphsentryError(f"--processes must be at least 1, got {args.processes}")
    config = load_config(args.config)  # validate here, before any process starts
    env = dict(os.environ)
    if config.source != "<defaults>":
        env["GRAPHSENTRY_CONFIG"] = str(Path(config.source).resolve())
    if args.recovery_dir:
        prepare_recovery(args.recovery_dir)
    children = [subprocess.Popen(cmd, env=env, preexec_fn=_default_signals) for cmd in commands(
        args.processes, args.bounded, config.bytewax.epoch_seconds, args.recovery_dir)]
    print(f"graphsentry run: {len(children)} process(es) reading "
          f"{config.kafka.topics.activity} on {config.kafka.bootstrap}"
          f"{' until its end' if args.bounded else ''}", file=sys.stderr)

    stopping: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        codes = _wait_all(children, stopping)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return max(_exit_code(c) for c in codes)


def _wait_all(children: list[subprocess.Popen[bytes]], stopping: list[int]) -> list[int]:
    """Wait for every process; when one fails, stop the others (a cluster cannot go on).
    After a forwarded signal they are all stopping already: just wait."""
    while True:
        codes = [c.poll() for c in children]
        if all(code is not None for code in codes):
            return [int(code) for code in codes if code is not None]
        if not stopping and any(code not in (None, 0) for code in codes):
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            for child in children:
                if child.poll() is None:
                    child.terminate()
            for child in children:
                remaining = max(0.1, deadline - time.monotonic())
                try:
                    child.wait(timeout=remaining)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
        time.sleep(0.1)
