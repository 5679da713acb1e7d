"""The benchmarks' Python load generator: kept-alive connections, each request sent whole and each
answer read to the end of its body, so that the count of answers is the count the server served."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from labweave.services.bench.load import _worker


class Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as uvicorn
    seen: list[dict] = []
    chunked = False

    def do_POST(self):  # noqa: N802 - the standard library's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Recorder.seen.append({"body": body, "auth": self.headers.get("Authorization")})
        if Recorder.chunked:
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"2\r\n{}\r\n0\r\n\r\n")
            return
        if body["i"] % 3 == 0:  # no body at all, as a claim with nothing to take
            self.send_response(204)
            self.end_headers()
            return
        answer = json.dumps({"echo": body, "padding": "x" * 70_000}).encode()  # longer than one recv
        self.send_response(201)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Recorder.seen, Recorder.chunked = [], False
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_every_answer_is_read_whole_and_counted(server):
    bodies = [json.dumps({"i": i, "name": "électrolyte"}) for i in range(7)]
    done = _worker((server, "/requests/", bodies, "tok", 0.5, "POST"))
    assert done > 7 and done == len(Recorder.seen)
    assert [s["body"]["i"] for s in Recorder.seen[:9]] == [0, 1, 2, 3, 4, 5, 6, 0, 1]
    assert Recorder.seen[0]["body"]["name"] == "électrolyte"
    assert {s["auth"] for s in Recorder.seen} == {"Bearer tok"}


def test_a_chunked_answer_is_refused_not_misread(server):
    Recorder.chunked = True
    with pytest.raises(RuntimeError, match="chunked"):
        _worker((server, "/requests/", ['{"i": 1}'], "", 0.2, "POST"))
