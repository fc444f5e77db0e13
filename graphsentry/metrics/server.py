"""The HTTP endpoints of a graphsentry process: ``/metrics``, ``/ready`` and ``/live``.

:func:`serve` starts them in a daemon thread when ``metrics.enabled``: ``/metrics`` is the
Prometheus text exposition of the default registry (graphsentry's families, Bytewax's own
Kafka gauge, and the client library's ``process_*`` / ``python_*`` figures); ``/ready`` and
``/live`` answer 200 or 503 with a JSON body saying why (``graphsentry.metrics.health``).

Several processes on one host (``--processes N``) each serve on ``metrics.port + index``;
``metrics.port: 0`` lets each take a free port (announced on stderr).
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import REGISTRY, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from graphsentry.errors import GraphsentryError
from graphsentry.metrics import views  # noqa: F401  (registers the collector)
from graphsentry.metrics.health import HEALTH, KafkaProbe, kafka_clusters, watch

if TYPE_CHECKING:
    from graphsentry.config import Config
    from graphsentry.enrichment.store import EnrichmentStore

StartResponse = Callable[..., Any]
PATHS = ("/metrics", "/ready", "/live")


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log (a scrape every few seconds would flood stderr)."""


_metrics_app = make_wsgi_app(REGISTRY)


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The WSGI application of the endpoints."""
    path = environ.get("PATH_INFO") or "/"
    if path == "/metrics":
        return _metrics_app(environ, start_response)  # type: ignore[no-any-return]
    if path in ("/live", "/ready"):
        healthy, body = HEALTH.live() if path == "/live" else HEALTH.ready()
        status = "200 OK" if healthy else "503 Service Unavailable"
    elif path == "/":
        status, body = "200 OK", {"endpoints": list(PATHS)}
    else:
        status, body = "404 Not Found", {"error": f"no such endpoint {path}",
                                         "endpoints": list(PATHS)}
    data = (json.dumps(body) + "\n").encode("utf-8")
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(data))), ("Cache-Control", "no-store")])
    return [data]


@dataclass
class Server:
    """A running endpoint server; :meth:`close` stops it."""

    host: str
    port: int
    httpd: Any
    thread: threading.Thread

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def start(host: str, port: int) -> Server:
    """Serve :func:`app` on ``host:port`` (0: a free port) in a daemon thread; raises
    :class:`GraphsentryError` when the address cannot be bound."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        raise GraphsentryError(f"metrics.host {host!r} does not resolve: {exc.strerror}") from None

    class Bound(ThreadingWSGIServer):
        address_family = family

    try:
        httpd = make_server(host, port, app, Bound, handler_class=_QuietHandler)
    except OSError as exc:
        raise GraphsentryError(
            f"cannot serve metrics on {host}:{port}: {exc.strerror or exc} (another process "
            "on it? set metrics.port, or metrics.enabled: false)") from None
    thread = threading.Thread(target=httpd.serve_forever, name="graphsentry-metrics",
                              daemon=True)
    thread.start()
    return Server(host, int(httpd.server_address[1]), httpd, thread)


def serve(config: Config, *, name: str, index: int = 0, reads_kafka: bool = True,
          store: Callable[[], EnrichmentStore | None] | None = None) -> Server | None:
    """Start this process's endpoints when ``config.metrics.enabled`` (else None): on
    ``metrics.port + index``; readiness checks the flow's Kafka cluster(s) (the input's too
    when ``reads_kafka``) and reports ``store()``. Announces the address on stderr."""
    settings = config.metrics
    if not settings.enabled:
        return None
    port = settings.port + index if settings.port else 0
    if port > 65_535:
        raise GraphsentryError(f"metrics.port {settings.port} + process index {index} is "
                               "beyond 65535")
    kafka = config.kafka
    watch(kafka=KafkaProbe(kafka_clusters(kafka.bootstrap, kafka.producer, kafka.consumer,
                                          reads_kafka)),
          store=store, liveness_timeout=settings.liveness_timeout_seconds)
    server = start(settings.host, port)
    print(f"graphsentry {name}: metrics on {server.url}/metrics (health: /ready, /live)",
          file=sys.stderr, flush=True)
    return server
