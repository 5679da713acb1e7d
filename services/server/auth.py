"""Users, password hashes and bearer tokens.

Passwords are bcrypt hashes. Tokens are JWTs (HS256, ``sub`` = username, as
FINALES2's) signed with a key that every replica shares: the configured
``LABWEAVE_SECRET_KEY`` or, by default, one made once and kept in the
database. Verifying a token costs a signature check and a cached user
lookup, never a password hash, so clients log in once and reuse the token.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass

import bcrypt
import jwt
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from .db.engine import Database
from .db.tables import ServerSecret, User
from .errors import Invalid, Unauthorized

ROLES = ("operator", "tenant", "requester")


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user, their role, and the tenant they act for."""

    username: str
    role: str
    tenant_uuid: str | None = None

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"


def hash_password(password: str, rounds: int = 12) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


def verify_password(password: str, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode(), hashed.encode())
    except ValueError:
        return False


def load_secret(db: Database, configured: str | None) -> str:
    """The signing key: configured, or shared through the database."""
    if configured:
        return configured
    with Session(db.write) as s:
        row = s.get(ServerSecret, "jwt")
        if row is not None:
            return row.value
        value = secrets.token_urlsafe(48)
        s.add(ServerSecret(name="jwt", value=value))
        try:
            s.commit()
        except IntegrityError:  # another replica made it first
            s.rollback()
            return s.get(ServerSecret, "jwt").value
        return value


class Authenticator:
    """Logs users in and turns bearer tokens back into principals."""

    def __init__(self, db: Database, secret: str, token_minutes: float, cache_seconds: float = 5.0):
        self.db = db
        self.secret = secret
        self.token_seconds = token_minutes * 60
        self.cache_seconds = cache_seconds
        self._users: dict[str, tuple[float, Principal | None]] = {}
        self._tokens: dict[str, tuple[float, str]] = {}  # token -> (expiry, username), checked once
        self._lock = threading.Lock()

    def login(self, username: str, password: str) -> str:
        with Session(self.db.read) as s:
            user = s.exec(select(User).where(User.username == username)).first()
        if user is None or not user.is_active or not verify_password(password, user.password_hash):
            raise Unauthorized("Incorrect username or password")
        now = time.time()
        claims = {"sub": user.username, "role": user.role, "iat": int(now), "exp": int(now + self.token_seconds)}
        return jwt.encode(claims, self.secret, algorithm="HS256")

    def principal(self, token: str) -> Principal:
        known = self._tokens.get(token)
        if known is not None and known[0] > time.time():
            principal = self._user(known[1])
            if principal is None:
                raise Unauthorized(f"user {known[1]!r} is unknown or disabled")
            return principal
        try:
            claims = jwt.decode(token, self.secret, algorithms=["HS256"])
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired; log in again") from None
        except jwt.PyJWTError:
            raise Unauthorized("invalid token") from None
        username = claims.get("sub")
        if not isinstance(username, str):
            raise Unauthorized("invalid token")
        if len(self._tokens) > 10_000:
            self._tokens.clear()
        self._tokens[token] = (float(claims.get("exp", 0)), username)
        principal = self._user(username)
        if principal is None:
            raise Unauthorized(f"user {username!r} is unknown or disabled")
        return principal

    def _user(self, username: str) -> Principal | None:
        now = time.monotonic()
        with self._lock:
            hit = self._users.get(username)
        if hit and now - hit[0] < self.cache_seconds:
            return hit[1]
        with Session(self.db.read) as s:
            user = s.exec(select(User).where(User.username == username)).first()
        principal = (
            Principal(user.username, user.role, user.tenant_uuid) if user is not None and user.is_active else None
        )
        with self._lock:
            self._users[username] = (now, principal)
        return principal

    def forget(self, username: str) -> None:
        with self._lock:
            self._users.pop(username, None)


def add_user(db: Database, username: str, password: str, role: str, tenant_uuid: str | None, rounds: int) -> User:
    """Create a user (or replace the password and role of an existing one)."""
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if role == "tenant" and not tenant_uuid:
        raise Invalid("a tenant user needs --tenant UUID: the tenant it acts for")
    with Session(db.write) as s:
        if tenant_uuid:
            from .db.tables import Tenant

            if s.get(Tenant, tenant_uuid) is None:
                raise Invalid(f"tenant {tenant_uuid} is not registered")
        user = s.exec(select(User).where(User.username == username)).first()
        if user is None:
            user = User(username=username, password_hash="", role=role, created=time.time())
        user.password_hash = hash_password(password, rounds)
        user.role = role
        user.tenant_uuid = tenant_uuid
        user.is_active = True
        s.add(user)
        s.commit()
        s.refresh(user)
        return user
