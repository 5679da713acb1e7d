"""Fault: the optimizer daemon is killed (SIGKILL) while it posts a batch, and again later with requests in
flight; each time it is started again and the campaign goes on to its budget, repeating nothing."""

from __future__ import annotations

import pytest

from .audit import audit
from .lab import wait_for

pytestmark = pytest.mark.slow

BATCH = 3
BUDGET = 7


def test_an_optimizer_killed_mid_batch_repeats_no_request_and_spends_its_budget(make_lab):
    lab = make_lab({"LABWEAVE_SWEEP_SECONDS": "0.5"})
    # killed as soon as its first request of the first batch is stored: usually before the batch is complete
    tenant, optimizer = lab.launch("optimizer-killed", budget=BUDGET, batch_size=BATCH, pulses=(150, 400), lease=5)
    wait_for(lambda: lab.count("optimizer-killed", "pending", "reserved", "resolved"), 60,
             "the first request of the batch", every=0.002)
    optimizer.kill()
    first_kill = len(lab.campaign_requests("optimizer-killed"))

    # started again, and killed again with a batch in flight
    optimizer = lab.optimizer("optimizer-killed")
    lab.wait_under_way("optimizer-killed", 3, lambda: lab.count("optimizer-killed", "pending", "reserved"))
    optimizer.kill()
    second_kill = len(lab.campaign_requests("optimizer-killed"))

    optimizer = lab.optimizer("optimizer-killed")
    lab.wait_finished(optimizer, 120)
    assert tenant.stop() == 0, tenant.tail()

    figures = audit(lab, "optimizer-killed", budget=BUDGET)
    assert figures["statuses"] == {"resolved": BUDGET}
    assert 1 <= first_kill <= BATCH and 3 < second_kill < BUDGET, (first_kill, second_kill)
    # every request but those whose answer a kill cut short was acknowledged to a daemon (and is stored)
    assert BUDGET - 2 <= figures["acknowledged_requests"] <= BUDGET
