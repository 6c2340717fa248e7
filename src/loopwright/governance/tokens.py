"""API tokens: how a server request proves which user it comes from.

A token is shown once, when created (``lw_`` + 43 URL-safe characters, 256 random bits); the
store keeps only its SHA-256, so a leaked database does not leak usable tokens. A token belongs
to a user and acts with that user's current role; revoking it, disabling its user or passing its
expiry ends it within a second: a server keeps what it learnt of a token for at most
``CACHE_SECONDS`` (:meth:`TokenService.cached`), so most requests authenticate without a query.
Creating and revoking tokens is audited.

Example:
    >>> from loopwright.config import resolve_settings
    >>> from loopwright.store.home import open_store
    >>> from loopwright.governance.users import UserService
    >>> store = open_store(resolve_settings(home="lw-doc-tokens"))
    >>> _ = UserService(store, actor="root").add("root", "admin")
    >>> tokens = TokenService(store, actor="root")
    >>> created = tokens.create("root", name="laptop")
    >>> tokens.authenticate(created.secret).user
    'root'
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from .._ids import new_id, now_ms
from ..errors import InvalidInput, NotFound, PermissionDenied, Unauthenticated
from ..store import schema as t
from ..store.audit import append_event

if TYPE_CHECKING:
    from ..store.home import Store

__all__ = ["ApiToken", "CreatedToken", "Identity", "TokenService", "hash_token"]

PREFIX = "lw_"
_LAST_USED_EVERY_MS = 60_000  # write last_used_at at most once a minute per token
CACHE_SECONDS = 1.0  # how long a revoked token, or a disabled user's, may still be accepted
_CACHE_ENTRIES = 10_000


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ApiToken:
    id: str
    user: str
    name: str
    created_at: int
    expires_at: int | None
    revoked_at: int | None
    last_used_at: int | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now_ms())


@dataclass(frozen=True)
class CreatedToken:
    """A new token; ``secret`` is shown this once and never stored."""

    token: ApiToken
    secret: str


@dataclass(frozen=True)
class Identity:
    """Who a request comes from: the user, their role now, and the token used."""

    user: str
    role: str
    token_id: str | None = None


class TokenService:
    """Create, list, revoke and check API tokens."""

    def __init__(
        self,
        store: Store,
        *,
        actor: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.db = store.db
        self.actor = actor or store.actor
        self._clock = clock
        # digest -> (identity, expires_at, when it was read): what authenticate found, reused
        # for CACHE_SECONDS; a plain dict, as its reads and writes are atomic across threads.
        self._known: dict[str, tuple[Identity, int | None, float]] = {}

    def create(
        self, user: str, *, name: str = "default", expires_in_days: float | None = None
    ) -> CreatedToken:
        """A new token for ``user`` (who must exist and be enabled)."""
        if not name or len(name) > 200:
            raise InvalidInput("a token name must be 1-200 characters")
        if expires_in_days is not None and expires_in_days <= 0:
            raise InvalidInput("expires_in_days must be positive (omit it for no expiry)")
        secret = PREFIX + secrets.token_urlsafe(32)
        now = now_ms()
        expires = None if expires_in_days is None else now + int(expires_in_days * 86_400_000)
        token_id = new_id()
        with self.db.write() as conn:
            row = conn.execute(
                sa.select(t.users.c.id, t.users.c.disabled).where(t.users.c.name == user)
            ).first()
            if row is None:
                raise NotFound(f"user {user!r} does not exist; add it with `loopwright users add`")
            if row.disabled:
                raise InvalidInput(f"user {user!r} is disabled; enable it before giving it tokens")
            self._require_self_or_admin(conn, user, "create a token for")
            conn.execute(
                t.api_tokens.insert(),
                {
                    "id": token_id,
                    "user_id": row.id,
                    "name": name,
                    "token_hash": hash_token(secret),
                    "created_at": now,
                    "expires_at": expires,
                },
            )
            append_event(
                conn,
                actor=self.actor,
                action="token.create",
                subject_type="api_token",
                subject_id=token_id,
                before=None,
                after={"user": user, "name": name, "expires_at": expires},
            )
        token = ApiToken(token_id, user, name, now, expires, None, None)
        return CreatedToken(token, secret)

    def list(self, user: str | None = None) -> list[ApiToken]:
        query = self._select()
        if user is not None:
            query = query.where(t.users.c.name == user)
        with self.db.read() as conn:
            return [_token(r) for r in conn.execute(query.order_by(t.api_tokens.c.created_at))]

    def revoke(self, token_id: str) -> ApiToken:
        """End a token now (by id; `loopwright tokens list` shows ids)."""
        k = t.api_tokens.c
        with self.db.write() as conn:
            row = conn.execute(self._select().where(k.id == token_id)).first()
            if row is None:
                raise NotFound(f"API token {token_id!r} does not exist")
            self._require_self_or_admin(conn, str(row.name), "revoke a token of")
            if row.revoked_at is None:
                now = now_ms()
                conn.execute(sa.update(t.api_tokens).where(k.id == token_id).values(revoked_at=now))
                append_event(
                    conn,
                    actor=self.actor,
                    action="token.revoke",
                    subject_type="api_token",
                    subject_id=token_id,
                    before={"revoked_at": None},
                    after={"revoked_at": now},
                )
            row = conn.execute(self._select().where(k.id == token_id)).one()
        self.forget()
        return _token(row)

    def cached(self, secret: str) -> Identity | None:
        """The identity ``secret`` stood for when :meth:`authenticate` checked it less than
        ``CACHE_SECONDS`` ago and it has not expired since; None when the database must be
        asked. Does no I/O, so a server may call it on its event loop."""
        if len(secret) > 200:
            return None
        known = self._known.get(hash_token(secret))
        if known is None:
            return None
        identity, expires_at, read_at = known
        if self._clock() - read_at >= CACHE_SECONDS:
            return None
        if expires_at is not None and expires_at <= now_ms():
            return None
        return identity

    def forget(self) -> None:
        """Drop every cached identity (after a change to tokens or users in this process)."""
        self._known.clear()

    def authenticate(self, secret: str) -> Identity:
        """The identity a presented token stands for, or ``Unauthenticated``."""
        if not secret.startswith(PREFIX) or len(secret) > 200:
            raise Unauthenticated(
                "the API token is malformed; create one with `loopwright tokens create`"
            )
        digest = hash_token(secret)
        read_at = self._clock()
        k, u = t.api_tokens.c, t.users.c
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(k.id, k.token_hash, k.expires_at, k.revoked_at, k.last_used_at, u.name)
                .add_columns(u.role, u.disabled)
                .join(t.users, u.id == k.user_id)
                .where(k.token_hash == digest)
            ).first()
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            self._known.pop(digest, None)
            raise Unauthenticated(
                "the API token is unknown; create one with `loopwright tokens create`"
            )
        now = now_ms()
        try:
            if row.revoked_at is not None:
                raise Unauthenticated("the API token was revoked")
            if row.expires_at is not None and row.expires_at <= now:
                raise Unauthenticated("the API token has expired; create a new one")
            if row.disabled:
                raise Unauthenticated(f"user {row.name!r} is disabled")
        except Unauthenticated:
            self._known.pop(digest, None)
            raise
        if row.last_used_at is None or now - row.last_used_at > _LAST_USED_EVERY_MS:
            with self.db.write() as conn:
                conn.execute(sa.update(t.api_tokens).where(k.id == row.id).values(last_used_at=now))
        identity = Identity(row.name, row.role, row.id)
        if len(self._known) >= _CACHE_ENTRIES:
            self._known.clear()
        self._known[digest] = (identity, row.expires_at, read_at)
        return identity

    def any_active(self) -> bool:
        """Whether some enabled user holds an unrevoked, unexpired token (auth is then on)."""
        k, u = t.api_tokens.c, t.users.c
        now = now_ms()
        with self.db.read() as conn:
            return (
                conn.execute(
                    sa.select(k.id)
                    .join(t.users, u.id == k.user_id)
                    .where(
                        k.revoked_at.is_(None),
                        sa.or_(k.expires_at.is_(None), k.expires_at > now),
                        u.disabled.is_(False),
                    )
                    .limit(1)
                ).first()
                is not None
            )

    def _require_self_or_admin(self, conn: sa.Connection, user: str, doing: str) -> None:
        """Users manage their own tokens; others' need an enabled admin (once one exists)."""
        if self.actor == user:
            return
        u = t.users.c
        admins = {
            r.name
            for r in conn.execute(sa.select(u.name).where(u.role == "admin", u.disabled.is_(False)))
        }
        if admins and self.actor not in admins:
            raise PermissionDenied(
                f"{self.actor!r} may not {doing} {user!r}: only the user or an admin may"
            )

    def _select(self) -> sa.Select[tuple[object, ...]]:
        k = t.api_tokens.c
        return (
            sa.select(k.id, t.users.c.name, k.name.label("token_name"), k.created_at, k.expires_at)
            .add_columns(k.revoked_at, k.last_used_at)
            .join(t.users, t.users.c.id == k.user_id)
        )


def _token(row: sa.Row[tuple[object, ...]]) -> ApiToken:
    return ApiToken(
        row.id,
        row.name,
        row.token_name,
        row.created_at,
        row.expires_at,
        row.revoked_at,
        row.last_used_at,
    )
