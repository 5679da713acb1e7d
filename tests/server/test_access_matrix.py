"""Every route of the app against every role, on a real app with real rows.

The table :data:`MATRIX` has one row per route (method and path, as the app
declares it) and one column per role; each cell is what that role gets:

- a status code (``401``, ``403``, ``404``, ``409``, ``200``...),
- ``seen`` / ``hidden``: a 200 whose answer shows / does not show the
  scene's subject (the reserved request, its result, the campaign or their
  events), for listings, pages and event streams,
- ``null``: FINALES2's "not found" for a read (a 200 whose body is ``null``).

The rule the cells follow is written once, in the docstring of
``services/server/visibility.py``. The routes are enumerated from the app
itself: a route added without a row here fails :func:`test_every_route_has_a_row`.

The rows are a :class:`Scene` on one lab: alice's requests in each status,
one reserved by the ASAB tenant, one resolved by it with a result, a
proposal, a campaign and their events. The reading rows share one scene; a
row that changes things gets a fresh one after every cell that changed it,
so that what one cell did never decides another's answer.
"""

from __future__ import annotations

import json
import uuid as uuidlib
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable

import pytest
from fastapi import routing
from sqlalchemy import func, select

from labweave.services.server.auth import Principal
from labweave.services.server.dashboard.session import COOKIE
from labweave.services.server.db.tables import Event, table_of

from .helpers import Lab, flow_request, flow_result, open_lab, two_flow_tenants

#: The roles, in the order of the table's columns.
ROLES = ("anon", "alice", "bob", "asab", "asab2", "aiida", "op")
ROLE_NAMES = {
    "anon": "anonymous (no token, no session)",
    "alice": "the requester who posted the scene's requests and created its campaign",
    "bob": "another requester",
    "asab": "the owning tenant's user (ASAB holds the reserved request and posted the result)",
    "asab2": "another tenant's user, in the same line of work (it could serve the requests)",
    "aiida": "another tenant's user, in another line of work",
    "op": "an operator",
}

