"""The floor: a bare FastAPI endpoint that parses a request body and inserts one SQLite row.

``labweave bench server`` drives it exactly as it drives the real server, so
each figure can be given as a fraction of what FastAPI, uvicorn and SQLite
alone manage on this machine.

Run: ``python -m labweave.services.bench.floor --port P --db FILE``.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import threading
import uuid

from fastapi import FastAPI

from labweave.schemas.core import Request


def create_floor_app(path: str) -> FastAPI:
    local = threading.local()

    def connection() -> sqlite3.Connection:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            local.conn = conn
        return conn

    setup = connection()
    setup.execute("CREATE TABLE IF NOT EXISTS request (id INTEGER PRIMARY KEY, uuid TEXT, body TEXT)")
    app = FastAPI()

    @app.post("/requests/")
    def post_request(request: Request) -> str:
        new = str(uuid.uuid4())
        connection().execute("INSERT INTO request (uuid, body) VALUES (?, ?)", (new, json.dumps(request.parameters)))
        return new

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True)
    args = parser.parse_args()
    uvicorn.run(create_floor_app(args.db), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
