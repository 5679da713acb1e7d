"""Storage faults made from outside the server: another process locking the SQLite file, a small
filesystem for the database and a file that fills it."""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path


LOCK_HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


def lock_database(path: Path, seconds: float) -> subprocess.Popen:
    """Another process holding ``BEGIN EXCLUSIVE`` on the SQLite file for ``seconds``; returns once it holds it."""
    proc = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(path), str(seconds)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def mount_tmpfs(folder: Path, size: str) -> str | None:
    """Mount a tmpfs of ``size`` on ``folder``; None when done, else why it cannot be (it needs root)."""
    folder.mkdir(parents=True, exist_ok=True)
    for command in (["mount"], ["sudo", "-n", "mount"]):
        try:
            done = subprocess.run([*command, "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(folder)],
                                  capture_output=True, text=True, timeout=30)
        except OSError as exc:  # no sudo
            why = str(exc)
            continue
        if done.returncode == 0:
            return None
        why = done.stderr.strip()
    return why


def unmount(folder: Path) -> None:
    for command in (["umount"], ["sudo", "-n", "umount"], ["umount", "-l"]):
        try:
            if subprocess.run([*command, str(folder)], capture_output=True, timeout=30).returncode == 0:
                return
        except OSError:
            continue


def fill_disk(path: Path) -> int:
    """Write ``path`` until the filesystem has no space left; the bytes written."""
    chunk = b"\0" * 65536
    written = 0
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                written += f.write(chunk)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    return written
