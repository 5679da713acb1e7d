"""A thin synchronous wrapper: every coroutine of the async core, run on a private loop.

The loop lives in a background thread, so the wrapper works from plain
scripts and from code that already runs an event loop of its own.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from typing import Any

from .core import AsyncLabClient


class LabClient:
    """Same methods as :class:`AsyncLabClient`, blocking; ``stream_events`` returns an iterator."""

    def __init__(self, *args: Any, **kwargs: Any):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="labweave-client", daemon=True)
        self._thread.start()
        self._core = self._run(self._make(*args, **kwargs))

    async def _make(self, *args, **kwargs) -> AsyncLabClient:
        return AsyncLabClient(*args, **kwargs)

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._core, name)
        if inspect.isasyncgenfunction(attr):
            def iterate(*args, **kwargs):
                agen = attr(*args, **kwargs)
                try:
                    while True:
                        try:
                            yield self._run(agen.__anext__())
                        except StopAsyncIteration:
                            return
                finally:
                    self._run(agen.aclose())
            return iterate
        if inspect.iscoroutinefunction(attr):
            return lambda *args, **kwargs: self._run(attr(*args, **kwargs))
        return attr

    def close(self) -> None:
        if self._loop.is_running():
            self._run(self._core.close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    def __enter__(self) -> "LabClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
