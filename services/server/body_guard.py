"""Refuses oversized and malformed bodies before any route sees them.

One ASGI middleware, in front of every route (FINALES2's and labweave's alike):

- a body larger than ``max_body_bytes`` gets 413: at once when its
  ``Content-Length`` says so (the body is never read), else as soon as the
  bytes received pass the limit;
- a JSON body that nests deeper than ``max_json_depth``, holds a container
  wider than ``max_json_items``, or carries NaN or an infinity (``NaN``,
  ``Infinity``, or a number too large for a float, such as ``1e999``) gets a
  422 whose ``detail`` names where, in FastAPI's own error shape
  (``[{"loc": ["body", ...], "msg": ..., "type": ...}]``).

Nothing reaches a route, a validator or the database before these checks, so
no such body is ever stored half. Malformed JSON is left to FastAPI, which
already answers it with a 422 naming the position.

Written as plain ASGI rather than Starlette's ``BaseHTTPMiddleware`` so that
it neither wraps responses nor breaks the server-sent event stream.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

JSON_TYPES = ("application/json",)


@dataclass(frozen=True)
class BodyLimits:
    """How large and how deep a body may be."""

    max_body_bytes: int
    max_json_depth: int
    max_json_items: int


@dataclass(frozen=True)
class Problem:
    """Why a body is refused: its HTTP status, where, what, and FastAPI's error type."""

    status: int
    loc: tuple[str | int, ...]
    msg: str
    type: str

    def body(self) -> bytes:
        detail: Any = self.msg if self.status == 413 else [{"loc": list(self.loc), "msg": self.msg, "type": self.type}]
        return json.dumps({"detail": detail}).encode()


class _NonFinite:
    """Stands where the JSON text had NaN or an infinity, so the walk can name the place."""

    def __init__(self, text: str):
        self.text = text


def inspect_json(body: bytes, limits: BodyLimits) -> Problem | None:
    """The first problem of a JSON body against ``limits``, or None when it passes.

    A body that is not valid JSON passes: FastAPI reports it in its own words.
    """
    try:
        document = json.loads(body, parse_constant=_NonFinite)
    except RecursionError:
        return Problem(422, ("body",), f"nests deeper than {limits.max_json_depth} levels", "value_error.json_depth")
    except ValueError as exc:
        if isinstance(exc, json.JSONDecodeError):
            return None
        # e.g. an integer of more digits than Python converts (int_max_str_digits)
        return Problem(422, ("body",), f"a number in the body cannot be read: {exc}", "value_error.number")
    return _walk(document, limits)


def _walk(document: Any, limits: BodyLimits) -> Problem | None:
    found = _first_problem(document, 0, limits)
    if found is None:
        return None
    path, status_msg_type = found
    return Problem(422, ("body", *reversed(path)), *status_msg_type)


#: What the walk need not look into: every other JSON value is a container or a float.
_PLAIN = (str, int, bool, type(None))


def _first_problem(value: Any, depth: int, limits: BodyLimits) -> tuple[list[str | int], tuple[str, str]] | None:
    """The first problem under ``value`` (at ``depth``): the path to it, innermost key first, and its message and
    type; the path is built only for a problem, so a clean body (every body of a working lab) costs one visit a node.

    The recursion is as deep as the document, and a document deeper than ``max_json_depth`` is refused on reaching
    that depth, so the stack stays small.
    """
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    elif isinstance(value, _NonFinite) or (isinstance(value, float) and not math.isfinite(value)):
        text = value.text if isinstance(value, _NonFinite) else repr(value)
        return [], (f"{text} is not a number a lab can use: only finite numbers are accepted", "value_error.not_finite")
    else:
        return None
    if depth >= limits.max_json_depth:
        return [], (f"nests deeper than {limits.max_json_depth} levels", "value_error.json_depth")
    if len(value) > limits.max_json_items:
        return [], (f"holds {len(value)} entries, more than the {limits.max_json_items} allowed",
                    "value_error.json_width")
    for key, child in items:
        if isinstance(child, _PLAIN):
            continue
        found = _first_problem(child, depth + 1, limits)
        if found is not None:
            found[0].append(key)
            return found
    return None


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            media = value.split(b";", 1)[0].strip().decode("latin-1").lower()
            return media in JSON_TYPES or media.endswith("+json")
    return False


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyGuard:
    """ASGI middleware applying :class:`BodyLimits` to every HTTP request's body."""

    def __init__(self, app: ASGIApp, limits: BodyLimits):
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.limits.max_body_bytes
        too_large = Problem(413, ("body",), f"the body is larger than {limit} bytes", "value_error.body_size")
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _answer(send, too_large)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _answer(send, too_large)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body and _is_json(scope):
            problem = inspect_json(body, self.limits)
            if problem is not None:
                await _answer(send, problem)
                return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _answer(send: Send, problem: Problem) -> None:
    payload = problem.body()
    await send({
        "type": "http.response.start",
        "status": problem.status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
    })
    await send({"type": "http.response.body", "body": payload})
