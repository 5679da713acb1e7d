"""The key that signs access tokens, kept where no reader of the database finds it.

In order: ``LABWEAVE_SECRET_KEY``; the file ``LABWEAVE_SECRET_KEY_FILE``
(made with a new random key, mode 0600, if missing); for a SQLite database
``sqlite:///FILE``, the file ``FILE.key`` beside it (every replica on the
host shares the database file, so they share this one too). PostgreSQL
replicas run on several hosts: they need one of the two settings, the same
on every replica, and the server refuses to start without it.

Until now a key was made and kept in the database (table ``server_secret``),
where anyone who could read the database, or a backup of it, could sign
tokens for any user. Such a stored key is dealt with once, with a log line:
on SQLite it is replaced by the key file (tokens it signed stop working;
clients log in again); where a key is configured it is deleted; on
PostgreSQL without a configured key it goes on being used, with a warning
at every start, so a running lab keeps working until its operator sets one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlmodel import Session

from .config import MIN_KEY_BYTES, ConfigError, Settings, short_key_message
from .db.engine import Database
from .db.tables import ServerSecret

log = logging.getLogger(__name__)

#: The ``server_secret`` row where older versions kept the key.
STORED = "jwt"


@dataclass(frozen=True)
class SigningKey:
    """A signing key and where it came from (for log lines and error messages)."""

    value: str
    source: str

    @property
    def key_id(self) -> str:
        """A short fingerprint that tells keys apart without giving anything away (the tokens' ``kid``)."""
        return hashlib.sha256(b"labweave key id:" + self.value.encode()).hexdigest()[:12]


def default_key_file(database_url: str) -> Path | None:
    """``FILE.key`` beside a SQLite database ``FILE``; None for PostgreSQL."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database:
        return None
    return Path(f"{url.database}.key")


def read_or_make_key_file(path: Path) -> str:
    """The key held in ``path``; a new random one is written there first (mode 0600) if it is missing.

    Several replicas starting at once agree: the file appears complete or not
    at all (written beside, then linked into place), and whoever links second
    reads the first one's key.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=".labweave-key-", dir=path.parent)  # made 0600
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48) + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.link(temp, path)
            log.warning("made a new token signing key in %s (mode 0600)", path)
        except FileExistsError:
            pass  # another replica made it first
        finally:
            os.unlink(temp)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        log.warning("the signing key file %s can be read by other users (mode %04o): chmod 600 %s", path, mode, path)
    value = path.read_text().strip()
    if len(value.encode()) < MIN_KEY_BYTES:
        raise ConfigError(short_key_message(len(value.encode()), f"the signing key in {path}"))
    return value


def _stored_key(db: Database) -> str | None:
    with Session(db.read) as s:
        row = s.get(ServerSecret, STORED)
        return row.value if row is not None else None


def _forget_stored_key(db: Database) -> None:
    with Session(db.write) as s:
        row = s.get(ServerSecret, STORED)
        if row is not None:
            s.delete(row)
        s.commit()


def load_signing_key(db: Database, settings: Settings) -> SigningKey:
    """The key this server signs and checks tokens with (see the module's notes for where it comes from).

    Raises:
        ConfigError: no key can be found (PostgreSQL without a setting), or the key is too short.
    """
    stored = _stored_key(db)
    if settings.secret_key is not None:
        key = SigningKey(settings.secret_key.get_secret_value(), "LABWEAVE_SECRET_KEY")
    else:
        path = settings.secret_key_file or default_key_file(db.url)
        if path is None:
            if stored is None:
                raise ConfigError(
                    "PostgreSQL: set LABWEAVE_SECRET_KEY or LABWEAVE_SECRET_KEY_FILE (the same on every replica) "
                    "to the key that signs access tokens; it is not kept in the database, where any reader of "
                    "it could sign tokens")
            log.warning(
                "the token signing key is read from the database (table server_secret), where anyone who can "
                "read the database can sign tokens for any user: set LABWEAVE_SECRET_KEY or "
                "LABWEAVE_SECRET_KEY_FILE on every replica; the stored key is then deleted (users log in again)")
            return SigningKey(stored, "the database (table server_secret)")
        setting = "LABWEAVE_SECRET_KEY_FILE" if settings.secret_key_file else "the key file beside the database"
        key = SigningKey(read_or_make_key_file(Path(path)), f"{setting} ({path})")
    if stored is not None:
        _forget_stored_key(db)
        if stored == key.value:
            log.warning("the token signing key kept in the database is deleted; the same key now comes from %s",
                        key.source)
        else:
            log.warning("the token signing key kept in the database is deleted; tokens are now signed with the "
                        "key from %s, and tokens signed before no longer work (clients log in again)", key.source)
    log.info("token signing key from %s (key id %s)", key.source, key.key_id)
    return key