# fmt: off
#: route -> the outcome for each role, in the order of ROLES.
#:                                                        anon   alice  bob    asab   asab2  aiida  op
MATRIX: dict[str, str] = {
    # -- FINALES2 ---------------------------------------------------------------------------------------
    "POST /user_management/authenticate":                "200    200    200    200    200    200    200",
    "POST /user_management/authenticate/":               "200    200    200    200    200    200    200",
    "POST /requests/":                                    "401    200    200    200    200    200    200",
    "GET /requests/{object_id}":                          "401    seen   null   seen   seen   null   seen",
    "GET /pending_requests/":                             "401    seen   hidden seen   seen   hidden seen",
    "GET /all_requests/":                                 "401    seen   hidden seen   seen   hidden seen",
    "POST /requests/{object_id}/update_status/":          "401    403    403    200    200    404    403",
    "POST /results/":                                     "401    403    403    200    403    404    403",
    "POST /results/post_unsolicited_result":              "401    403    403    200    200    200    200",
    "GET /results/{object_id}":                           "401    seen   null   seen   seen   null   seen",
    "GET /results_requested/{request_id}":                "401    seen   null   seen   seen   null   seen",
    "GET /results_requested/":                            "401    seen   hidden seen   seen   hidden seen",
    "POST /results/{object_id}/update_status/":           "401    403    404    200    403    404    200",
    "GET /capabilities/":                                 "401    200    200    200    200    200    200",
    "GET /capabilities/templates/":                       "401    200    200    200    200    200    200",
    "GET /limitations/":                                  "401    200    200    200    200    200    200",
    "GET /tenants/":                                      "401    200    200    200    200    200    200",
    # -- /api/v1 requests ---------------------------------------------------------------------------------
    "POST /api/v1/requests":                              "401    201    201    201    201    201    201",
    "GET /api/v1/requests":                               "401    seen   hidden seen   seen   hidden seen",
    "GET /api/v1/requests/{request_uuid}":                "401    200    404    200    200    404    200",
    "GET /api/v1/requests/{request_uuid}/history":        "401    200    404    200    200    404    200",
    "POST /api/v1/claims":                                "401    403    403    200    200    204    403",
    "POST /api/v1/requests/{request_uuid}/heartbeat":     "401    403    403    200    409    404    403",
    "POST /api/v1/requests/{request_uuid}/release":       "401    403    404    200    403    404    200",
    "POST /api/v1/requests/{request_uuid}/fail":          "401    403    404    200    403    404    200",
    "POST /api/v1/requests/{request_uuid}/cancel":        "401    200    404    403    403    404    200",
    "POST /api/v1/requests/{request_uuid}/approve":       "401    403    403    403    403    403    200",
    "POST /api/v1/requests/{request_uuid}/reject":        "401    403    403    403    403    403    200",
    # -- /api/v1 results ----------------------------------------------------------------------------------
    "POST /api/v1/results":                               "401    403    403    201    403    404    403",
    "GET /api/v1/results":                                "401    seen   hidden seen   seen   hidden seen",
    "GET /api/v1/results/{result_uuid}":                  "401    200    404    200    200    404    200",
    # -- /api/v1 registry and users -----------------------------------------------------------------------
    "POST /api/v1/capabilities":                          "401    403    403    403    403    403    201",
    "GET /api/v1/capabilities":                           "401    200    200    200    200    200    200",
    "POST /api/v1/tenants":                               "401    403    403    403    403    403    201",
    "GET /api/v1/tenants":                                "401    200    200    200    200    200    200",
    "GET /api/v1/tenants/{tenant_uuid}":                  "401    200    200    200    200    200    200",
    "PUT /api/v1/tenants/{tenant_uuid}/limitations":      "401    403    403    200    403    403    200",
    "POST /api/v1/tenants/{tenant_uuid}/deactivate":      "401    403    403    403    403    403    200",
    "POST /api/v1/tenants/{tenant_uuid}/activate":        "401    403    403    403    403    403    200",
    "POST /api/v1/tenants/{tenant_uuid}/stop":            "401    403    403    200    403    403    200",
    "POST /api/v1/tenants/{tenant_uuid}/resume":          "401    403    403    403    403    403    200",
    "PUT /api/v1/tenants/{tenant_uuid}/dead_letters":     "401    403    403    200    403    403    403",
    "GET /api/v1/dead_letters":                           "401    403    403    403    403    403    200",
    "GET /api/v1/lab":                                    "401    200    200    200    200    200    200",
    "POST /api/v1/lab/pause":                             "401    403    403    403    403    403    200",
    "POST /api/v1/lab/resume":                            "401    403    403    403    403    403    200",
    "POST /api/v1/users":                                 "401    403    403    403    403    403    201",
    "GET /api/v1/me":                                     "401    200    200    200    200    200    200",
    # -- /api/v1 campaigns --------------------------------------------------------------------------------
    "GET /api/v1/campaigns":                              "401    seen   hidden seen   seen   hidden seen",
    "GET /api/v1/campaigns/{name}":                       "401    200    404    200    200    404    200",
    "PUT /api/v1/campaigns/{name}":                       "401    200    409    403    403    409    200",
    "PUT /api/v1/campaigns/{name}/state":                 "401    200    404    403    403    404    200",
    "POST /api/v1/campaigns/{name}/pause":                "401    200    404    403    403    404    200",
    "POST /api/v1/campaigns/{name}/resume":               "401    200    404    403    403    404    200",
    # -- /api/v1 events -----------------------------------------------------------------------------------
    "GET /api/v1/events":                                 "401    seen   hidden seen   seen   hidden seen",
    "GET /api/v1/events/stream":                          "401    seen   hidden seen   seen   hidden seen",
    # -- health -------------------------------------------------------------------------------------------
    "GET /healthz/live":                                  "200    200    200    200    200    200    200",
    "GET /healthz":                                       "200    200    200    200    200    200    200",
    "GET /healthz/ready":                                 "200    200    200    200    200    200    200",
    "GET /metrics":                                       "200    200    200    200    200    200    200",
    # -- dashboard (a session cookie; pages send a visitor without one to the login page) -----------------
    "GET /dashboard/static/{name}":                       "200    200    200    200    200    200    200",
    "GET /dashboard/login":                               "200    303    303    303    303    303    303",
    "POST /dashboard/login":                              "303    303    303    303    303    303    303",
    "POST /dashboard/logout":                             "303    303    303    303    303    303    303",
    "GET /dashboard":                                     "303    seen   hidden seen   seen   hidden seen",
    "GET /dashboard/tenants":                             "303    seen   hidden seen   seen   hidden seen",
    "GET /dashboard/queue":                               "303    seen   hidden seen   seen   hidden seen",
    "GET /dashboard/campaigns":                           "303    seen   hidden seen   seen   hidden seen",
    "GET /dashboard/campaigns/{name}":                    "303    200    404    200    200    404    200",
    "GET /dashboard/fragments/summary":                   "401    200    200    200    200    200    200",
    "GET /dashboard/fragments/tenants":                   "401    seen   hidden seen   seen   hidden seen",
    "GET /dashboard/fragments/queue":                     "401    seen   hidden seen   seen   hidden seen",
    "GET /dashboard/fragments/campaigns":                 "401    seen   hidden seen   seen   hidden seen",
    "GET /dashboard/fragments/campaigns/{name}":          "401    200    404    200    200    404    200",
    "GET /dashboard/fragments/activity":                  "401    seen   hidden seen   seen   hidden seen",
    "GET /dashboard/fragments/lab":                       "401    200    200    200    200    200    200",
    "POST /dashboard/actions/requests/{request_uuid}/approve": "401    403    403    403    403    403    200",
    "POST /dashboard/actions/requests/{request_uuid}/reject":  "401    403    403    403    403    403    200",
    "POST /dashboard/actions/requests/{request_uuid}/retract": "401    200    404    403    403    404    200",
    "POST /dashboard/actions/campaigns/{name}/pause":     "401    200    404    403    403    404    200",
    "POST /dashboard/actions/campaigns/{name}/resume":    "401    200    404    403    403    404    200",
    "POST /dashboard/actions/tenants/{tenant_uuid}/stop": "401    403    403    403    403    403    200",
    "POST /dashboard/actions/tenants/{tenant_uuid}/resume": "401    403    403    403    403    403    200",
    "POST /dashboard/actions/lab/pause":                  "401    403    403    403    403    403    200",
    "POST /dashboard/actions/lab/resume":                 "401    403    403    403    403    403    200",
    "GET /dashboard/events":                              "401    seen   hidden seen   seen   hidden seen",
    # -- the home page and the API's own documents ----------------------------------------------------------
    "GET /":                                              "307    307    307    307    307    307    307",
    "GET /openapi.json":                                  "200    200    200    200    200    200    200",
    "GET /docs":                                          "200    200    200    200    200    200    200",
    "GET /docs/oauth2-redirect":                          "200    200    200    200    200    200    200",
    "GET /redoc":                                         "200    200    200    200    200    200    200",
}
# fmt: on


