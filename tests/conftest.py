"""Shared test fixtures: a real database per test (SQLite file or PostgreSQL), the real app."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from labweave.services.process import configure_threads

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")
configure_threads(1)  # once for the test process, as the labweave command does for each of its processes

REPO = Path(__file__).resolve().parents[1]
#: Data the tests read beside the clone: FINALES2's files (``finales2/``) and ``data/octet82.csv``.
SHARED = REPO.parent / "shared"
PG_ADMIN_URL = os.environ.get("LABWEAVE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def load(path: Path):
    return json.loads(path.read_text())


# ------------------------------------------------------------------ data of ../shared
# A test that reads ../shared must fail, naming what is missing, when it is not there: never
# skip, and never pass by comparing or looping over nothing.
def _missing(path: Path, what: str) -> str:
    return (f"test data missing: {what} {path} (the tests read FINALES2's files and octet82.csv "
            f"from shared/ beside the clone)")


def shared_path(*parts: str) -> Path:
    """A file or folder of ../shared; fails the calling test (or fixture) naming it when absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.fail(_missing(path, "no"), pytrace=False)
    return path


def shared_files(*parts: str, pattern: str = "*.json") -> list[Path]:
    """The files matching ``pattern`` under a folder of ../shared, sorted; fails the calling test when none."""
    folder = shared_path(*parts)
    files = sorted(folder.rglob(pattern))
    if not files:
        pytest.fail(_missing(folder, f"no {pattern} under"), pytrace=False)
    return files


def shared_params(*parts: str, pattern: str = "*.json") -> list:
    """Like :func:`shared_files`, for ``parametrize`` at collection: when there are no files, a single
    parameter whose test fails naming the folder, so that the parametrisation is never empty."""
    folder = SHARED.joinpath(*parts)
    files = sorted(folder.rglob(pattern)) if folder.is_dir() else []
    if files:
        return files
    return [pytest.param(folder, id="missing-data", marks=pytest.mark.missing_data(str(folder), pattern))]


def pytest_configure(config):
    config.addinivalue_line("markers", "missing_data(folder, pattern): the parametrisation found no data files")


def pytest_runtest_setup(item):
    marker = item.get_closest_marker("missing_data")
    if marker is not None:
        folder, pattern = marker.args
        pytest.fail(_missing(Path(folder), f"no {pattern} under"), pytrace=False)


def _pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_available() -> bool:
    return _pg_available()


def make_pg_database() -> tuple[str, callable]:
    """A fresh PostgreSQL database; returns its URL and a function that drops it."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"labweave_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return url, drop


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path, pg_available):
    """Each test's own database: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'labweave.db'}"
        return
    require_postgres(pg_available)
    url, drop = make_pg_database()
    yield url
    drop()


def require_postgres(available: bool) -> None:
    """Skip a test that needs PostgreSQL where it is not running; under CI (which starts it), fail."""
    if not available:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432 (CI starts it)")
        pytest.skip("PostgreSQL is not reachable")


@pytest.fixture
def pg_url(pg_available):
    """A fresh PostgreSQL database for the test (skipped, or failed under CI, where PostgreSQL is down)."""
    require_postgres(pg_available)
    url, drop = make_pg_database()
    yield url
    drop()


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'labweave.db'}"
