"""The token cache: a token checked less than CACHE_SECONDS ago is answered without a query, and
a revoked token, a disabled user or a changed role takes effect once that time has passed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from loopwright.config import resolve_settings
from loopwright.errors import Unauthenticated
from loopwright.governance.tokens import CACHE_SECONDS, TokenService
from loopwright.governance.users import UserService
from loopwright.store.home import Store, open_store


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path, db_uri: str) -> Iterator[Store]:
    with open_store(resolve_settings(home=tmp_path / "home", db_uri=db_uri)) as s:
        users = UserService(s, actor="root")
        users.add("root", "admin")
        users.add("ada", "editor")
        yield s


def test_a_checked_token_is_answered_from_the_cache_until_the_window_ends(store: Store) -> None:
    clock = Clock()
    server = TokenService(store, actor="root", clock=clock)
    secret = TokenService(store, actor="root").create("ada").secret
    assert server.cached(secret) is None  # never checked: the database must be asked
    identity = server.authenticate(secret)
    assert server.cached(secret) == identity
    clock.now += CACHE_SECONDS - 0.01
    assert server.cached(secret) == identity
    clock.now += 0.01
    assert server.cached(secret) is None


def test_a_revocation_elsewhere_is_refused_once_the_window_has_passed(store: Store) -> None:
    clock = Clock()
    server = TokenService(store, actor="root", clock=clock)
    created = TokenService(store, actor="root").create("ada")
    server.authenticate(created.secret)
    TokenService(store, actor="root").revoke(created.token.id)  # the CLI, another process
    clock.now += CACHE_SECONDS
    assert server.cached(created.secret) is None
    with pytest.raises(Unauthenticated, match="revoked"):
        server.authenticate(created.secret)
    assert server.cached(created.secret) is None  # a refusal is never cached


def test_a_revocation_through_the_same_service_is_refused_at_once(store: Store) -> None:
    server = TokenService(store, actor="root", clock=Clock())
    created = server.create("ada")
    server.authenticate(created.secret)
    server.revoke(created.token.id)
    assert server.cached(created.secret) is None
    with pytest.raises(Unauthenticated, match="revoked"):
        server.authenticate(created.secret)


def test_a_disabled_user_and_a_new_role_show_once_the_window_has_passed(store: Store) -> None:
    clock = Clock()
    server = TokenService(store, actor="root", clock=clock)
    ada = TokenService(store, actor="root").create("ada").secret
    assert server.authenticate(ada).role == "editor"
    UserService(store, actor="root").add("bob", "editor")
    bob = TokenService(store, actor="root").create("bob").secret
    server.authenticate(bob)
    UserService(store, actor="root").disable("bob")
    UserService(store, actor="root").set_role("ada", "viewer")
    clock.now += CACHE_SECONDS
    with pytest.raises(Unauthenticated, match="disabled"):
        server.authenticate(bob)
    assert server.cached(ada) is None
    assert server.authenticate(ada).role == "viewer"


def test_a_cached_token_is_not_answered_past_its_expiry(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import loopwright.governance.tokens as tokens_module

    server = TokenService(store, actor="root", clock=Clock())
    created = server.create("ada", expires_in_days=1)
    server.authenticate(created.secret)
    assert server.cached(created.secret) is not None
    expiry = created.token.expires_at
    assert expiry is not None
    monkeypatch.setattr(tokens_module, "now_ms", lambda: expiry)
    assert server.cached(created.secret) is None
    with pytest.raises(Unauthenticated, match="expired"):
        server.authenticate(created.secret)


def test_forget_empties_the_cache(store: Store) -> None:
    server = TokenService(store, actor="root", clock=Clock())
    secret = server.create("ada").secret
    server.authenticate(secret)
    server.forget()
    assert server.cached(secret) is None
