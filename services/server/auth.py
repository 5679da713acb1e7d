"""Users, password hashes and bearer tokens.

Passwords are bcrypt hashes (bcrypt reads 72 bytes, so a longer password is
refused rather than cut). Tokens are JWTs (HS256, ``sub`` = username, as
FINALES2's) signed with a key kept outside the database (see
:mod:`.signing_key`). Every token carries ``iat``, ``exp`` and the user's
token generation ``gen``: one without them, or living longer than
``LABWEAVE_TOKEN_MINUTES``, is refused, and changing a user's password or
disabling the user raises the generation, which revokes every token issued
before. Verifying a token costs a signature check (once per token and
process) and a read of the user's row, never a password hash, so clients log
in once and reuse the token.

A login does the same work whether or not the user exists (an unknown name
is checked against a dummy hash of the configured cost), and failed logins
are throttled per user name and per client address (:mod:`.login_throttle`).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import bcrypt
import jwt
from sqlalchemy import bindparam
from sqlmodel import Session, select

from .config import Settings
from .db.engine import Database
from .db.tables import User, table_of
from .errors import Invalid, NotFound, Unauthorized
from .login_throttle import LoginThrottle
from .signing_key import SigningKey, load_signing_key

log = logging.getLogger(__name__)

ROLES = ("operator", "tenant", "requester")
#: bcrypt reads this many bytes of a password and ignores the rest.
PASSWORD_BYTES = 72
#: How far ahead of this server's clock another replica's ``iat`` may be.
CLOCK_SKEW_SECONDS = 300
#: Verified tokens kept per process (their signatures need not be checked again).
KNOWN_TOKENS = 10_000
#: What a request reads of its user, in this order (see :meth:`Authenticator.admit`).
ACCOUNT_COLUMNS = ("role", "tenant_uuid", "is_active", "token_generation")
#: The read of a user's account (built once: building it costs more than running it).
ACCOUNT = select(*[table_of(User).c[n] for n in ACCOUNT_COLUMNS]).where(
    table_of(User).c.username == bindparam("username"))


def _sqlite_account_sql(db: Database) -> str | None:
    """:data:`ACCOUNT` as SQLite's driver takes it (one ``?``, the user name); None on other databases."""
    if db.read.dialect.name != "sqlite":
        return None
    compiled = ACCOUNT.compile(dialect=db.read.dialect)
    assert compiled.positiontup == ["username"], compiled.positiontup
    return str(compiled)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user, their role, and the tenant they act for."""

    username: str
    role: str
    tenant_uuid: str | None = None

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"


@dataclass(frozen=True)
class TokenClaims:
    """What a verified token says."""

    username: str
    generation: int
    issued: float
    expires: float


@dataclass(frozen=True)
class _Account:
    principal: Principal
    generation: int


def admitted(claims: TokenClaims, account: _Account | None) -> Principal:
    """Who a verified token speaks for, given its user's account as read now (None: unknown or disabled).

    Raises:
        Unauthorized: the user is unknown or disabled, or the token is of an older generation (revoked).
    """
    if account is None:
        raise Unauthorized(f"user {claims.username!r} is unknown or disabled")
    if account.generation != claims.generation:
        raise Unauthorized("token revoked (the password changed or the user was disabled); log in again")
    return account.principal


@dataclass(frozen=True)
class Caller:
    """A verified token and its user as this process last read it.

    For a route that reads the user's row in its own first statement (a claim) rather than in a
    statement of its own: it plans with :attr:`principal`, then :meth:`confirm` gives the verdict on
    the row it read (as :meth:`Authenticator.principal` would) and who the user is now.
    """

    claims: TokenClaims
    principal: Principal
    auth: "Authenticator"

    def confirm(self, row: tuple[Any, ...] | None) -> Principal:
        return self.auth.admit(self.claims, row)


def check_password_length(password: str) -> None:
    """Refuse a password bcrypt would cut short (422 naming the field)."""
    size = len(password.encode())
    if size > PASSWORD_BYTES:
        raise Invalid(f"password: at most {PASSWORD_BYTES} bytes (UTF-8), bcrypt's limit; this one has {size}")


def hash_password(password: str, rounds: int = 12) -> str:
    check_password_length(password)
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


def verify_password(password: str, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode(), hashed.encode())
    except ValueError:
        return False


class Authenticator:
    """Logs users in and turns bearer tokens back into principals.

    Args:
        db: the database holding the users.
        key: the signing key.
        token_minutes: the lifetime of a token, and the longest one accepted.
        password_rounds: the bcrypt cost of the dummy hash an unknown user is checked against.
        throttle: counts failed logins (None: no throttling).
        cache_seconds: how long a user's state is kept in memory (0: read on every request).
    """

    def __init__(self, db: Database, key: SigningKey, token_minutes: float, *, password_rounds: int = 12,
                 throttle: LoginThrottle | None = None, cache_seconds: float = 0.0):
        self.db = db
        self.key = key
        self.token_seconds = token_minutes * 60
        self.password_rounds = password_rounds
        self.throttle = throttle
        self.cache_seconds = cache_seconds
        self._users: dict[str, tuple[float, _Account | None]] = {}
        #: Each user's account as last read (whatever ``cache_seconds``): what :meth:`caller` starts from.
        self._known: dict[str, _Account] = {}
        self._tokens: dict[str, TokenClaims] = {}  # verified once, then trusted until they expire
        self._lock = threading.Lock()
        self._account_sql = _sqlite_account_sql(db)
        # what an unknown user's password is checked against: as costly as a real user's (made now, so that
        # even the first unknown name costs no more than a known one)
        self._dummy_hash = hash_password(secrets.token_urlsafe(16), password_rounds)

    @classmethod
    def open(cls, db: Database, settings: Settings) -> "Authenticator":
        """The authenticator the settings describe (signing key, token lifetime, throttling)."""
        throttle = LoginThrottle(db, settings.login_window_seconds, settings.login_failures_per_user,
                                 settings.login_failures_per_address)
        return cls(db, load_signing_key(db, settings), settings.token_minutes,
                   password_rounds=settings.password_rounds, throttle=throttle,
                   cache_seconds=settings.auth_cache_seconds)

    # -- logging in --------------------------------------------------------
    def login(self, username: str, password: str, address: str | None = None) -> str:
        """A token for ``username``, if the password is right and the user active.

        Args:
            address: the client's address, throttled on its own (None: per user name only).

        Raises:
            Invalid: the password is longer than bcrypt reads.
            TooManyAttempts: too many failed logins of this user name or from this address.
            Unauthorized: wrong password, unknown or disabled user (one message for all three).
        """
        check_password_length(password)
        attempt = self.throttle.begin(username, address) if self.throttle else None
        with Session(self.db.read) as s:
            user = s.exec(select(User).where(User.username == username)).first()
        right = verify_password(password, user.password_hash if user is not None else self._dummy_hash)
        if not right or user is None or not user.is_active:
            why = "unknown user" if user is None else "disabled user" if not user.is_active else "wrong password"
            log.info("login refused for %r from %s: %s", username, address or "an unknown address", why)
            raise Unauthorized("Incorrect username or password")
        if attempt is not None and self.throttle is not None:
            self.throttle.succeeded(attempt)
        issued = int(time.time())
        claims = {"sub": user.username, "role": user.role, "gen": user.token_generation, "iat": issued,
                  "exp": issued + max(1, int(self.token_seconds))}
        return jwt.encode(claims, self.key.value, algorithm="HS256", headers={"kid": self.key.key_id})

    # -- checking tokens ---------------------------------------------------
    def claims(self, token: str) -> TokenClaims:
        """The verified claims of ``token``.

        Raises:
            Unauthorized: a bad signature, a claim missing, expired, or living longer than this server allows.
        """
        now = time.time()
        known = self._tokens.get(token)
        if known is None:
            known = self._verify(token, now)
            if len(self._tokens) >= KNOWN_TOKENS:
                self._tokens.clear()
            self._tokens[token] = known
        if known.expires <= now:
            raise Unauthorized("token expired; log in again")
        if known.expires - known.issued > self.token_seconds:
            raise Unauthorized(f"token refused: it lives longer than the {self.token_seconds / 60:g} minutes "
                               "this server allows; log in again")
        return known

    def _verify(self, token: str, now: float) -> TokenClaims:
        try:
            claims = jwt.decode(token, self.key.value, algorithms=["HS256"],
                                options={"require": ["exp", "iat", "sub"], "verify_iat": False})
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired; log in again") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(f"invalid token: it has no {exc.claim!r}") from None
        except jwt.InvalidSignatureError:
            raise Unauthorized(self._signature_problem(token)) from None
        except jwt.PyJWTError:
            raise Unauthorized("invalid token") from None
        username, generation = claims.get("sub"), claims.get("gen")
        issued, expires = claims["iat"], claims["exp"]
        if not isinstance(username, str) or type(generation) is not int:
            raise Unauthorized("invalid token: it names no user or no token generation; log in again")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (issued, expires)):
            raise Unauthorized("invalid token: iat and exp must be numbers")
        if issued > now + CLOCK_SKEW_SECONDS:
            raise Unauthorized("invalid token: issued in the future")
        return TokenClaims(username, generation, float(issued), float(expires))

    def _signature_problem(self, token: str) -> str:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            kid = None
        if isinstance(kid, str) and kid != self.key.key_id:
            return (f"invalid token: signed with another key (key id {kid}, this server's is {self.key.key_id}); "
                    "replicas need the same LABWEAVE_SECRET_KEY or LABWEAVE_SECRET_KEY_FILE")
        return "invalid token"

    def principal(self, token: str) -> Principal:
        """Who ``token`` speaks for: its user, if still active and the token not revoked since."""
        claims = self.claims(token)
        return admitted(claims, self._account(claims.username))

    def caller(self, token: str) -> Caller:
        """``token``'s claims and its user as last read in this process, for a route that reads the user's
        row in its own first statement (:meth:`admit`); the user's row is read here only when this
        process has not read it since the token's generation began."""
        claims = self.claims(token)
        with self._lock:
            known = self._known.get(claims.username)
        if known is None or known.generation != claims.generation:
            return Caller(claims, self.principal(token), self)
        return Caller(claims, known.principal, self)

    def admit(self, claims: TokenClaims, row: tuple[Any, ...] | None) -> Principal:
        """:meth:`principal`'s verdict on the user's row ``(role, tenant_uuid, is_active, token_generation)``
        read by the caller (None: no such user)."""
        account = self._remember(claims.username, row, time.monotonic())
        return admitted(claims, account)

    def _account(self, username: str) -> _Account | None:
        now = time.monotonic()
        if self.cache_seconds:
            with self._lock:
                hit = self._users.get(username)
            if hit and now - hit[0] < self.cache_seconds:
                return hit[1]
        return self._remember(username, self._read_account(username), now)

    def _remember(self, username: str, row: tuple[Any, ...] | None, now: float) -> _Account | None:
        """The account a user's row gives (None: unknown or disabled), noted as the last read."""
        account = None
        if row is not None:
            role, tenant_uuid, is_active, generation = row
            if is_active:
                account = _Account(Principal(username, role, tenant_uuid), generation)
        with self._lock:
            if self.cache_seconds:
                self._users[username] = (now, account)
            if account is None:
                self._known.pop(username, None)
            else:
                if len(self._known) >= KNOWN_TOKENS:
                    self._known.clear()
                self._known[username] = account
        return account

    def _read_account(self, username: str) -> tuple[Any, ...] | None:
        """The user's row (role, tenant_uuid, is_active, token_generation), read afresh.

        On SQLite one statement on the driver's connection, which is in autocommit mode
        (see :mod:`.db.engine`): SQLite runs it as its own transaction and sees every change
        committed before it, so a BEGIN and a ROLLBACK around it would only add round trips.
        SQLAlchemy's transaction begins with them (the engine's ``begin`` hook), hence the
        driver here. Elsewhere (PostgreSQL) the Core statement in autocommit: a statement alone is
        its own transaction, and a BEGIN and a ROLLBACK around it would be two more round trips.
        """
        if self._account_sql is None:
            with self.db.read.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                row = conn.execute(ACCOUNT, {"username": username}).first()
            return None if row is None else tuple(row)
        raw = self.db.read.raw_connection()
        try:
            cursor = raw.cursor()
            try:
                cursor.execute(self._account_sql, (username,))
                found = cursor.fetchone()
                return None if found is None else tuple(found)
            finally:
                cursor.close()
        finally:
            raw.close()  # back to the pool (which resets nothing: there is no transaction to end)

    def forget(self, username: str) -> None:
        """Read the user's state afresh on the next request (after a change made here)."""
        with self._lock:
            self._users.pop(username, None)
            self._known.pop(username, None)


