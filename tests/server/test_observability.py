"""Request ids through server, client and daemons; JSON log lines; the access log's metrics."""

from __future__ import annotations

import asyncio
import json
import logging
import re

import httpx

from labweave.services import logs
from labweave.services.client import AsyncLabClient

from .helpers import flow_lab, flow_request


def test_the_server_keeps_a_well_formed_request_id_and_replaces_any_other(tmp_path):
    lab = flow_lab(f"sqlite:///{tmp_path}/lab.db")
    kept = lab.client.get("/healthz/live", headers={"X-Request-ID": "trace-42"})
    assert kept.headers["X-Request-ID"] == "trace-42"
    made = lab.client.get("/healthz/live")
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-ID"])
    for forged in ("a b", "x" * 200, "line\nbreak", "-starts-with-a-dash"):
        answer = lab.client.get("/healthz/live", headers={"X-Request-ID": forged})
        assert answer.headers["X-Request-ID"] != forged and re.fullmatch(r"[0-9a-f]{32}",
                                                                         answer.headers["X-Request-ID"])


def test_the_access_log_is_one_json_line_per_call_naming_route_status_and_request_id(tmp_path, capsys):
    lab = flow_lab(f"sqlite:///{tmp_path}/lab.db")
    logs.configure_logging("INFO", "json")
    try:
        created = lab.post("alice", "/requests/", json=flow_request(), headers={"X-Request-ID": "batch-7"})
        missing = lab.get("alice", "/api/v1/requests/no-such-request", headers={"X-Request-ID": "look-1"})
    finally:
        logs.configure_logging("WARNING", "text")
    assert created.status_code == 200 and missing.status_code == 404
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    access = {line["request_id"]: line for line in lines if line["logger"] == "labweave.access"}
    assert access["batch-7"]["route"] == "/requests/" and access["batch-7"]["status"] == 200
    assert access["look-1"]["route"] == "/api/v1/requests/{request_uuid}" and access["look-1"]["status"] == 404
    assert access["look-1"]["path"] == "/api/v1/requests/no-such-request"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", access["look-1"]["time"])
    assert access["look-1"]["level"] == "INFO" and access["look-1"]["duration_ms"] >= 0


def test_answers_are_counted_by_route_template_not_by_path(tmp_path):
    lab = flow_lab(f"sqlite:///{tmp_path}/lab.db")
    for n in range(3):
        lab.get("alice", f"/api/v1/requests/missing-{n}")
    text = lab.client.get("/metrics").text
    assert 'labweave_http_responses_total{method="GET",route="/api/v1/requests/{request_uuid}",status="404"} 3.0' in text
    assert "missing-0" not in text
    assert 'labweave_http_request_seconds_count{route="/api/v1/requests/{request_uuid}"} 3.0' in text


def test_the_client_sends_the_bound_request_id_and_the_same_one_on_each_retry():
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/user_management/authenticate":
            return httpx.Response(200, json={"access_token": "a.e30.b", "token_type": "bearer"})
        seen.append(request.headers["X-Request-ID"])
        if len(seen) in (1, 3):
            return httpx.Response(503, json={"detail": "busy"}, headers={"Retry-After": "0"})
        return httpx.Response(200, json={"username": "alice", "role": "requester"})

    async def scenario():
        async with AsyncLabClient("http://lab", "alice", "pw", transport=httpx.MockTransport(handle),
                                  backoff=0.0) as alice:
            with logs.request_id_bound("job-uuid-1"):
                await alice.me()
            await alice.me()

    asyncio.run(scenario())
    assert seen[:2] == ["job-uuid-1", "job-uuid-1"]
    assert seen[2] == seen[3] != "job-uuid-1" and re.fullmatch(r"[0-9a-f]{32}", seen[2])


def test_text_lines_carry_the_request_id_too(capsys):
    logs.configure_logging("INFO", "text")
    try:
        with logs.request_id_bound("r-1"):
            logging.getLogger("labweave.test").info("inside")
        logging.getLogger("labweave.test").info("outside")
    finally:
        logs.configure_logging("WARNING", "text")
    err = capsys.readouterr().err
    assert re.search(r"INFO labweave\.test \[r-1\]: inside", err)
    assert re.search(r"INFO labweave\.test \[-\]: outside", err)


def test_what_a_replica_did_is_counted_where_metrics_are_scraped(tmp_path):
    """Claims and their wait, heartbeats, refused results and the sweeper's expiries, after real calls."""
    import time

    from prometheus_client.parser import text_string_to_metric_families

    from .helpers import flow_result

    lab = flow_lab(f"sqlite:///{tmp_path}/lab.db")
    for _ in range(3):
        assert lab.post("alice", "/requests/", json=flow_request()).status_code == 200
    time.sleep(0.2)  # each claimed request has waited at least this long
    held = lab.post("asab", "/api/v1/claims", json={}).json()["request"]["uuid"]
    dropped = lab.post("asab", "/api/v1/claims", json={"lease_seconds": 0.5}).json()["request"]["uuid"]
    reserved = lab.post("asab2", "/api/v1/claims", json={"quantity": "nothing-served"})
    assert reserved.status_code == 204  # nothing taken: not counted
    assert lab.post("asab", f"/api/v1/requests/{held}/heartbeat").status_code == 200
    assert lab.post("asab2", f"/api/v1/requests/{held}/heartbeat").status_code == 409
    asab = lab.tenants["ASAB_tenant"]
    bad = flow_result(held, asab) | {"data": {}}
    assert lab.post("asab", "/api/v1/results", json=bad).status_code == 422
    assert lab.post("asab", "/api/v1/results", json=flow_result(held, asab)).status_code == 201
    twice = flow_result(held, asab)
    twice["data"]["run_info"]["internal_reference"] = "another run"  # other data for a resolved request
    assert lab.post("asab", "/api/v1/results", json=twice).status_code == 409
    assert lab.post("asab2", "/api/v1/results", json=flow_result(dropped, asab)).status_code == 403
    lab.client.app.state.sweep_leases()  # the sweeper sees the lease of ``dropped`` (its clock starts)
    time.sleep(0.6)
    lab.client.app.state.sweep_leases()  # and now it ran out, no heartbeat since

    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(lab.client.get("/metrics").text)
               for s in family.samples}
    q = (("quantity", "electrolyte"),)
    assert samples[("labweave_claims_total", q)] == 2
    assert samples[("labweave_claim_wait_seconds_count", q)] == 2
    assert samples[("labweave_claim_wait_seconds_bucket", (("le", "0.1"), *q))] == 0
    assert 0.4 <= samples[("labweave_claim_wait_seconds_sum", q)] < 60
    assert samples[("labweave_heartbeats_total", (("outcome", "extended"),))] == 1
    assert samples[("labweave_heartbeats_total", (("outcome", "lost"),))] == 1
    refused = {labels: v for (name, labels), v in samples.items() if name == "labweave_results_refused_total"}
    assert refused == {(("reason", "invalid"), ("status", "422")): 1, (("reason", "conflict"), ("status", "409")): 1,
                       (("reason", "forbidden"), ("status", "403")): 1}
    assert samples[("labweave_sweeper_lease_expiries_total", ())] == 1
