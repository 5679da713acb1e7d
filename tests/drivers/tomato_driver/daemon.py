"""A real tomato daemon for tests: settings and device files in a temp folder, a loopback port, the
``tomato-example-counter`` driver as the device, every process it started ended afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import zmq
from tomato import tomato as tomato_api

from labweave.services.server.process import free_port

DEVICES = """\
devices:
  - name: dev-counter
    driver: example_counter
    address: example-addr
    channels: ["1"]
    pollrate: 1
pipelines:
  - name: pip-counter
    devices:
      - role: counter
        device: dev-counter
        channel: "1"
"""


class TomatoDaemonProcess:
    """``tomato-daemon`` on a free loopback port, configured like ``tomato init`` + ``tomato reload``."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.appdir = folder / "app"
        self.proc: subprocess.Popen | None = None
        self.seen: dict[int, psutil.Process] = {}  # every process of the daemon's tree we saw

    def start(self, timeout: float = 60.0) -> TomatoDaemonProcess:
        reply = tomato_api.init(appdir=str(self.appdir), datadir=str(self.folder / "data"),
                                logdir=str(self.folder / "log"))
        assert reply.success, reply.msg
        (self.appdir / "devices.yml").write_text(DEVICES)
        bindir = str(Path(sys.executable).parent)  # the daemon starts tomato-driver and tomato-job by name
        env = {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
        self.proc = subprocess.Popen(
            [str(Path(bindir) / "tomato-daemon"), "-p", str(self.port), "-A", str(self.appdir), "-V", "20"],
            env=env, cwd=self.folder, stdout=open(self.folder / "daemon.out", "ab"), stderr=subprocess.STDOUT,
            start_new_session=True)
        context = zmq.Context()
        try:
            deadline = time.monotonic() + timeout
            while not tomato_api.status(port=self.port, timeout=500, context=context).success:
                assert self.proc.poll() is None, (self.folder / "daemon.out").read_text()
                assert time.monotonic() < deadline, "tomato-daemon did not come up"
            reply = tomato_api.reload(port=self.port, timeout=5000, context=context, appdir=str(self.appdir))
            assert reply.success, reply.msg
            while True:  # until the counter's driver has registered its component
                state = tomato_api.status(port=self.port, timeout=2000, context=context).data
                if any(c.capabilities for c in state.cmps.values()):
                    break
                assert time.monotonic() < deadline, "the example_counter driver did not register"
                time.sleep(0.2)
        finally:
            context.destroy(linger=0)
        self.remember()
        return self

    def remember(self) -> None:
        """Note the daemon's processes (drivers, jobs) so that they can be ended even after it is gone."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            root = psutil.Process(self.proc.pid)
            for p in [root, *root.children(recursive=True)]:
                self.seen.setdefault(p.pid, p)
        except psutil.NoSuchProcess:
            pass

    def kill(self) -> None:
        """The daemon dies at once (SIGKILL), leaving its drivers and jobs behind, as a crash does."""
        self.remember()
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        self.remember()
        if self.proc is not None and self.proc.poll() is None:
            context = zmq.Context()
            try:
                tomato_api.stop(port=self.port, timeout=3000, context=context)
            finally:
                context.destroy(linger=0)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for p in self.seen.values():  # only processes of this daemon's tree, by pid
            try:
                if p.is_running():
                    p.kill()
            except psutil.NoSuchProcess:
                pass

    def __enter__(self) -> TomatoDaemonProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
