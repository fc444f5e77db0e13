"""The alert layer: from detector signals to what an analyst triages (pure Python).

Small stages, in order, per principal (``book.AlertBook``):

1. **exceptions** (``exceptions``): mark a signal with the ids of the exceptions whose scope
   and validity (by event time) cover it — marked, never deleted;
2. **risk** (``risk``): score each signal 1 to 100 from its severity, fidelity and context (new
   network, new client, unusual hour, privileged token, learning period, first-party app);
3. **promotion and grouping** (``book``): a principal has at most one alert per horizon
   bucket (default a UTC day). A high-fidelity signal raises it (kind ``detector``); it
   becomes a *risk alert* once the principal's risk over the trailing horizon crosses the
   threshold with signals of ``min_detectors`` detectors, and an *incident* (detector
   ``attack_chain``) once its signals span ``min_stages`` attack stages;
4. **lifecycle**: every change of an alert (a signal joining, a signal becoming final) is
   emitted with the same ``alert_id`` and a revision that is a function of its signals, so the
   last version is the same for any arrival order, worker count or replay.

No Bytewax, Kafka or Redis here; ``render`` builds the wire dicts
(``schemas/graph_signal.avsc``, ``schemas/graph_alert.avsc``).
"""
