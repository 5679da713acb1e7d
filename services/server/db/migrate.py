"""Alembic migrations, run from code: ``labweave db upgrade`` and server start."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from .engine import Database

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(db: Database) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = db.write
    return cfg


def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision``; on PostgreSQL, one replica at a time."""
    cfg = alembic_config(db)
    if db.is_postgres:
        with db.write.connect() as conn:
            # a replica waits however long another one's migration takes (the engine's lock_timeout is for requests)
            conn.execute(text("SET lock_timeout = 0"))
            conn.execute(text("SELECT pg_advisory_lock(424242)"))
            try:
                command.upgrade(cfg, revision)
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(424242)"))
                conn.commit()
    else:
        command.upgrade(cfg, revision)
    log.info("database schema at %s", revision)
