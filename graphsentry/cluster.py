"""What every multi-process Bytewax command shares: free local ports for the workers'
addresses, and recovery partitions created once."""

from __future__ import annotations

import socket
from pathlib import Path

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
