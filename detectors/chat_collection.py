"""chat_collection: one principal reads the messages of many Teams chats or channels.

What: per principal, app and tumbling event-time window (10 minutes, 1 hour, 1 day), count
reads of chat and channel messages (``/chats/{id}/messages``, ``/me/chats/{id}/messages``,
``/users/{id}/chats/{id}/messages``, ``/teams/{id}/channels/{id}/messages`` and their
replies), the distinct chats and channels they reach, and tenant-wide exports
(``…/getAllMessages``). A window crosses when distinct chats ≥ ``min_chats`` or exports ≥
``min_exports`` and, once the principal is established, that count also reaches
``baseline_multiplier`` times its own peak (same window length, same time of day, last 14 days,
sealed one lateness before the window).

Why: a replayed Teams or Graph token reading a user's (or, app-only with ``Chat.Read.All``,
everyone's) chats is collection that a byte floor misses: a hundred chats are a few MiB
(TeamFiltration, GraphRunner's ``Invoke-SearchTeams``, AADInternals' Teams functions). A
person's client reads the few chats they open; an archiving app has its nightly sweep as its
baseline.

ATT&CK: TA0009 Collection; T1213.005 Data from Information Repositories: Messaging
Applications.

False positives: compliance archivers, eDiscovery and backup apps for Teams in their learning
period; bots that read every channel of the teams they are in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from detectors._accumulators import Activity, CappedSet, validate_params
from detectors.base import DetectorMeta, EventContext, Slot
from detectors.event import GraphEvent
from detectors.templates import canonical_template
from detectors.windows import WindowedDetector, above, peak_of, per_window

EXPORT_ACTION = "getallmessages"


@dataclass(frozen=True, slots=True)
class Params:
    windows: tuple[float, ...] = (600.0, 3600.0, 86_400.0)
    """Tumbling window lengths in seconds (10 min, 1 h, 1 day)."""
    min_chats: tuple[int, ...] = (10, 20, 50)
    """Distinct chats or channels whose messages were read, per window length."""
    min_exports: int = 1
    """Tenant- or user-wide message exports (``getAllMessages``)."""
    baseline_multiplier: float = 3.0
    """Once established, the count must also reach this multiple of the principal's peak."""

    def __post_init__(self) -> None:
        validate_params(self, "min_chats")
        per_window(self.min_chats, self.windows, "min_chats")


def conversation_of(template: str, uri: str) -> str | None:
    """``chat:<id>`` or ``channel:<team>/<channel>`` whose messages a request reads, ``export``
    for a ``getAllMessages`` call, None for anything else."""
    canonical = canonical_template(template)
    if canonical.endswith("/" + EXPORT_ACTION):
        return "export"
    if "/messages" not in canonical or not ("/chats/{id}/" in canonical
                                            or "/channels/{id}/" in canonical):
        return None
    words = [w for w in urlsplit(uri).path.split("/") if w]
    lowered = [w.lower() for w in words]
    for i, word in enumerate(lowered[:-1]):
        if word == "chats":
            return f"chat:{words[i + 1].lower()}"
        if word == "channels" and i >= 2 and lowered[i - 2] == "teams":
            return f"channel:{words[i - 1].lower()}/{words[i + 1].lower()}"
    return None


def is_message_read(event: GraphEvent) -> bool:
    """A read of chat or channel messages (shape fields only)."""
    if event.method != "GET":
        return False
    canonical = canonical_template(event.template)
    return canonical.endswith("/" + EXPORT_ACTION) or (
        "/messages" in canonical and ("/chats/{id}/" in canonical
                                      or "/channels/{id}/" in canonical))


@dataclass(slots=True)
class ChatReads(Activity):
    chats: CappedSet = field(default_factory=CappedSet)
    exports: int = 0


class ChatCollection(WindowedDetector[ChatReads]):
    meta = DetectorMeta(
        id="chat_collection",
        title="Teams chat or channel messages collected through Microsoft Graph",
        description="One principal read the messages of many chats or channels within a "
                    "window, beyond its own usual reads.",
        severity="medium",
        tactics=("TA0009",),
        techniques=("T1213.005",),
        stage="collection",
        fidelity="medium",
        false_positives=("Teams compliance archivers, eDiscovery or backup apps in their "
                         "learning period", "Bots reading every channel of their teams"),
        references=(
            "https://learn.microsoft.com/en-us/graph/api/chat-list-messages",
            "https://attack.mitre.org/techniques/T1213/005/",
            "https://github.com/Flangvik/TeamFiltration",
        ),
    )
    measures = ("chats", "exports")

    def __init__(self, params: Params | None = None) -> None:
        self.params = params or Params()
        self.windows = self.params.windows

    def relevant(self, event: GraphEvent) -> bool:
        return is_message_read(event)

    def new_accumulator(self) -> ChatReads:
        return ChatReads()

    def add(self, acc: ChatReads, event: GraphEvent, ctx: EventContext) -> None:
        acc.count(event)
        conversation = conversation_of(event.template, event.uri)
        if conversation == "export":
            acc.exports += 1
        else:
            acc.chats.add(conversation)

    def gate(self, acc: ChatReads, level: int) -> bool:
        p = self.params
        return acc.chats.size >= p.min_chats[level] or acc.exports >= p.min_exports

    def crossed(self, acc: ChatReads, level: int, slot: Slot) -> bool:
        p = self.params
        mult = p.baseline_multiplier
        return (above(acc.chats.size, p.min_chats[level], peak_of(slot, 0), mult)
                or above(acc.exports, p.min_exports, peak_of(slot, 1), mult))

    def measure(self, acc: ChatReads) -> tuple[float, ...]:
        return (float(acc.chats.size), float(acc.exports))

    def store_minimum(self, level: int) -> tuple[float, ...]:
        p = self.params
        return (p.min_chats[level] / p.baseline_multiplier, p.min_exports / p.baseline_multiplier)

    def evidence(self, acc: ChatReads) -> dict[str, Any]:
        return {**acc.evidence(), "chats": acc.chats.summary(), "exports": acc.exports}
