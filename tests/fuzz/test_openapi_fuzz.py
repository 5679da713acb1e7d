"""Schemathesis against the server's own /openapi.json: no generated input may
cause a 5xx, whoever sends it (issue: trust for an unattended night).

Each operation of the document gets ``LABWEAVE_FUZZ_EXAMPLES`` generated cases
(10 by default; CI runs the default), each sent by an operator, a requester and a tenant.
"""

from __future__ import annotations

import os
import time

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from ..server.helpers import flow_lab

EXAMPLES = int(os.environ.get("LABWEAVE_FUZZ_EXAMPLES", "10"))
USERS = ("op", "alice", "asab")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    return flow_lab(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'lab.db'}")


def streams(operation) -> bool:
    """Whether the operation answers a server-sent event stream (as its responses say)."""
    return any("text/event-stream" in (response.get("content") or {})
               for response in operation.definition.raw.get("responses", {}).values())


def operations(lab):
    """Every operation but the event streams, which answer for as long as the client listens."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", lab.client.app)
    ops = [result.ok() for result in schema.get_all_operations()]
    return [op for op in ops if not streams(op)]


def fuzz(lab, operation) -> int:
    sent = 0

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(case):
        nonlocal sent
        for user in USERS:
            response = case.call(headers=lab.headers(user))
            sent += 1
            assert response.status_code < 500, (
                f"{user}: {case.method} {case.formatted_path} {case.query or ''} {str(case.body)[:300]}: "
                f"{response.status_code} {response.text[:500]}"
            )

    run()
    return sent


@pytest.mark.slow
def test_no_generated_input_makes_a_server_error(lab):
    ops = operations(lab)
    assert len(ops) > 30, "the document lists fewer operations than the server has"
    failures, sent = [], 0
    for operation in ops:
        started = time.monotonic()
        try:
            sent += fuzz(lab, operation)
        except AssertionError as exc:
            failures.append(str(exc).splitlines()[0][:800])
        print(f"{operation.method.upper()} {operation.path}: {time.monotonic() - started:.1f} s")
    print(f"fuzz: {len(ops)} operations, {sent} requests sent")
    assert not failures, "\n".join(failures)
