"""A loopback TCP proxy whose link can be cut: every open connection is reset and new ones are dropped as
soon as they are accepted, until it is mended. It runs its own event loop in a thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading


class Link:
    """Forwards ``127.0.0.1:port`` to ``target_port``; :meth:`cut` and :meth:`mend` from any thread."""

    def __init__(self, target_port: int, host: str = "127.0.0.1"):
        self.host = host
        self.target_port = target_port
        self.port = 0
        self.dropped = 0  # connections reset by a cut or dropped while cut
        self._cut = False
        self._open: dict[asyncio.StreamWriter, asyncio.StreamWriter] = {}  # client's side: the server's side
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="link", daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> "Link":
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._accept, self.host, 0), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()
            self._reset_all()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def cut(self) -> None:
        """Reset every connection through the link; drop new ones until :meth:`mend`."""
        def go() -> None:
            self._cut = True
            self._reset_all()

        self._loop.call_soon_threadsafe(go)

    def mend(self) -> None:
        self._loop.call_soon_threadsafe(setattr, self, "_cut", False)

    def _reset_all(self) -> None:
        for client, server in self._open.items():
            client.transport.abort()
            server.transport.abort()
            self.dropped += 1
        self._open.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            self.dropped += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._open[writer] = up_writer
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self._open.pop(writer, None)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                writer.close()
