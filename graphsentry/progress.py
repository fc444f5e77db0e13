"""A tiny dependency-free progress line on stderr.

``with Progress(total, "writing") as p: p.advance()`` redraws one line at most ``max_rate``
times a second, only when the stream is a terminal (or ``force=True``), and ends with a summary
line. ``total`` may be 0 or unknown (``None``): the line then shows a count only.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO


class Progress:
    def __init__(self, total: int | None, label: str, *, stream: TextIO | None = None,
                 force: bool | None = None, max_rate: float = 10.0) -> None:
        self.total = total
        self.label = label
        self._stream = stream
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = force if force is not None else bool(isatty and isatty())
        self.interval = 1.0 / max_rate
        self.done = 0
        self._started = 0.0
        self._last_draw = 0.0

    @property
    def stream(self) -> TextIO:
        """The stream given, else ``sys.stderr`` as it is now (looked up at each write: while
        ``graphsentry.cluster.native_stderr`` sends fd 2 to a log, ``sys.stderr`` still writes
        to the terminal)."""
        return self._stream if self._stream is not None else sys.stderr

    def __enter__(self) -> Progress:
        self._started = self._last_draw = time.monotonic()
        return self

    def advance(self, count: int = 1) -> None:
        self.done += count
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last_draw >= self.interval:
            self._last_draw = now
            self._draw(now)

    def _line(self, now: float) -> str:
        elapsed = now - self._started
        if self.total:
            percent = 100.0 * self.done / self.total
            return f"{self.label}: {self.done}/{self.total} ({percent:5.1f}%) {elapsed:6.1f}s"
        return f"{self.label}: {self.done} {elapsed:6.1f}s"

    def _draw(self, now: float) -> None:
        self.stream.write("\r\x1b[2K" + self._line(now))
        self.stream.flush()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if not self.enabled:
            return
        status = "" if exc_type is None else " (interrupted)"
        self.stream.write("\r\x1b[2K" + self._line(time.monotonic()) + status + "\n")
        self.stream.flush()