def app_routes(app) -> list[str]:
    """Every (method, path) the app answers, as ``"METHOD /path"`` (HEAD, which mirrors GET, left out)."""
    found = set()
    for route in routing.iter_route_contexts(app.routes):
        for method in route.methods or ():
            if method != "HEAD":
                found.add(f"{method} {route.path}")
    return sorted(found)


# -- the scene ---------------------------------------------------------------------------------------
class Scene:
    """Rows for a cell, all alice's and in one campaign, each made when first asked for.

    ``reserved`` (reserved by ASAB) is the subject of most rows; ``resolved``
    has ASAB's ``result``; ``pending`` and ``proposed`` wait. ``priority`` is
    that of the pending request: the scene shared by the reading rows queues
    below every other (-1000), so that no claim of another row takes it.
    """

    def __init__(self, lab: Lab, priority: int = 0):
        self.lab = lab
        self.priority = priority
        self.cursor = max_event(lab)  # the newest event before the scene

    def _create(self, **extra) -> str:
        r = self.lab.post("alice", "/api/v1/requests", json=flow_request() | {"campaign": self.campaign} | extra)
        assert r.status_code == 201, r.text
        return r.json()["uuid"]

    def _reserve(self, uuid: str) -> None:
        r = self.lab.post("asab", f"/requests/{uuid}/update_status/",
                          params={"request_id": uuid, "new_status": "reserved"})
        assert r.status_code == 200, r.text

    @cached_property
    def campaign(self) -> str:
        name = f"c-{uuidlib.uuid4().hex[:10]}"
        r = self.lab.client.put(f"/api/v1/campaigns/{name}", json={"spec": {}}, headers=self.lab.headers("alice"))
        assert r.status_code == 200, r.text
        # one of its requests, in the tenants' line of work, shows them the campaign
        r = self.lab.post("alice", "/api/v1/requests", json=flow_request() | {"campaign": name, "priority": -1000})
        assert r.status_code == 201, r.text
        return name

    @cached_property
    def pending(self) -> str:
        return self._create(priority=self.priority)

    @cached_property
    def reserved(self) -> str:
        uuid = self._create()
        self._reserve(uuid)
        return uuid

    @cached_property
    def proposed(self) -> str:
        return self._create(proposed=True)

    @cached_property
    def _resolved(self) -> tuple[str, str]:
        uuid = self._create()
        self._reserve(uuid)
        r = self.lab.post("asab", "/api/v1/results", json=flow_result(uuid, self.lab.tenants["ASAB_tenant"]))
        assert r.status_code == 201, r.text
        return uuid, r.json()["uuid"]

    @property
    def resolved(self) -> str:
        return self._resolved[0]

    @property
    def result(self) -> str:
        return self._resolved[1]

    def everything(self) -> "Scene":
        """Make every row now, the reserved request last (its events head the activity log)."""
        for name in ("campaign", "result", "proposed", "pending", "reserved"):
            getattr(self, name)
        return self


