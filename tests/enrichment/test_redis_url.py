"""A redis.url that cannot work is a one-line error naming the key (never the password): a URL
redis-py cannot parse, rejected by the configuration model, and an address where something other
than Redis answers, rejected by the start-up probe. No Redis is needed: the server that is not
Redis is a plain HTTP responder on a local socket."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from graphsentry.cli import main
from graphsentry.config import ConfigError, config_from_dict
from graphsentry.enrichment.redis_store import RedisStore
from graphsentry.errors import GraphsentryError

HTTP_ANSWER = b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n"


@pytest.fixture
def http_port() -> Iterator[int]:
    """A local server answering every connection with an HTTP 400, as a web server would."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1.0)
                try:
                    conn.recv(4096)
                    conn.sendall(HTTP_ANSWER)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join(timeout=2)
    listener.close()


@pytest.mark.parametrize(("url", "problem"), [
    ("notaurl", "redis.url: must be a redis://, rediss:// or unix:// URL"),
    ("http://user:hunter2@host:80", "redis.url: must be a redis://, rediss:// or unix:// URL, "
                                    "got scheme 'http'"),
    ("redis://:hunter2@host:99999/0", "redis.url: not a valid URL (check the host and port)"),
])
def test_config_rejects_a_url_redis_cannot_use(url: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"redis": {"url": url}}, "test.yaml", env={})
    assert info.value.problems == [problem]
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "rediss://u:p@redis.example:6380/1",
                                 "unix:///run/redis.sock?db=2", None])
def test_config_accepts_redis_urls(url: str | None) -> None:
    assert config_from_dict({"redis": {"url": url}}, env={}).redis.url == url


@pytest.mark.parametrize("argv", [["exceptions", "list"], ["enrich", "show-app", "x"],
                                  ["run"], ["config", "check"]])
def test_commands_reject_a_malformed_redis_url_from_the_environment(
        argv: list[str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("GRAPHSENTRY_CONFIG", raising=False)
    monkeypatch.setenv("REDIS_URL", "notaurl")
    assert main(argv) == 2
    assert capsys.readouterr() == (
        "", f"graphsentry {argv[0]}: error: invalid configuration <defaults>:\n"
            "  - redis.url (from $REDIS_URL): must be a redis://, rediss:// or unix:// URL\n")


def test_probe_names_a_server_that_is_not_redis(http_port: int) -> None:
    store = RedisStore(f"redis://:hunter2@127.0.0.1:{http_port}/0", socket_timeout_seconds=1.0)
    with pytest.raises(GraphsentryError) as info:
        store.probe()
    store.close()
    message = str(info.value)
    assert message.startswith(f"Redis at redis://:***@127.0.0.1:{http_port}/0 did not answer "
                              "as Redis: Protocol error")
    assert message.endswith("(is redis.url the address of a Redis server?)")
    assert "hunter2" not in message


def test_enrich_show_app_at_a_server_that_is_not_redis(
        http_port: int, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("GRAPHSENTRY_CONFIG", raising=False)
    assert main(["enrich", "--redis-url", f"redis://127.0.0.1:{http_port}/0",
                 "show-app", "x"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"graphsentry enrich: error: Redis at redis://127.0.0.1:{http_port}/0 "
                          "did not answer as Redis: ")
    assert err.count("\n") == 1


@pytest.mark.parametrize(("url", "problem"), [
    ("notaurl", "--url must be http://HOST:PORT or https://HOST:PORT, got notaurl"),
    ("http://127.0.0.1:99999", "--url http://127.0.0.1:99999: Port out of range 0-65535"),
])
def test_health_rejects_a_malformed_url(url: str, problem: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["health", "--url", url]) == 2
    assert capsys.readouterr() == ("", f"graphsentry health: error: {problem}\n")
