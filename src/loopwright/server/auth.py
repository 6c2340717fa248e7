"""Who is calling, and may they: bearer tokens and the role each route requires.

Every route declares its rule through a dependency: ``Depends(require("editor"))`` or
``Depends(public)``. A test walks the app's routes and fails on any route without one.

With auth off (a store with no active API token; the server then binds to loopback only), every
caller acts with the admin role, as the user its ``X-Loopwright-User`` header names (what
``lw.connect(url, user=...)`` sends) or else the server's own user: the same self-declared
identity as the embedded store, so approvals still check roles and separation of duties.
With auth on, a request needs ``Authorization: Bearer <token>`` (or HTTP Basic with the token
as password, which is what MLflow's client sends for ``MLFLOW_TRACKING_USERNAME``/``PASSWORD``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from ..errors import PermissionDenied, Unauthenticated
from ..governance.tokens import Identity
from ..governance.users import ROLES, role_at_least

if TYPE_CHECKING:
    from ._state import ServerState

__all__ = [
    "LOGIN_PATH",
    "LOGOUT_PATH",
    "SESSION_COOKIE",
    "UI_PREFIX",
    "USER_HEADER",
    "Identity",
    "identify_async",
    "public",
    "require",
    "require_async",
    "rule_of",
]

USER_HEADER = "X-Loopwright-User"  # who an unauthenticated (loopback) caller says it is
# The dashboard's session: its cookie holds the API token the login page took. Only paths under
# UI_PREFIX read it (the cookie's Path is UI_PREFIX too), so a browser's cookie never
# authenticates an API call; the dashboard's writes check a CSRF token (server/ui/_page.py).
UI_PREFIX = "/ui"
SESSION_COOKIE = "lw_session"
LOGIN_PATH = f"{UI_PREFIX}/login"  # takes a body before anyone is known (the request guard)
LOGOUT_PATH = f"{UI_PREFIX}/logout"  # forgets the cookie, whether or not its token still works


def _secret(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        if request.scope["path"].startswith(f"{UI_PREFIX}/"):
            return request.cookies.get(SESSION_COOKIE) or None
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthenticated("the Basic credentials are not valid base64 UTF-8") from None
        return decoded.partition(":")[2]
    # Never echo the header: without a scheme, its first word is the credential itself.
    raise Unauthenticated(
        "the Authorization header names no supported scheme; send 'Authorization: Bearer <token>'"
    )


def identify(request: Request) -> Identity:
    """The caller's identity (cached on the request)."""
    cached = getattr(request.state, "identity", None)
    if isinstance(cached, Identity):
        return cached
    state: ServerState = request.app.state.lw
    if not state.auth_enabled:
        declared = request.headers.get(USER_HEADER, "").strip()
        if len(declared) > 200:
            raise Unauthenticated(f"the {USER_HEADER} header is longer than 200 characters")
        identity = Identity(declared or state.default_user, "admin")
    else:
        secret = _secret(request)
        if not secret:
            raise Unauthenticated(
                "this server requires an API token: send 'Authorization: Bearer <token>' "
                "(create one with `loopwright tokens create USER`)"
            )
        identity = state.tokens.authenticate(secret)
    request.state.identity = identity
    return identity


def _known(request: Request) -> Identity | None:
    """The caller's identity when finding it needs no I/O: auth off, found before for this
    request, or a token the token service checked less than a second ago. None: the token
    must be looked up (:func:`identify`, in a worker thread)."""
    cached = getattr(request.state, "identity", None)
    if isinstance(cached, Identity):
        return cached
    state: ServerState = request.app.state.lw
    secret = _secret(request) if state.auth_enabled else None
    if not secret:
        return identify(request)  # auth off, or refused without a query
    identity = state.tokens.cached(secret)
    if identity is not None:
        request.state.identity = identity
    return identity


async def identify_async(request: Request) -> Identity:
    """:func:`identify` from the event loop: a token lookup that needs the database runs in
    the thread pool; everything else (auth off, a cached token) runs in place."""
    identity = _known(request)
    if identity is None:
        identity = await run_in_threadpool(identify, request)
    return identity


def _admit(identity: Identity, role: str) -> Identity:
    if not role_at_least(identity.role, role):
        raise PermissionDenied(
            f"user {identity.user!r} is {identity.role}; this needs the {role} role"
        )
    return identity


def _checked_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    return role


def require(role: str) -> Callable[[Request], Identity]:
    """A dependency that admits callers holding ``role`` or a higher one."""
    _checked_role(role)

    def dependency(request: Request) -> Identity:
        return _admit(identify(request), role)

    dependency.lw_rule = role  # type: ignore[attr-defined]
    return dependency


def require_async(role: str) -> Callable[[Request], Awaitable[Identity]]:
    """:func:`require` as an async dependency. FastAPI runs a sync dependency in its thread
    pool, a hop per dependency per request; this one stays on the event loop unless the
    token must be looked up."""
    _checked_role(role)

    async def dependency(request: Request) -> Identity:
        return _admit(await identify_async(request), role)

    dependency.lw_rule = role  # type: ignore[attr-defined]
    return dependency


def public(request: Request) -> None:
    """A dependency marking a route open to everyone (health, readiness, the API document)."""


public.lw_rule = "public"  # type: ignore[attr-defined]


def rule_of(dependency: object) -> str | None:
    """The access rule a dependency declares, if it is one of ours."""
    rule = getattr(dependency, "lw_rule", None)
    return rule if isinstance(rule, str) else None