def max_event(lab: Lab) -> int:
    with lab.lab.db.read.connect() as conn:
        return conn.execute(select(func.max(table_of(Event).c.id))).scalar() or 0


# -- calling a route as a role -------------------------------------------------------------------------
def auth(lab: Lab, role: str, dashboard: bool) -> dict[str, str]:
    if role == "anon":
        return {"Accept": "application/json"} if dashboard else {}
    if dashboard:
        return {"Cookie": f"{COOKIE}={lab.tokens[role]}", "Accept": "application/json"}
    return lab.headers(role)


def subject_in(subject: Callable[[Scene], str]):
    """The outcome of a listing or page: whether it shows the scene's subject."""

    def look(response, scene: Scene) -> str:
        return "seen" if subject(scene) in response.text else "hidden"

    return look


def found_or_null(response, scene: Scene) -> str:
    return "null" if response.json() is None else "seen"


def short_in(subject: Callable[[Scene], str]):
    """A page shows requests by the first 8 characters of their UUID."""
    return subject_in(lambda s: subject(s)[:8])


RESERVED = subject_in(lambda s: s.reserved)
PENDING = subject_in(lambda s: s.pending)
RESULT = subject_in(lambda s: s.result)
CAMPAIGN = subject_in(lambda s: f'"{s.campaign}"')
CAMPAIGN_PAGE = subject_in(lambda s: s.campaign)


@dataclass
class Call:
    """How a row's route is called: the path's parameters and the request's other parts, from the scene."""

    path: dict[str, Callable[[Scene], str]] | None = None
    params: Callable[[Scene, str], dict] | None = None
    json: Callable[[Scene, str], Any] | None = None
    data: Callable[[Scene, str], dict] | None = None
    look: Callable[[Any, Scene], str] | None = None
    dashboard: bool = False
    stream: bool = False