# -- accounts -------------------------------------------------------------
def add_user(db: Database, username: str, password: str, role: str, tenant_uuid: str | None, rounds: int) -> User:
    """Create a user (or replace the password, role and tenant of an existing one, revoking its tokens)."""
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if role == "tenant" and not tenant_uuid:
        raise Invalid("a tenant user needs --tenant UUID: the tenant it acts for")
    hashed = hash_password(password, rounds)
    with Session(db.write) as s:
        if tenant_uuid:
            from .db.tables import Tenant

            if s.get(Tenant, tenant_uuid) is None:
                raise Invalid(f"tenant {tenant_uuid} is not registered")
        user = s.exec(select(User).where(User.username == username)).first()
        now = time.time()
        if user is None:
            user = User(username=username, password_hash="", role=role, created=now)
        else:
            user.token_generation += 1
            user.password_changed = now
        user.password_hash = hashed
        user.role = role
        user.tenant_uuid = tenant_uuid
        user.is_active = True
        s.add(user)
        s.commit()
        s.refresh(user)
        return user


def _change_user(db: Database, username: str, change) -> User:  # noqa: ANN001
    with Session(db.write) as s:
        user = s.exec(select(User).where(User.username == username)).first()
        if user is None:
            raise NotFound(f"no user {username!r}")
        change(user)
        s.add(user)
        s.commit()
        s.refresh(user)
        return user


def set_password(db: Database, username: str, password: str, rounds: int) -> User:
    """Give ``username`` a new password; every token issued before stops working."""
    hashed = hash_password(password, rounds)

    def change(user: User) -> None:
        user.password_hash = hashed
        user.password_changed = time.time()
        user.token_generation += 1

    return _change_user(db, username, change)


def set_active(db: Database, username: str, active: bool) -> User:
    """Enable or disable ``username``; disabling stops its tokens at once (and enabling does not revive them)."""

    def change(user: User) -> None:
        if user.is_active and not active:
            user.token_generation += 1
        user.is_active = active

    return _change_user(db, username, change)
