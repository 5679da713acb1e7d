"""labweave's logs: one record per line, as text or JSON, each carrying the request id of its work.

A *request id* ties together what the server, a tenant and the optimizer log
about one piece of work. It travels in the ``X-Request-ID`` header: the client
sends the id bound in its context (or a fresh one per call), the server takes
a well-formed incoming id or makes one, binds it while it handles the call and
sends it back. A tenant binds the lab request's uuid while it works on it, and
the optimizer daemon an id per batch, so ``grep`` (or a log store's filter) on
one id shows the claim, the heartbeats, the instrument's lines and the result
from every process.

JSON lines (``--log-format json`` or ``LABWEAVE_LOG_FORMAT=json``) are written
by python-json-logger, a well-kept formatter, rather than by hand: fields
``time``, ``level``, ``logger``, ``message``, ``request_id`` and any ``extra=``
the call passed; an exception's traceback in ``exc_info``.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Literal

from pythonjsonlogger.json import JsonFormatter

LogFormat = Literal["text", "json"]

#: The HTTP header that carries a request id.
HEADER = "X-Request-ID"

#: What an incoming id may look like (anything else is replaced, so a log line cannot be forged or bloated).
WELL_FORMED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}")

_request_id: ContextVar[str | None] = ContextVar("labweave_request_id", default=None)

HANDLER_NAME = "labweave"

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


def new_request_id() -> str:
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    """The id bound in this context (a task, a thread's call), or None."""
    return _request_id.get()


def well_formed(value: str | None) -> str | None:
    """``value`` if it can be used as a request id as it is, else None."""
    return value if value is not None and WELL_FORMED.fullmatch(value) else None


@contextmanager
def request_id_bound(value: str | None) -> Iterator[str]:
    """Bind ``value`` (or a fresh id) as this context's request id for the ``with`` block."""
    bound = value or new_request_id()
    token = _request_id.set(bound)
    try:
        yield bound
    finally:
        _request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Puts the context's request id on every record (``-`` outside any work)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _request_id.get() or "-"
        return True


def formatter(fmt: LogFormat) -> logging.Formatter:
    """Times in UTC, ISO 8601 with milliseconds (``2026-12-04T04:16:45.272Z``), in either format."""
    f: logging.Formatter
    if fmt == "json":
        f = JsonFormatter("{asctime}{levelname}{name}{message}{request_id}", style="{",
                          rename_fields={"asctime": "time", "levelname": "level", "name": "logger"})
    else:
        f = logging.Formatter(TEXT_FORMAT)
    f.converter = time.gmtime
    f.default_time_format = "%Y-%m-%dT%H:%M:%S"
    f.default_msec_format = "%s.%03dZ"
    return f


class StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes (as :data:`logging.lastResort` does), so
    a stream swapped and closed since (a test runner's capture) is never written to."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def configure_logging(level: str | int = "WARNING", fmt: LogFormat = "text") -> None:
    """Send the process's logs to standard error, one record per line, in ``fmt``.

    Replaces the handler an earlier call installed (a command's option overriding
    the environment's default) and leaves any other handler alone.
    """
    if fmt not in ("text", "json"):
        raise ValueError(f"log format must be text or json, not {fmt!r}")
    handler = StderrHandler()
    handler.setFormatter(formatter(fmt))
    handler.addFilter(RequestIdFilter())
    handler.set_name(HANDLER_NAME)
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == HANDLER_NAME:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
