"""Enrichment fixtures: sample ip2asn and app-directory files, and a throwaway redis-server."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from graphsentry.enrichment.redis_store import RedisStore

IP2ASN = (
    "1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET\n"
    "1.0.1.0\t1.0.3.255\t0\tNone\tNot routed\n"
    "20.0.0.0\t20.31.255.255\t8075\tUS\tMICROSOFT-CORP-MSN-AS-BLOCK\n"
    "203.0.113.0\t203.0.113.255\t64500\tZZ\tEXAMPLE-NET\n"
    "garbage line\n"
    "10.0.0.9\t10.0.0.1\t64501\tZZ\tINVERTED\n"
    "2001:db8::\t2001:db8:0:ffff:ffff:ffff:ffff:ffff\t64501\tZZ\tEXAMPLE-V6\n"
    "2001:db8:1::\t2001:db8:1:0:ffff:ffff:ffff:ffff\t64502\tZZ\tEXAMPLE-V6-SUB\n"
    "2001:db9::\t2001:db9::ff\tASX\tZZ\tBAD-ASN\n"
)


@pytest.fixture
def ip2asn_file(tmp_path: Path) -> Path:
    path = tmp_path / "ip2asn-combined.tsv"
    path.write_text(IP2ASN)
    return path


@pytest.fixture
def store(redis_url: str, redis_namespace: str) -> Iterator[RedisStore]:
    made = RedisStore(redis_url, key_prefix=redis_namespace, retry_seconds=0.2)
    yield made
    made.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A real redis-server of our own on a free port, stoppable and restartable."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()
