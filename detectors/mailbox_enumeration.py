"""mailbox_enumeration: one principal touches many users' mailboxes, beyond its usual.

What: per principal, app and tumbling event-time window (10 minutes, 1 hour, 1 day), count
requests on the ``mail`` family (messages, mailFolders, ...), allowed or denied, naming
another user's mailbox (``target_user``; ``/me/…`` and ``/users/{own id}/…`` are the caller's
own and never count), and the distinct mailboxes. A window crosses when distinct mailboxes ≥
``min_mailboxes`` and, once the principal is established, ≥ ``baseline_multiplier`` times its own
peak (same window length, same time of day, last 14 days, sealed one lateness before the
window): a compliance archiver that reads a hundred-plus mailboxes every night at 02:00 has
that as its baseline; the same sweep at noon, or by a principal that never read other
mailboxes, is a signal.

Why: an app-only token with ``Mail.Read`` can read every mailbox in the tenant; GraphRunner
and GraphSpy loop over ``/users/{upn}/mailFolders/Inbox/messages``. Public rules count this per
delegated session (Google SecOps G7: > 10 users in 5 min) or on the Unified Audit Log (Splunk
X16: > 5 mailboxes per app in 10 min); this one works per principal on Graph logs, app-only
included (detection-reference §5.13). Denied attempts count: probing which mailboxes the
token may open is enumeration too.

ATT&CK: TA0009 Collection; T1114.002 Email Collection: Remote Email Collection.

False positives: journaling, archiving, backup and eDiscovery apps in their learning period;
calendar or room-booking apps that read mail folders of many resource mailboxes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from detectors._accumulators import (
    Activity,
    CappedSet,
    caller_id,
    target_user_key,
    validate_params,
)
from detectors.base import DetectorMeta, EventContext, Slot
from detectors.event import GraphEvent
from detectors.windows import WindowedDetector, above, peak_of, per_window


@dataclass(frozen=True, slots=True)
class Params:
    windows: tuple[float, ...] = (600.0, 3600.0, 86_400.0)
    """Tumbling window lengths in seconds (10 min, 1 h, 1 day)."""
    min_mailboxes: tuple[int, ...] = (5, 10, 25)
    """Distinct mailboxes of other users touched, per window length."""
    baseline_multiplier: float = 3.0
    """Once established, mailboxes must reach this multiple of the principal's own peak."""

    def __post_init__(self) -> None:
        validate_params(self, "min_mailboxes")
        per_window(self.min_mailboxes, self.windows, "min_mailboxes")


@dataclass(slots=True)
class MailReads(Activity):
    mailboxes: CappedSet = field(default_factory=CappedSet)


class MailboxEnumeration(WindowedDetector[MailReads]):
    meta = DetectorMeta(
        id="mailbox_enumeration",
        title="Mailbox enumeration through Microsoft Graph",
        description="One principal accessed many users' mailboxes within one window.",
        severity="high",
        tactics=("TA0009",),
        techniques=("T1114.002",),
        stage="collection",
        false_positives=("Journaling, archiving, backup or eDiscovery apps",
                         "Helpdesk tooling polling several shared mailboxes"),
        references=(
            "https://github.com/chronicle/detection-rules/blob/main/rules/community/"
            "microsoft/graph_activity/ms_graph_security_open_inbox_enumeration.yaral",
            "https://github.com/splunk/security_content/blob/develop/detections/cloud/"
            "o365_multiple_mailboxes_accessed_via_api.yml",
        ),
    )

    measures = ("mailboxes",)

    def __init__(self, params: Params | None = None) -> None:
        self.params = params or Params()
        self.windows = self.params.windows

    refined = True

    def relevant(self, event: GraphEvent) -> bool:
        return event.family == "mail"

    def refine(self, event: GraphEvent) -> bool:
        """Another user's mailbox (the caller's own never counts)."""
        target = target_user_key(event)
        return target is not None and target != caller_id(event)

    def new_accumulator(self) -> MailReads:
        return MailReads()

    def add(self, acc: MailReads, event: GraphEvent, ctx: EventContext) -> None:
        acc.count(event)
        acc.mailboxes.add(target_user_key(event))

    def gate(self, acc: MailReads, level: int) -> bool:
        return acc.mailboxes.size >= self.params.min_mailboxes[level]

    def crossed(self, acc: MailReads, level: int, slot: Slot) -> bool:
        p = self.params
        return above(acc.mailboxes.size, p.min_mailboxes[level], peak_of(slot),
                     p.baseline_multiplier)

    def measure(self, acc: MailReads) -> tuple[float, ...]:
        return (float(acc.mailboxes.size),)

    def store_minimum(self, level: int) -> tuple[float, ...]:
        return (self.params.min_mailboxes[level] / self.params.baseline_multiplier,)

    def evidence(self, acc: MailReads) -> dict[str, Any]:
        return {**acc.evidence(), "mailboxes": acc.mailboxes.summary()}
