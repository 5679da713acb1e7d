"""What the runtime tells an instrument about the request it is running."""

from contextvars import ContextVar

#: The UUID of the request being performed (set by the tenant runtime around each job).
current_request: ContextVar[str | None] = ContextVar("current_request", default=None)
