"""A real Dask cluster for tests: ``dask scheduler`` and ``dask worker`` processes on loopback ports.

Workers run without a nanny (a SIGKILL is then a lost worker, not a restart),
with one thread each, in the test's tmp folder; the scheduler fails a task at
its first lost worker, as the README asks of a lab's scheduler.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from distributed import Client

from labweave.services.server.process import free_port

ENV = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0", "PYBAMM_DISABLE_TELEMETRY": "true",
       "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


class DaskCluster:
    """A scheduler and its workers, each a process of ``python -m dask``."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.scheduler: subprocess.Popen | None = None
        self.workers: dict[str, subprocess.Popen] = {}

    def _spawn(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "ab")
        return subprocess.Popen([sys.executable, "-m", "dask", *args], env={**os.environ, **ENV}, cwd=self.folder,
                                stdout=log, stderr=subprocess.STDOUT)

    def start(self) -> DaskCluster:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.scheduler = self._spawn("scheduler", "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
                                     "--no-dashboard", "--scheduler-file", str(self.folder / "scheduler.json"))
        return self

    def add_worker(self, name: str, gpu: bool = False) -> subprocess.Popen:
        """Start a one-thread worker (with ``--resources GPU=1`` if ``gpu``) and wait until it has joined."""
        extra = ["--resources", "GPU=1"] if gpu else []
        proc = self._spawn(name, "worker", self.address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                           "--name", name, "--local-directory", str(self.folder / name), "--host", "127.0.0.1",
                           *extra)
        self.workers[name] = proc
        self.wait_for_workers(len(self.workers))
        return proc

    def info(self) -> dict:
        with Client(self.address, timeout=30) as client:
            return client.scheduler_info(n_workers=-1)

    def wait_for_workers(self, n: int, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if len(self.info()["workers"]) == n:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{n} Dask workers did not join in {timeout} s: {self.tail()}")
            time.sleep(0.3)

    def worker_address(self, name: str) -> str:
        return next(addr for addr, w in self.info()["workers"].items() if w.get("name") == name)

    def kill(self, name: str) -> None:
        proc = self.workers.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(self.folder.glob("*.log")))

    def stop(self) -> None:
        for proc in [*self.workers.values(), self.scheduler]:
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in [*self.workers.values(), self.scheduler]:
            if proc is None:
                continue
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.workers.clear()
