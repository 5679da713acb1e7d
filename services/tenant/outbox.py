"""Results not yet acknowledged by the server, kept on disk.

A result is written here before it is posted and removed once the server
has it. A tenant that crashes between the two re-posts it at start with the
same idempotency key, so the server stores it once: no result is lost and
none is duplicated.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


class Outbox:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)
        return self.folder / f"{safe}.json"

    def put(self, key: str, result: dict) -> None:
        path = self._path(key)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"key": key, "result": result}))
        os.replace(tmp, path)

    def done(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def pending(self) -> list[tuple[str, dict]]:
        out = []
        for path in sorted(self.folder.glob("*.json")):
            entry = json.loads(path.read_text())
            out.append((entry["key"], entry["result"]))
        return out
