"""``graphsentry health``: ask a running process's ``/live`` and ``/ready`` endpoints.

For container health checks (the image has no curl) and operators: the endpoints are found
from the configuration (``metrics.host``, ``metrics.port``; process N of ``--processes``
listens on ``port + N``), or given with ``--url``. Prints one line per answer; exit status 0
when every answer is 200, 1 otherwise (503, refused, timed out), 2 for a configuration error.
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

from graphsentry.errors import GraphsentryError

if TYPE_CHECKING:
    from graphsentry.config import Config

HELP = "ask the /live and /ready endpoints of running graphsentry processes (exit 1 if not)"
TIMEOUT_S = 5.0
_LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML configuration (default: $GRAPHSENTRY_CONFIG)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--live", action="store_true", help="ask /live only")
    which.add_argument("--ready", action="store_true", help="ask /ready only")
    p.add_argument("--processes", type=int, default=1, metavar="N",
                   help="ask processes 0..N-1 (ports metrics.port + index; default 1)")
    p.add_argument("--url", metavar="URL",
                   help="the base URL of one process (default: from the configuration)")
    p.add_argument("--timeout", type=float, default=TIMEOUT_S, metavar="SECONDS",
                   help=f"per request (default {TIMEOUT_S:g})")


def base_urls(config: Config, processes: int) -> list[str]:
    """The endpoints' base URLs of processes ``0..processes-1`` on this host."""
    metrics = config.metrics
    if not metrics.enabled:
        raise GraphsentryError("metrics.enabled is false: the processes serve no endpoints")
    if metrics.port == 0:
        raise GraphsentryError("metrics.port is 0 (each process took a free port, announced "
                               "on its stderr): give --url")
    host = _LOOPBACK.get(metrics.host, metrics.host)
    host = f"[{host}]" if ":" in host else host
    return [f"http://{host}:{metrics.port + index}" for index in range(processes)]


def _check_url(url: str) -> None:
    """Raise a user-facing error unless ``url`` is ``http(s)://host[:port][/path]``."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is no number or out of range
    except ValueError as exc:
        raise GraphsentryError(f"--url {url}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise GraphsentryError(f"--url must be http://HOST:PORT or https://HOST:PORT, got {url}")


def ask(url: str, timeout: float) -> tuple[int, str]:
    """``(HTTP status, one-line body)``; status 0 when there was no answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), _line(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), _line(exc.read())
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return 0, f"no answer: {reason}"


def _line(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    try:
        return json.dumps(json.loads(text))
    except ValueError:
        return " ".join(text.split())[:500]  # one line, whatever the server sent


def run(args: argparse.Namespace) -> int:
    from graphsentry.config import load_config

    if args.processes < 1:
        raise GraphsentryError(f"--processes must be at least 1, got {args.processes}")
    if args.url:
        _check_url(args.url)
    urls = [args.url.rstrip("/")] if args.url else base_urls(load_config(args.config),
                                                             args.processes)
    paths = ["/live"] if args.live else ["/ready"] if args.ready else ["/live", "/ready"]
    healthy = True
    for base in urls:
        for path in paths:
            status, body = ask(base + path, args.timeout)
            healthy = healthy and status == 200
            print(f"{base}{path}: {status or 'error'} {body}")
    return 0 if healthy else 1
