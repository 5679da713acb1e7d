"""The server's settings: one pydantic-settings class read from ``LABWEAVE_*``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

SUPPORTED_DRIVERS = ("sqlite", "postgresql")
#: A signing key shorter than this is refused (HS256 wants at least its 32-byte output).
MIN_KEY_BYTES = 32
#: The longest lifetime ``LABWEAVE_TOKEN_MINUTES`` may give a token: one day.
MAX_TOKEN_MINUTES = 24 * 60


class ConfigError(RuntimeError):
    """The server cannot start with these settings; the message says what to change."""


class Settings(BaseSettings):
    """Everything the server can be told; every field has a ``LABWEAVE_`` variable."""

    model_config = SettingsConfigDict(env_prefix="LABWEAVE_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///labweave.db",
        description="SQLAlchemy URL: sqlite:///FILE (default, in the working directory) or postgresql://...",
    )
    database_password_file: Path | None = Field(
        default=None,
        description="file holding the database user's password (a container secret), used with a "
        "LABWEAVE_DATABASE_URL that names no password; its last line break is ignored",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="JWT signing key (at least 32 bytes), the same on every replica; by default a key file is used",
    )
    secret_key_file: Path | None = Field(
        default=None,
        description="file holding the JWT signing key, made (0600) with a new key if missing; by default "
        "FILE.key beside a SQLite database sqlite:///FILE (PostgreSQL: set this or LABWEAVE_SECRET_KEY)",
    )
    token_minutes: float = Field(
        default=12 * 60, gt=0, le=MAX_TOKEN_MINUTES,
        description="lifetime of an access token (at most a day); a token living longer is refused",
    )
    login_window_seconds: float = Field(
        default=900.0, gt=0, le=86400, description="the window in which failed logins are counted"
    )
    login_failures_per_user: int = Field(
        default=5, ge=1, description="failed logins of one user name in the window before its logins get 429"
    )
    login_failures_per_address: int = Field(
        default=30, ge=1, description="failed logins from one client address in the window before its logins get 429"
    )
    auth_cache_seconds: float = Field(
        default=0.0, ge=0, le=60,
        description="how long a user's state is cached per process (0: read on every request); a disabled "
        "user or changed password reaches the other replicas within this",
    )
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
    event_retention_days: float = Field(
        default=90.0, ge=0,
        description="events older than this move from the live log to event_archive (0: never); nothing is deleted",
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

    @field_validator("secret_key")
    @classmethod
    def _long_enough(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and len(v.get_secret_value().encode()) < MIN_KEY_BYTES:
            raise ValueError(short_key_message(len(v.get_secret_value().encode())))
        return v

    @model_validator(mode="after")
    def _one_key_source(self) -> "Settings":
        if self.secret_key is not None and self.secret_key_file is not None:
            raise ValueError("set LABWEAVE_SECRET_KEY or LABWEAVE_SECRET_KEY_FILE, not both")
        return self

    @model_validator(mode="after")
    def _one_password_source(self) -> "Settings":
        if self.database_password_file is not None:
            if make_url(self.database_url).password is not None:
                raise ValueError("LABWEAVE_DATABASE_URL names a password and LABWEAVE_DATABASE_PASSWORD_FILE "
                                 "gives one: set only one")
            read_secret_file(self.database_password_file, "LABWEAVE_DATABASE_PASSWORD_FILE")
        return self

    def engine_url(self) -> str:
        """The URL the database is opened with: :attr:`database_url` with the password of
        ``LABWEAVE_DATABASE_PASSWORD_FILE`` put in (never logged; show :attr:`database_url`)."""
        if self.database_password_file is None:
            return self.database_url
        password = read_secret_file(self.database_password_file, "LABWEAVE_DATABASE_PASSWORD_FILE")
        return make_url(self.database_url).set(password=password).render_as_string(hide_password=False)


def read_secret_file(path: Path, setting: str) -> str:
    """The secret held in ``path`` (a compose or Kubernetes secret: one line, its line break ignored)."""
    try:
        value = path.read_text().rstrip("\r\n")
    except OSError as exc:
        raise ValueError(f"{setting}: cannot read {path}: {exc.strerror or exc}") from None
    if not value:
        raise ValueError(f"{setting}: {path} is empty")
    return value


def short_key_message(length: int, source: str = "LABWEAVE_SECRET_KEY") -> str:
    return (f"{source} is {length} bytes; a signing key needs at least {MIN_KEY_BYTES} "
            "(make one with: python -c 'import secrets; print(secrets.token_urlsafe(48))')")