def claim_body(s: Scene, role: str) -> dict:
    """A claim of anything the tenant serves, once the scene's pending request waits to be claimed."""
    assert s.pending
    return {}


def login_form(s: Scene, role: str) -> dict:
    name = "alice" if role == "anon" else role
    return {"username": name, "password": name}


def asab_uuid(lab: Lab) -> str:
    return lab.tenants["ASAB_tenant"]


def calls(lab: Lab) -> dict[str, Call]:
    R = {"object_id": lambda s: s.reserved}
    asab = asab_uuid(lab)
    tenant = {"tenant_uuid": lambda s: asab}
    req = {"request_uuid": lambda s: s.reserved}
    camp = {"name": lambda s: s.campaign}
    # each posts as the tenant it acts for, so that the answer is about the request, not the body
    result_body = lambda s, role: flow_result(s.reserved, _own_tenant(lab, role))  # noqa: E731
    limitations = [e.model_dump(mode="json") for e in _asab_limitations(lab)]
    capability = _a_capability()
    return {
        "POST /user_management/authenticate": Call(data=login_form),
        "POST /user_management/authenticate/": Call(data=login_form),
        "POST /requests/": Call(json=lambda s, role: flow_request() | {"tenant_uuid": _own_tenant(lab, role)}),
        "GET /requests/{object_id}": Call(path=R, look=found_or_null),
        "GET /pending_requests/": Call(look=PENDING),
        "GET /all_requests/": Call(look=RESERVED),
        "POST /requests/{object_id}/update_status/": Call(
            path={"object_id": lambda s: s.pending},
            params=lambda s, role: {"request_id": s.pending, "new_status": "reserved"}),
        "POST /results/": Call(json=result_body),
        "POST /results/post_unsolicited_result": Call(json=result_body),
        "GET /results/{object_id}": Call(path={"object_id": lambda s: s.result}, look=found_or_null),
        "GET /results_requested/{request_id}": Call(path={"request_id": lambda s: s.resolved}, look=found_or_null),
        "GET /results_requested/": Call(look=RESULT),
        "POST /results/{object_id}/update_status/": Call(
            path={"object_id": lambda s: s.result},
            params=lambda s, role: {"result_id": s.result, "new_status": "amended"}),
        "GET /capabilities/": Call(),
        "GET /capabilities/templates/": Call(),
        "GET /limitations/": Call(),
        "GET /tenants/": Call(),
        "POST /api/v1/requests": Call(json=lambda s, role: flow_request() | {"tenant_uuid": _own_tenant(lab, role)}),
        "GET /api/v1/requests": Call(params=lambda s, role: {"campaign": s.campaign}, look=RESERVED),
        "GET /api/v1/requests/{request_uuid}": Call(path=req),
        "GET /api/v1/requests/{request_uuid}/history": Call(path=req),
        "POST /api/v1/claims": Call(json=claim_body),
        "POST /api/v1/requests/{request_uuid}/heartbeat": Call(path=req),
        "POST /api/v1/requests/{request_uuid}/release": Call(path=req, json=lambda s, role: {"reason": "matrix"}),
        "POST /api/v1/requests/{request_uuid}/fail": Call(
            path=req, json=lambda s, role: {"reason": "matrix", "retryable": False}),
        "POST /api/v1/requests/{request_uuid}/cancel": Call(path=req, json=lambda s, role: {"reason": "matrix"}),
        "POST /api/v1/requests/{request_uuid}/approve": Call(path={"request_uuid": lambda s: s.proposed}),
        "POST /api/v1/requests/{request_uuid}/reject": Call(path={"request_uuid": lambda s: s.proposed}),
        "POST /api/v1/results": Call(json=result_body),
        "GET /api/v1/results": Call(params=lambda s, role: {"campaign": s.campaign}, look=RESULT),
        "GET /api/v1/results/{result_uuid}": Call(path={"result_uuid": lambda s: s.result}),
        "POST /api/v1/capabilities": Call(json=lambda s, role: capability),
        "GET /api/v1/capabilities": Call(),
        "POST /api/v1/tenants": Call(json=lambda s, role: {"name": f"t-{uuidlib.uuid4().hex[:8]}", "limitations": [],
                                                           "contact_person": "matrix"}),
        "GET /api/v1/tenants": Call(),
        "GET /api/v1/tenants/{tenant_uuid}": Call(path=tenant),
        "PUT /api/v1/tenants/{tenant_uuid}/limitations": Call(path=tenant, json=lambda s, role: limitations),
        "POST /api/v1/tenants/{tenant_uuid}/deactivate": Call(path=tenant),
        "POST /api/v1/tenants/{tenant_uuid}/activate": Call(path=tenant),
        "POST /api/v1/tenants/{tenant_uuid}/stop": Call(path=tenant),
        "POST /api/v1/tenants/{tenant_uuid}/resume": Call(path=tenant),
        "PUT /api/v1/tenants/{tenant_uuid}/dead_letters": Call(path=tenant, json=lambda s, role: {"letters": []}),
        "GET /api/v1/dead_letters": Call(),
        "GET /api/v1/lab": Call(),
        "POST /api/v1/lab/pause": Call(json=lambda s, role: {"reason": "matrix"}),
        "POST /api/v1/lab/resume": Call(json=lambda s, role: {"reason": "matrix"}),
        "POST /api/v1/users": Call(json=lambda s, role: {"username": f"u-{uuidlib.uuid4().hex[:8]}",
                                                         "password": "a-long-enough-password", "role": "requester"}),
        "GET /api/v1/me": Call(),
        "GET /api/v1/campaigns": Call(look=CAMPAIGN),
        "GET /api/v1/campaigns/{name}": Call(path=camp),
        "PUT /api/v1/campaigns/{name}": Call(path=camp, json=lambda s, role: {"spec": {"by": role}}),
        "PUT /api/v1/campaigns/{name}/state": Call(path=camp, json=lambda s, role: {"state": {"by": role}}),
        "POST /api/v1/campaigns/{name}/pause": Call(path=camp),
        "POST /api/v1/campaigns/{name}/resume": Call(path=camp),
        "GET /api/v1/events": Call(params=lambda s, role: {"after": s.cursor, "limit": 1000}, look=RESERVED),
        "GET /api/v1/events/stream": Call(stream=True),
        "GET /healthz/live": Call(),
        "GET /healthz": Call(),
        "GET /healthz/ready": Call(),
        "GET /metrics": Call(),
        "GET /dashboard/static/{name}": Call(path={"name": lambda s: "dashboard.js"}, dashboard=True),
        "GET /dashboard/login": Call(dashboard=True),
        "POST /dashboard/login": Call(data=lambda s, role: login_form(s, role) | {"next": "/dashboard"},
                                      dashboard=True),
        "POST /dashboard/logout": Call(dashboard=True),
        "GET /dashboard": Call(dashboard=True, look=short_in(lambda s: s.reserved)),
        "GET /dashboard/tenants": Call(dashboard=True, look=RESERVED),
        "GET /dashboard/queue": Call(dashboard=True, look=RESERVED),
        "GET /dashboard/campaigns": Call(dashboard=True, look=CAMPAIGN_PAGE),
        "GET /dashboard/campaigns/{name}": Call(path=camp, dashboard=True),
        "GET /dashboard/fragments/summary": Call(dashboard=True),
        "GET /dashboard/fragments/tenants": Call(dashboard=True, look=RESERVED),
        "GET /dashboard/fragments/queue": Call(dashboard=True, look=RESERVED),
        "GET /dashboard/fragments/campaigns": Call(dashboard=True, look=CAMPAIGN_PAGE),
        "GET /dashboard/fragments/campaigns/{name}": Call(path=camp, dashboard=True),
        "GET /dashboard/fragments/activity": Call(dashboard=True, look=short_in(lambda s: s.reserved)),
        "POST /dashboard/actions/requests/{request_uuid}/approve": Call(
            path={"request_uuid": lambda s: s.proposed}, dashboard=True),
        "POST /dashboard/actions/requests/{request_uuid}/reject": Call(
            path={"request_uuid": lambda s: s.proposed}, dashboard=True),
        "POST /dashboard/actions/requests/{request_uuid}/retract": Call(path=req, dashboard=True),
        "POST /dashboard/actions/campaigns/{name}/pause": Call(path=camp, dashboard=True),
        "POST /dashboard/actions/campaigns/{name}/resume": Call(path=camp, dashboard=True),
        "POST /dashboard/actions/tenants/{tenant_uuid}/stop": Call(path=tenant, dashboard=True),
        "POST /dashboard/actions/tenants/{tenant_uuid}/resume": Call(path=tenant, dashboard=True),
        "GET /dashboard/events": Call(dashboard=True, stream=True),
        "GET /dashboard/fragments/lab": Call(dashboard=True),
        "POST /dashboard/actions/lab/pause": Call(dashboard=True),
        "POST /dashboard/actions/lab/resume": Call(dashboard=True),
        "GET /": Call(),
        "GET /openapi.json": Call(),
        "GET /docs": Call(),
        "GET /docs/oauth2-redirect": Call(),
        "GET /redoc": Call(),
    }


