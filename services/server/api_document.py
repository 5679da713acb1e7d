"""What ``/openapi.json`` says beyond what FastAPI derives from the routes.

- **Refusals**: every operation behind a token may answer 401 and 403, one
  naming a thing by its path may answer 404, and one that changes things
  409 (the rule of which is which: :mod:`.visibility`), each with an
  :class:`~labweave.schemas.api.ErrorDetail`. A 422 is FastAPI's validation
  error (a list naming each field) or, for a rule of the lab that a schema
  cannot say (an unknown tenant, a parameter outside every limitation), an
  ``ErrorDetail`` naming the field in its text.
- **Links** (OpenAPI's ``links``): which answer feeds which operation, so a
  client, and schemathesis' stateful tests, can follow a request's life
  (posted -> read, claimed, heartbeated, failed, retracted; a result posted
  -> read, amended).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from labweave.schemas.api import ErrorDetail

ERROR = {"$ref": "#/components/schemas/ErrorDetail"}
REFUSALS = {
    "401": "No valid token: log in (POST /user_management/authenticate)",
    "403": "Your role may not do this, or may not make this change to something you see",
    "404": "Not found, or not yours to see",
    "409": "Not in the present status of the thing (or a name already taken)",
}
CHANGES = ("post", "put", "patch", "delete")

#: (path, method, status) -> {link name: (target path, target method, {parameter: runtime expression})}
_REQUEST_OPS = {
    "ReadRequest": ("/api/v1/requests/{request_uuid}", "get"),
    "History": ("/api/v1/requests/{request_uuid}/history", "get"),
    "Heartbeat": ("/api/v1/requests/{request_uuid}/heartbeat", "post"),
    "Release": ("/api/v1/requests/{request_uuid}/release", "post"),
    "Fail": ("/api/v1/requests/{request_uuid}/fail", "post"),
    "Cancel": ("/api/v1/requests/{request_uuid}/cancel", "post"),
}
LINKS: dict[tuple[str, str, str], dict[str, tuple[str, str, dict[str, str]]]] = {
    ("/api/v1/requests", "post", "201"): {
        **{name: (path, method, {"request_uuid": "$response.body#/uuid"}) for name, (path, method) in _REQUEST_OPS.items()},
        "Approve": ("/api/v1/requests/{request_uuid}/approve", "post", {"request_uuid": "$response.body#/uuid"}),
        "Reject": ("/api/v1/requests/{request_uuid}/reject", "post", {"request_uuid": "$response.body#/uuid"}),
        "ResultOfRequest": ("/results_requested/{request_id}", "get", {"request_id": "$response.body#/uuid"}),
    },
    ("/api/v1/claims", "post", "200"): {
        name: (path, method, {"request_uuid": "$response.body#/request/uuid"})
        for name, (path, method) in _REQUEST_OPS.items()
    },
    ("/requests/", "post", "200"): {  # FINALES2 answers the new request's UUID as a bare JSON string
        "ReadRequest": ("/requests/{object_id}", "get", {"object_id": "$response.body#"}),
        "Reserve": ("/requests/{object_id}/update_status/", "post",
                    {"object_id": "$response.body#", "request_id": "$response.body#"}),
        "ResultOfRequest": ("/results_requested/{request_id}", "get", {"request_id": "$response.body#"}),
    },
    ("/api/v1/results", "post", "201"): {
        "ReadResult": ("/api/v1/results/{result_uuid}", "get", {"result_uuid": "$response.body#/uuid"}),
        "ResultStatus": ("/results/{object_id}/update_status/", "post",
                         {"object_id": "$response.body#/uuid", "result_id": "$response.body#/uuid"}),
        "ResultOfRequest": ("/results_requested/{request_id}", "get",
                            {"request_id": "$response.body#/result/request_uuid"}),
    },
}


def operation_ref(path: str, method: str) -> str:
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method


def _refusals(path: str, method: str, op: dict[str, Any]) -> None:
    responses = op.setdefault("responses", {})
    wanted = []
    if op.get("security"):
        wanted += ["401", "403"]
    if "{" in path and op.get("security"):
        wanted.append("404")
    if method in CHANGES and op.get("security"):
        wanted.append("409")
    for code in wanted:
        responses.setdefault(code, {"description": REFUSALS[code],
                                    "content": {"application/json": {"schema": ERROR}}})
    invalid = responses.get("422", {}).get("content", {}).get("application/json")
    if invalid is not None:
        invalid["schema"] = {"anyOf": [invalid["schema"], ERROR]}


def _links(doc: dict[str, Any]) -> None:
    for (path, method, status), links in LINKS.items():
        response = doc["paths"][path][method]["responses"][status]
        response["links"] = {
            name: {"operationRef": operation_ref(target, target_method), "parameters": parameters}
            for name, (target, target_method, parameters) in links.items()
        }


def describe(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and so ``/openapi.json``) add the refusals and links to FastAPI's document."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            doc.setdefault("components", {}).setdefault("schemas", {})["ErrorDetail"] = (
                ErrorDetail.model_json_schema(ref_template="#/components/schemas/{model}"))
            for path, operations in doc["paths"].items():
                for method, op in operations.items():
                    _refusals(path, method, op)
            _links(doc)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
