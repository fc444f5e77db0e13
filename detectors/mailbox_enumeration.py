"""mailbox_enumeration: one principal touches many users' mailboxes in one window.

What: per principal and tumbling event-time window (default 10 min), count requests on the
``mail`` family (messages, mailFolders, ...), allowed or denied, and the distinct mailboxes
they name (``target_user``). ``/me/…`` and ``/users/{own id}/…`` are the caller's own
mailbox and count as one. Fires when distinct mailboxes ≥ ``min_mailboxes`` (5).

Why: an app-only token with ``Mail.Read`` can read every mailbox in the tenant; GraphRunner
and GraphSpy loop over ``/users/{upn}/mailFolders/Inbox/messages``. Public rules count this per
delegated session (Google SecOps G7: > 10 users in 5 min) or on the Unified Audit Log (Splunk
X16: > 5 mailboxes per app in 10 min); this one works per principal on Graph logs, app-only
included (detection-reference §5.13). Denied attempts count: probing which mailboxes the
token may open is enumeration too.

ATT&CK: TA0009 Collection; T1114.002 Email Collection: Remote Email Collection.

False positives: journaling, archiving, backup and eDiscovery apps; shared-mailbox tooling
(helpdesk apps polling a handful of team mailboxes — raise ``min_mailboxes`` for them);
calendar or room-booking apps that read mail folders of many resource mailboxes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from detectors._accumulators import Activity, CappedSet, target_user_key, validate_params
from detectors.base import DetectorMeta, EventContext, WindowedDetector
from detectors.event import GraphEvent


@dataclass(frozen=True, slots=True)
class Params:
    window_seconds: float = 600.0
    """Tumbling window length in seconds."""
    min_mailboxes: int = 5
    """Distinct mailboxes (target users) touched by one principal."""

    def __post_init__(self) -> None:
        validate_params(self, "min_mailboxes")


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

    def __init__(self, params: Params | None = None) -> None:
        self.params = params or Params()
        self.window_seconds = self.params.window_seconds

    def relevant(self, event: GraphEvent, ctx: EventContext) -> bool:
        return event.family == "mail"

    def new_accumulator(self) -> MailReads:
        return MailReads()

    def add(self, acc: MailReads, event: GraphEvent, ctx: EventContext) -> None:
        acc.count(event)
        acc.mailboxes.add(target_user_key(event))

    def crossed(self, acc: MailReads) -> bool:
        return acc.mailboxes.size >= self.params.min_mailboxes

    def evidence(self, acc: MailReads) -> dict[str, Any]:
        return {**acc.evidence(), "mailboxes": acc.mailboxes.summary()}
