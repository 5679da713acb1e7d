"""Run the server as a child process on a loopback port (for the demo, benchmarks and tests)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ServerProcess:
    """``labweave serve`` in a child process; a context manager that waits until it is healthy.

    Args:
        database_url: the database the server uses.
        port: the port (default: a free one).
        env: extra ``LABWEAVE_*`` settings.
        log_path: where the child's output goes (default: discarded).
    """

    def __init__(self, database_url: str, port: int | None = None, env: dict[str, str] | None = None,
                 log_path: Path | None = None, host: str = "127.0.0.1"):
        self.host = host
        self.port = port or free_port(host)
        self.env = {**os.environ, "LABWEAVE_DATABASE_URL": database_url, **(env or {})}
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> "ServerProcess":
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "labweave.services.cli.main", "serve", "--host", self.host, "--port", str(self.port)],
            env=self.env, stdout=out, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with code {self.proc.returncode} (log: {self.log_path})")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the server did not become healthy within {timeout} s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
