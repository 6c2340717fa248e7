"""API tokens: shown once, stored hashed, ended by revocation, expiry or a disabled user."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from loopwright.config import resolve_settings
from loopwright.errors import InvalidInput, NotFound, PermissionDenied, Unauthenticated
from loopwright.governance.tokens import TokenService, hash_token
from loopwright.governance.users import UserService
from loopwright.store import schema as t
from loopwright.store.audit import events, verify_chain
from loopwright.store.home import Store, open_store


@pytest.fixture
def store(tmp_path: Path, db_uri: str) -> Iterator[Store]:
    with open_store(resolve_settings(home=tmp_path / "home", db_uri=db_uri)) as s:
        users = UserService(s, actor="root")
        users.add("root", "admin")
        users.add("ada", "editor")
        yield s


def test_a_token_is_stored_hashed_and_authenticates_its_user(store: Store) -> None:
    tokens = TokenService(store, actor="root")
    created = tokens.create("ada", name="laptop")
    assert created.secret.startswith("lw_") and len(created.secret) > 40
    with store.db.read() as conn:
        stored = conn.execute(sa.select(t.api_tokens.c.token_hash)).scalars().all()
    assert stored == [hash_token(created.secret)]  # never the secret itself
    identity = tokens.authenticate(created.secret)
    assert (identity.user, identity.role, identity.token_id) == ("ada", "editor", created.token.id)
    assert tokens.any_active()
    assert [k.name for k in tokens.list("ada")] == ["laptop"]


def test_revoked_expired_unknown_and_disabled_are_refused(store: Store) -> None:
    tokens = TokenService(store, actor="root")
    revoked = tokens.create("ada")
    tokens.revoke(revoked.token.id)
    with pytest.raises(Unauthenticated, match="revoked"):
        tokens.authenticate(revoked.secret)
    expiring = tokens.create("ada", expires_in_days=1)
    with store.db.write() as conn:
        conn.execute(
            sa.update(t.api_tokens)
            .where(t.api_tokens.c.id == expiring.token.id)
            .values(expires_at=1)
        )
    with pytest.raises(Unauthenticated, match="expired"):
        tokens.authenticate(expiring.secret)
    for bad in ("", "nope", "lw_" + "x" * 43, "lw_" + "y" * 500):
        with pytest.raises(Unauthenticated):
            tokens.authenticate(bad)
    live = tokens.create("ada")
    UserService(store, actor="root").disable("ada")
    with pytest.raises(Unauthenticated, match="disabled"):
        tokens.authenticate(live.secret)


def test_only_the_user_or_an_admin_manages_tokens_and_changes_are_audited(store: Store) -> None:
    UserService(store, actor="root").add("bob", "approver")
    with pytest.raises(PermissionDenied, match="only the user or an admin"):
        TokenService(store, actor="bob").create("ada")
    own = TokenService(store, actor="ada").create("ada")
    with pytest.raises(PermissionDenied):
        TokenService(store, actor="bob").revoke(own.token.id)
    TokenService(store, actor="root").revoke(own.token.id)
    with pytest.raises(NotFound):
        TokenService(store, actor="root").create("nobody")
    with pytest.raises(InvalidInput):
        TokenService(store, actor="root").create("ada", expires_in_days=0)
    actions = [e.action for e in events(store.db, subject_type="api_token")]
    assert actions == ["token.create", "token.revoke"]
    assert verify_chain(store.db).ok
