"""Results not yet acknowledged by the server, kept on disk; and those it refused, kept as dead letters.

A result is written here before it is posted and removed once the server
has it. A tenant that crashes between the two re-posts it at start with the
same idempotency key, so the server stores it once: no result is lost and
none is duplicated.

A result the server refuses for good (a 4xx that is not transient: its data
fails the capability's output schema, the request was resolved by another
tenant...) is not dropped: it moves to ``dead/`` with the server's refusal,
and stays there until an operator posts it again (:meth:`Outbox.retry`, back
to the outbox) or discards it (:meth:`Outbox.discard`, moved to
``discarded/``, never deleted). ``labweave tenant outbox`` does both on the
tenant's machine.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


class Outbox:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.dead_folder = self.folder / "dead"
        self.discarded_folder = self.folder / "discarded"
        for folder in (self.folder, self.dead_folder, self.discarded_folder):
            folder.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def _name(key: str) -> str:
        return "".join(c if c.isalnum() or c in "-_." else "_" for c in key) + ".json"

    def _path(self, key: str) -> Path:
        return self.folder / self._name(key)

    @staticmethod
    def _write(path: Path, entry: dict[str, Any]) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(entry))
        os.replace(tmp, path)

    def put(self, key: str, result: dict) -> None:
        self._write(self._path(key), {"key": key, "result": result})

    def done(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def pending(self) -> list[tuple[str, dict]]:
        out = []
        for path in sorted(self.folder.glob("*.json")):
            entry = json.loads(path.read_text())
            out.append((entry["key"], entry["result"]))
        return out

    # -- dead letters ------------------------------------------------------
    def dead(self, key: str, refusal: str, status_code: int | None) -> None:
        """Keep the result ``key`` as a dead letter with the server's refusal (written before it leaves the outbox).

        Raises:
            KeyError: no result of that key is in the outbox.
        """
        source = self._path(key)
        if not source.exists():
            raise KeyError(f"no result {key!r} in the outbox")
        entry = json.loads(source.read_text())
        entry.update(refusal=refusal, status_code=status_code, kept_at=time.time())
        self._write(self.dead_folder / source.name, entry)
        source.unlink(missing_ok=True)

    def dead_letters(self) -> list[dict[str, Any]]:
        """Every dead letter: ``key``, ``result``, ``refusal``, ``status_code``, ``kept_at``; oldest first."""
        entries = [json.loads(path.read_text()) for path in self.dead_folder.glob("*.json")]
        return sorted(entries, key=lambda e: (e.get("kept_at", 0.0), e["key"]))

    def _dead_path(self, key: str) -> Path:
        path = self.dead_folder / self._name(key)
        if not path.exists():
            known = ", ".join(e["key"] for e in self.dead_letters()) or "none"
            raise KeyError(f"no dead letter {key!r} (dead letters: {known})")
        return path

    def retry(self, key: str) -> None:
        """Put a dead letter back in the outbox: the tenant posts it again (same idempotency key).

        Raises:
            KeyError: no dead letter of that key.
        """
        path = self._dead_path(key)
        entry = json.loads(path.read_text())
        self.put(entry["key"], entry["result"])
        path.unlink()

    def discard(self, key: str) -> None:
        """Give up a dead letter: it moves to ``discarded/`` (kept on disk, never posted).

        Raises:
            KeyError: no dead letter of that key.
        """
        path = self._dead_path(key)
        entry = json.loads(path.read_text()) | {"discarded_at": time.time()}
        self._write(self.discarded_folder / path.name, entry)
        path.unlink()
