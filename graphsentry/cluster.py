"""What every multi-process Bytewax command shares: free local ports for the workers'
addresses, recovery partitions created once, and spawning the processes of a cluster."""

from __future__ import annotations

import multiprocessing
import queue
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from graphsentry.errors import GraphsentryError

RECOVERY_PARTITIONS = 8  # fixed forever once created: the most processes ever resumed with


def free_ports(count: int) -> list[int]:
    """``count`` TCP ports free on 127.0.0.1 right now (for ``bytewax`` process addresses)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def prepare_recovery(directory: str) -> None:
    """Create Bytewax recovery partitions in ``directory`` unless it already has them."""
    path = Path(directory)
    if any(path.glob("part-*.sqlite3")):
        return
    from bytewax.recovery import init_db_dir

    path.mkdir(parents=True, exist_ok=True)
    init_db_dir(path, RECOVERY_PARTITIONS)  # type: ignore[no-untyped-call]


class ClusterInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a spawned cluster; ``results`` holds what its processes reported."""

    def __init__(self, results: list[Any]) -> None:
        super().__init__("interrupted")
        self.results = results


def run_spawned(target: Callable[..., None], job: Any, processes: int, name: str,
                advance: Callable[[int], None], grace_seconds: float = 15.0) -> list[Any]:
    """Run ``target(job, addresses, index, read, results)`` in ``processes`` spawned processes
    and return the one result each puts on ``results``, in arrival order.

    Bytewax runs Rust threads, so processes are spawned, never forked. ``read`` is a shared
    counter the processes add to; its growth is passed to ``advance`` (a progress bar). A process
    that dies raises :class:`GraphsentryError`; Ctrl-C sends SIGTERM to each (they drain and
    report) and raises :class:`ClusterInterrupted` with the results that arrived.
    """
    context = multiprocessing.get_context("spawn")
    addresses = [f"127.0.0.1:{port}" for port in free_ports(processes)]
    read, results = context.Value("q", 0), context.Queue()
    children = [context.Process(target=target, args=(job, addresses, i, read, results),
                                name=f"{name}-{i}") for i in range(processes)]
    for child in children:
        child.start()
    collected: list[Any] = []
    shown = 0
    try:
        while len(collected) < processes:
            with read.get_lock():
                done = int(read.value)
            advance(done - shown)
            shown = done
            try:
                collected.append(results.get(timeout=0.2))
            except queue.Empty:
                failed = [c.name for c in children if c.exitcode not in (None, 0)]
                if failed:
                    raise GraphsentryError(f"{name} process(es) failed: {', '.join(failed)}"
                                           ) from None
    except KeyboardInterrupt:
        for child in children:
            if child.is_alive():
                child.terminate()
        deadline = time.monotonic() + grace_seconds
        while len(collected) < processes and time.monotonic() < deadline:
            try:
                collected.append(results.get(timeout=0.5))
            except queue.Empty:
                if not any(c.is_alive() for c in children):
                    break
        raise ClusterInterrupted(collected) from None
    finally:
        for child in children:
            child.join(timeout=grace_seconds)
            if child.is_alive():
                child.kill()
    return collected
