"""Running a graphsentry command in the background and reading its HTTP endpoints."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

Scrape = dict[tuple[str, frozenset[tuple[str, str]]], float]


class Background:
    """A command whose stderr is collected line by line while it runs."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str | None = None) -> None:
        self.process = subprocess.Popen(argv, env=env, cwd=cwd, stderr=subprocess.PIPE,
                                        text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 60) -> list[re.Match[str]]:
        """The first ``count`` matches of ``pattern`` in stderr lines, waiting for them."""
        deadline = time.monotonic() + timeout
        while True:
            found = [m for line in list(self.lines) if (m := re.search(pattern, line))]
            if len(found) >= count:
                return found[:count]
            assert self.process.poll() is None, f"exited early:\n{self.stderr[-3000:]}"
            assert time.monotonic() < deadline, f"no {pattern!r} in:\n{self.stderr[-3000:]}"
            time.sleep(0.1)

    def stop(self, signum: int, timeout: float = 60) -> int:
        """Send ``signum`` and wait for the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            code = self.process.wait(timeout=timeout)
        finally:
            self.kill()
        self._reader.join(timeout=10)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def get(url: str) -> tuple[int, Any]:
    """``(status, body)``: JSON decoded when it is JSON, text otherwise."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            status, body = response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read().decode()
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


def scrape(base: str) -> Scrape:
    """Every sample of ``base/metrics``."""
    status, text = get(base + "/metrics")
    assert status == 200, text
    out: Scrape = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def total(samples: Scrape, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def by(samples: Scrape, name: str, label: str) -> Counter[str]:
    out: Counter[str] = Counter()
    for (n, labels), value in samples.items():
        if n == name and value:
            out[dict(labels)[label]] += int(value)
    return out


def merged(scrapes: list[Scrape]) -> Scrape:
    """Samples of several processes added up (counters and additive gauges)."""
    out: Scrape = {}
    for one in scrapes:
        for key, value in one.items():
            out[key] = out.get(key, 0) + value
    return out
