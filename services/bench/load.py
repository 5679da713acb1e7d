"""Load generators: ``wrk`` (Debian's package) when installed, else several Python processes.

Both keep connections alive and run ``connections`` concurrent streams for
``seconds``; each returns the number of answered requests, their status
codes where known, and the rate.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit


@dataclass
class Load:
    requests: int
    seconds: float
    generator: str

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


WRK_SCRIPT = r"""
local bodies = {}
local counter = 0
local method, path, token = "%(method)s", "%(path)s", "%(token)s"
local bodies_file = "%(bodies)s"
local thread_id, threads = 0, %(threads)d
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  thread_id = id
  local i = 0
  for line in io.lines(bodies_file) do
    if i %% threads == thread_id then table.insert(bodies, line) end
    i = i + 1
  end
  if #bodies == 0 then
    for line in io.lines(bodies_file) do table.insert(bodies, line) end
  end
  next_body = 1
end
function request()
  local body = bodies[next_body]
  next_body = next_body + 1
  if next_body > #bodies then next_body = 1 end
  local headers = {["Content-Type"] = "application/json"}
  if token ~= "" then headers["Authorization"] = "Bearer " .. token end
  return wrk.format(method, path, headers, body)
end
"""


def _wrk(url: str, path: str, bodies: list[str], token: str, connections: int, seconds: float,
         method: str = "POST") -> Load:
    threads = max(1, min(2, connections))
    with tempfile.TemporaryDirectory() as tmp:
        body_file = Path(tmp) / "bodies.txt"
        body_file.write_text("\n".join(bodies) + "\n")
        script = Path(tmp) / "load.lua"
        script.write_text(WRK_SCRIPT % {"method": method, "path": path, "token": token, "bodies": body_file,
                                        "threads": threads})
        out = subprocess.run(
            ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s", "-s", str(script), url],
            capture_output=True, text=True, check=True,
        ).stdout
    count = re.search(r"(\d+) requests in", out)
    elapsed = re.search(r"requests in ([\d.]+)(m?s)", out)
    if count is None or elapsed is None:
        raise RuntimeError(f"wrk's report names no request count and duration: {out!r}")
    total = int(count.group(1))
    secs = float(elapsed.group(1)) / (1000 if elapsed.group(2) == "ms" else 1)
    return Load(total, secs, "wrk")


class _Answers:
    """Reads HTTP/1.1 answers off a kept-alive socket: the status line and headers, then ``Content-Length``
    bytes of body (the server answers every route so; a chunked answer is refused, not misread)."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk

    def read(self) -> int:
        """One answer; its status code."""
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            self._fill()
        head = self.buffer[:end].decode("latin-1")
        status = int(head[9:12])
        length = 0
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                raise RuntimeError("a chunked answer: this load generator reads Content-Length bodies only")
        total = end + 4 + length
        while len(self.buffer) < total:
            self._fill()
        self.buffer = self.buffer[total:]
        return status


def _worker(args) -> int:
    """Send requests on one kept-alive connection for ``seconds``; the number answered.

    Each request's bytes are built once and answers are read with no more parsing than their length
    needs: the generator runs on the machine it measures, so each request it sends should cost it as
    little as it can (``http.client`` spent about 0.3 ms of CPU per request, this about a third of that).
    """
    url, path, bodies, token, seconds, method = args
    parts = urlsplit(url)
    head = f"{method} {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    wire = []
    for body in bodies:
        data = body.encode()
        wire.append(f"{head}Content-Length: {len(data)}\r\n\r\n".encode("latin-1") + data)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=60)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    answers = _Answers(sock)
    done, i = 0, 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            sock.sendall(wire[i % len(wire)])
            answers.read()
            done += 1
            i += 1
    finally:
        sock.close()
    return done


def _python(url: str, path: str, bodies: list[str], token: str, connections: int, seconds: float,
            method: str = "POST") -> Load:
    slices = [bodies[i::connections] or bodies for i in range(connections)]
    with mp.get_context("fork").Pool(connections) as pool:
        start = time.monotonic()
        done = pool.map(_worker, [(url, path, s, token, seconds, method) for s in slices])
        elapsed = time.monotonic() - start
    return Load(sum(done), min(elapsed, seconds + 1), "python")


def drive_spread(urls: Sequence[str], path: str, bodies: Sequence[dict | str], tokens: Sequence[str],
                 connections: int = 8, seconds: float = 5.0, method: str = "POST") -> Load:
    """Like :func:`drive` with Python workers, each keeping one connection to one of ``urls`` (in turn)
    and sending as one of ``tokens`` (in turn): the load spread evenly over several replicas."""
    texts = [b if isinstance(b, str) else json.dumps(b) for b in bodies]
    jobs = []
    for i in range(connections):
        mine = texts[i::connections] or texts
        jobs.append((urls[i % len(urls)], path, mine, tokens[i % len(tokens)], seconds, method))
    # forked, not spawned: a spawned worker imports the labweave command again (a second of CPU each,
    # inside the timed window, on the machine the servers run on)
    with mp.get_context("fork").Pool(connections) as pool:
        start = time.monotonic()
        done = pool.map(_worker, jobs)
        elapsed = time.monotonic() - start
    return Load(sum(done), min(elapsed, seconds + 1), "python")


def drive(url: str, path: str, bodies: Sequence[dict | str], token: str = "", connections: int = 16,
          seconds: float = 5.0, method: str = "POST") -> Load:
    """Send ``bodies`` (cycled) to ``url + path`` as fast as the server answers."""
    texts = [b if isinstance(b, str) else json.dumps(b) for b in bodies]
    if shutil.which("wrk") and not os.environ.get("LABWEAVE_BENCH_PYTHON_LOAD"):
        return _wrk(url, path, texts, token, connections, seconds, method)
    return _python(url, path, texts, token, min(connections, 8), seconds, method)
