"""The server's settings: one pydantic-settings class read from ``LABWEAVE_*``."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

SUPPORTED_DRIVERS = ("sqlite", "postgresql")


class Settings(BaseSettings):
    """Everything the server can be told; every field has a ``LABWEAVE_`` variable."""

    model_config = SettingsConfigDict(env_prefix="LABWEAVE_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///labweave.db",
        description="SQLAlchemy URL: sqlite:///FILE (default, in the working directory) or postgresql://...",
    )
    secret_key: str | None = Field(
        default=None, description="JWT signing key; by default one is made and kept in the database"
    )
    token_minutes: float = Field(default=12 * 60, gt=0, description="lifetime of an access token")
    password_rounds: int = Field(default=12, ge=4, le=16, description="bcrypt cost of password hashes")
    lease_seconds: float = Field(default=300.0, gt=0, description="default lease of a claim")
    max_lease_expiries: int = Field(default=3, ge=1, description="expired leases before a request fails")
    max_attempts: int = Field(default=3, ge=1, description="retryable failures before a request fails")
    sweep_seconds: float = Field(default=5.0, gt=0, description="how often expired leases are swept")
    tenant_offline_seconds: float = Field(default=60.0, gt=0, description="silence after which a tenant shows offline")
    auto_migrate: bool = Field(default=True, description="bring the database schema up to date on start")
    cache_seconds: float = Field(default=2.0, ge=0, description="how long capabilities and tenants are cached")
    max_body_bytes: int = Field(
        default=2 * 1024 * 1024, ge=1024, le=1024**3,
        description="largest request body accepted (413 beyond it, refused before it is read)",
    )
    max_json_depth: int = Field(default=32, ge=4, le=1000, description="deepest nesting of a JSON body (422 beyond it)")
    max_json_items: int = Field(
        default=100_000, ge=10, description="most entries in one JSON object or array of a body (422 beyond it)"
    )
    database_busy_seconds: float = Field(
        default=5.0, gt=0, le=300,
        description="how long a write waits for a locked database before the request is answered 503",
    )
    demo_data: bool = Field(default=False, description="load the FINALES2 fixtures and demo users on start")

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, v: str) -> str:
        try:
            url = make_url(v)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL: {v!r} ({exc})") from None
        backend = url.get_backend_name()
        if backend not in SUPPORTED_DRIVERS:
            raise ValueError(f"unsupported database {backend!r}: use sqlite:///FILE or postgresql://HOST/DB")
        if backend == "sqlite" and url.database in (None, "", ":memory:"):
            raise ValueError("SQLite needs a file (sqlite:///labweave.db); an in-memory database would be lost")
        return v
