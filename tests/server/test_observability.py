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
