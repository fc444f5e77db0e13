"""The engine and the alert layer as a whole: several principals (app-only service principals,
a delegated user across apps), every detector, exceptions of every scope (some expiring in
the middle of the day) and alert policies from strict to loose. Any arrival order within the
lateness and any duplication give the same signal ids, final signal bodies, alert ids and
last alert versions (revision and body) — also when the states are snapshotted (pickled, as
Bytewax does) and restored at any point of the stream."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from detectors import catalog
from graphsentry.alerting.exceptions import ExceptionSet
from graphsentry.alerting.policy import AlertPolicy
from tests.detectors.factory import Recorder, in_time_order, settings
from tests.detectors.orders import arrivals, outcome, property_settings, within_lateness
from tests.detectors.workloads import EXCEPTIONS, KINDS, parts, small_params, workload

POLICIES = st.builds(AlertPolicy, risk_threshold=st.sampled_from((40.0, 100.0)),
                     min_stages=st.sampled_from((2, 3)))


def engine(policy: AlertPolicy, exceptions: ExceptionSet) -> Recorder:
    detectors = catalog.build_detectors(small_params())
    return Recorder(detectors, settings(policy=policy), exceptions)


@property_settings(150)
@given(data=st.data())
def test_signals_and_alerts_do_not_depend_on_arrival(data: st.DataObject) -> None:
    kinds = data.draw(st.lists(st.sampled_from(sorted(KINDS)), min_size=2, max_size=5,
                               unique=True), label="detectors")
    events = data.draw(workload([KINDS[k] for k in kinds], principals=2), label="events")
    arrival = data.draw(arrivals(events), label="arrival")
    assert within_lateness(arrival)
    policy = data.draw(POLICIES, label="policy")
    chosen = data.draw(st.lists(st.sampled_from(EXCEPTIONS), unique_by=lambda e: e.id),
                       label="exceptions")
    exceptions = ExceptionSet(tuple(chosen))
    snapshot = data.draw(st.integers(0, len(arrival)), label="snapshot after")
    expected = outcome(engine(policy, exceptions), in_time_order(events), parts)
    got = outcome(engine(policy, exceptions), arrival, parts, snapshot_after=snapshot)
    assert not expected.differences(got), "\n".join(expected.differences(got))