def _own_tenant(lab: Lab, role: str) -> str:
    """The tenant a role's user acts for (a requester's: the requesters' tenant), for the bodies it posts."""
    return {"asab": lab.tenants["ASAB_tenant"], "asab2": lab.tenants["ASAB twin"],
            "aiida": lab.tenants["aiida-finales"]}.get(role, flow_request()["tenant_uuid"])


def _asab_limitations(lab: Lab):
    from labweave.schemas.tenant import LimitationEntry

    t = lab.lab.registry.catalogue().tenants[asab_uuid(lab)]
    return [LimitationEntry.model_validate(e) for e in t.limitations]


def _a_capability() -> dict:
    from .helpers import capability_files
    from ..conftest import load

    return load(capability_files()[0])


def stream_outcome(lab: Lab, url: str, headers: dict, scene: Scene) -> str:
    """Read the stream from before the scene up to a public event made after it: does it show the scene?"""
    lab.lab.registry.set_tenant_active(lab.tenants["aiida-finales"], True, "matrix")  # a tenant event: every role's
    sentinel = max_event(lab)
    with lab.client.stream("GET", url, params={"after": scene.cursor}, headers=headers) as r:
        if r.status_code != 200:
            return str(r.status_code)
        seen = False
        for line in r.iter_lines():
            if line.startswith("data:"):
                event = json.loads(line[5:])
                seen = seen or event["subject"] == scene.reserved
                if event["id"] >= sentinel:
                    return "seen" if seen else "hidden"
    raise AssertionError(f"{url}: the stream ended before the event {sentinel}")


