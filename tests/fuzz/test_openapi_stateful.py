"""Schemathesis' stateful tests against ``/openapi.json``: sequences of calls that follow the document's
links (a request posted, then read, claimed, heartbeated, failed, retracted; a result posted, then read and
amended; campaigns and tenants found in listings, then changed), as an operator, a requester and a tenant.

Every answer is checked: no 5xx, a body that matches the schema the document gives for its status, the
media type it declares and, for the API (not the dashboard's pages), a status the document lists.

``LABWEAVE_FUZZ_STATEFUL_EXAMPLES`` scenarios per user (default 10), each of up to 10 steps; CI runs the
default.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from labweave.services.server.dashboard.session import COOKIE

from ..server.helpers import flow_lab

EXAMPLES = int(os.environ.get("LABWEAVE_FUZZ_STATEFUL_EXAMPLES", "10"))
USERS = ("op", "alice", "asab")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    return flow_lab(f"sqlite:///{tmp_path_factory.mktemp('stateful') / 'lab.db'}")


def machine(lab, user: str, calls: list[tuple[str, str, int]]):
    """The document's state machine, calling as ``user`` (the bearer token; the dashboard's session cookie)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", lab.client.app)
    # the event streams answer for as long as the client listens: no scenario may open one
    schema = schema.exclude(path_regex=r"/events(/stream)?$").exclude(path="/api/v1/events/stream")

    class AsUser(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case):
            if case.operation.path.startswith("/dashboard"):
                return {"headers": {"Cookie": f"{COOKIE}={lab.tokens[user]}", "Accept": "application/json"}}
            return {"headers": lab.headers(user)}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            calls.append((case.method, case.operation.path, response.status_code))
            checks = [not_a_server_error, response_schema_conformance, content_type_conformance]
            if not case.operation.path.startswith("/dashboard"):  # the pages' redirects and refusals are HTML's
                checks.append(status_code_conformance)
            case.validate_response(response, checks=checks, transport_kwargs=kwargs)

    return AsUser


def test_the_document_links_a_request_to_what_follows_it(lab):
    doc = lab.client.get("/openapi.json").json()
    links = doc["paths"]["/api/v1/requests"]["post"]["responses"]["201"]["links"]
    assert {"ReadRequest", "Heartbeat", "Fail", "Cancel"} <= set(links)
    for link in links.values():  # every link names an operation of the document
        path, method = link["operationRef"].removeprefix("#/paths/").rsplit("/", 1)
        assert method in doc["paths"][path.replace("~1", "/").replace("~0", "~")]


@pytest.mark.slow
@pytest.mark.parametrize("user", USERS)
def test_stateful_sequences_answer_as_documented(lab, user):
    calls: list[tuple[str, str, int]] = []
    machine(lab, user, calls).run(settings=settings(
        max_examples=EXAMPLES, stateful_step_count=10, deadline=None, database=None,
        suppress_health_check=list(HealthCheck)))
    linked = [c for c in calls if "{" in c[1] and 200 <= c[2] < 300]
    print(f"stateful ({user}): {len(calls)} calls, {len(linked)} answered 2xx on a path naming a real object")
    assert calls, "the state machine made no call"
    assert linked, "no linked call reached a real object: the links do not connect"
