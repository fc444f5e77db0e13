"""Every detector, through the engine and the alert layer: any arrival order within the
lateness and any duplication give the same signal ids, final signal bodies, alert ids and
last alert versions (``tests/detectors/orders.py`` defines the arrival model,
``tests/detectors/workloads.py`` the events)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors import catalog
from graphsentry.alerting.exceptions import ExceptionSet
from graphsentry.alerting.policy import AlertPolicy
from tests.detectors.factory import Recorder, in_time_order, settings
from tests.detectors.orders import arrivals, outcome, property_settings, within_lateness
from tests.detectors.workloads import EXCEPTIONS, KINDS, parts, workload

POLICIES = st.builds(AlertPolicy, risk_threshold=st.sampled_from((20.0, 60.0, 100.0)),
                     min_stages=st.sampled_from((1, 2, 3)))
"""Low thresholds too, so that one detector's signals make risk alerts and incidents."""


@pytest.mark.parametrize("detector_id", catalog.DETECTOR_IDS)
@property_settings(100)
@given(data=st.data())
def test_final_signals_and_alerts_do_not_depend_on_arrival(detector_id: str,
                                                            data: st.DataObject) -> None:
    kind = KINDS[detector_id]
    events = data.draw(workload([kind]), label="events")
    arrival = data.draw(arrivals(events), label="arrival")
    policy = data.draw(POLICIES, label="policy")
    exceptions = ExceptionSet(tuple(data.draw(
        st.lists(st.sampled_from(EXCEPTIONS), unique_by=lambda e: e.id), label="exceptions")))
    assert within_lateness(arrival)
    expected = outcome(Recorder([kind.detector()], settings(policy=policy), exceptions),
                       in_time_order(events), parts)
    got = outcome(Recorder([kind.detector()], settings(policy=policy), exceptions), arrival,
                  parts)
    assert not expected.differences(got), "\n".join(expected.differences(got))