def outcome(lab: Lab, route: str, role: str, call: Call, scene: Scene) -> str:
    method, path = route.split(" ", 1)
    url = path
    for name, value in (call.path or {}).items():
        url = url.replace("{" + name + "}", value(scene))
    assert "{" not in url, f"{route}: the row names no value for a path parameter"
    headers = auth(lab, role, call.dashboard)
    if call.stream:
        return stream_outcome(lab, url, headers, scene)
    kw: dict[str, Any] = {"headers": headers, "follow_redirects": False}
    if call.params:
        kw["params"] = call.params(scene, role)
    if call.json:
        kw["json"] = call.json(scene, role)
    if call.data:
        kw["data"] = call.data(scene, role)
    r = lab.client.request(method, url, **kw)
    assert r.status_code < 500, f"{role} {route}: {r.status_code} {r.text[:300]}"
    if r.status_code == 200 and call.look is not None:
        return call.look(r, scene)
    return str(r.status_code)


def restore(lab: Lab) -> None:
    """Undo what an operator's cell did to the ASAB tenant (deactivated, stopped) or to the lab (paused), so
    later cells see it serving."""
    reg = lab.lab.registry
    reg.set_tenant_active(asab_uuid(lab), True, "matrix")
    reg.clear_stop(asab_uuid(lab), "matrix")
    lab.lab.pause.resume(Principal("matrix", "operator"), "matrix")


