"""Simulated days and the pacing of request sequences (event time as epoch seconds, UTC)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime

HOUR = 3600.0
MINUTE = 60.0
DAY = 86400.0


@dataclass(frozen=True)
class Day:
    index: int
    start: float
    last: bool

    @property
    def weekend(self) -> bool:
        return datetime.fromtimestamp(self.start, UTC).weekday() >= 5

    def at(self, hours: float) -> float:
        return self.start + hours * HOUR


def make_days(first: date, count: int) -> list[Day]:
    base = datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp()
    return [Day(i, base + i * DAY, i == count - 1) for i in range(count)]


class Pacer:
    """Hands out increasing timestamps with random gaps, like a client working through a list."""

    def __init__(self, rng: random.Random, start: float, gap: tuple[float, float]) -> None:
        self.rng = rng
        self.now = start
        self.gap = gap

    def next(self) -> float:
        self.now += self.rng.uniform(*self.gap)
        return self.now

    def wait(self, seconds: float) -> None:
        self.now += seconds