# -- the tests ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = open_lab(f"sqlite:///{tmp_path_factory.mktemp('matrix') / 'lab.db'}")
    two_flow_tenants(lab)
    lab.add_user("bob", "requester", flow_request()["tenant_uuid"])
    lab.add_user("aiida", "tenant", "aiida-finales")  # conductivity by molecular dynamics only
    with lab.client:  # one event loop for every call, as in a server process (the streams need it)
        yield lab


def expected(route: str) -> dict[str, str]:
    cells = MATRIX[route].split()
    assert len(cells) == len(ROLES), f"{route}: {len(cells)} cells for {len(ROLES)} roles"
    return dict(zip(ROLES, cells))


def test_every_route_has_a_row(lab):
    routes = app_routes(lab.client.app)
    missing = [r for r in routes if r not in MATRIX]
    stale = [r for r in MATRIX if r not in routes]
    assert not missing, f"routes without a row in MATRIX (say what each role gets): {missing}"
    assert not stale, f"rows of MATRIX for routes the app no longer has: {stale}"
    assert set(calls(lab)) == set(MATRIX), "every row needs a Call saying how it is called"


#: Rows that change nothing stored (logging in and out only hands out or drops a token).
READ_ONLY = {"POST /user_management/authenticate", "POST /user_management/authenticate/", "POST /dashboard/login",
             "POST /dashboard/logout"}


def changes_things(route: str) -> bool:
    return not (route.startswith("GET ") or route in READ_ONLY)


@pytest.fixture(scope="module")
def shared_scene(lab) -> Scene:
    return Scene(lab, priority=-1000).everything()


@pytest.mark.parametrize("route", sorted(MATRIX))
def test_route_against_every_role(lab, shared_scene, route):
    call = calls(lab)[route]
    wanted = expected(route)
    got: dict[str, str] = {}
    scene = Scene(lab) if changes_things(route) else shared_scene
    for role in ROLES:
        got[role] = outcome(lab, route, role, call, scene)
        if changes_things(route) and got[role][0] == "2":  # it did something: the next role gets a fresh scene
            restore(lab)
            scene = Scene(lab)
    wrong = {role: f"expected {wanted[role]}, got {got[role]}" for role in ROLES if got[role] != wanted[role]}
    assert not wrong, f"{route}: {wrong}\n  observed: {'  '.join(got[r] for r in ROLES)}"


@pytest.mark.parametrize("method, path, body", [
    ("PUT", "/api/v1/tenants/{t}/limitations", []),
    ("POST", "/api/v1/tenants/{t}/stop", None),
    ("PUT", "/api/v1/tenants/{t}/dead_letters", {"letters": []}),
])
def test_a_requesters_account_naming_a_tenant_does_not_make_it_that_tenants_user(lab, method, path, body):
    """FINALES2's requesters carry a tenant_uuid; they still do nothing a tenant's own user does for it."""
    tenant = flow_request()["tenant_uuid"]  # the tenant alice's and bob's accounts name
    before = lab.lab.registry.catalogue().tenants[tenant]
    r = lab.client.request(method, path.format(t=tenant), json=body, headers=lab.headers("alice"))
    assert r.status_code == 403, r.text
    after = lab.lab.registry.catalogue().tenants[tenant]
    assert (after.limitations, after.stop_requested) == (before.limitations, before.stop_requested)
