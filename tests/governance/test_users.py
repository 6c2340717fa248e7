"""Users and roles: ordering, admin-only management once an admin exists, audited changes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from loopwright.config import resolve_settings
from loopwright.errors import AlreadyExists, Conflict, InvalidInput, NotFound, PermissionDenied
from loopwright.governance import ROLES, User, UserService, role_at_least
from loopwright.store.audit import events, verify_chain
from loopwright.store.home import Store, open_store


@pytest.fixture
def store(tmp_path: Path, db_uri: str) -> Iterator[Store]:
    with open_store(resolve_settings(home=tmp_path / "home", db_uri=db_uri, user="root")) as s:
        yield s


def test_roles_are_ordered() -> None:
    assert ROLES == ("viewer", "editor", "approver", "admin")
    assert role_at_least("admin", "approver") and role_at_least("approver", "approver")
    assert not role_at_least("editor", "approver") and not role_at_least(None, "viewer")
    assert not role_at_least("superuser", "viewer")
    with pytest.raises(InvalidInput, match="role 'boss' is not one of"):
        role_at_least("admin", "boss")


def test_users_are_added_listed_and_changed_with_audit(store: Store) -> None:
    users = UserService(store)  # acts as the store's user, "root"
    root = users.add("root", "admin")
    assert isinstance(root, User) and (root.role, root.disabled, root.email) == (
        "admin",
        False,
        None,
    )
    users.add("bea", "viewer", email="bea@example.com")
    assert [u.name for u in users.list()] == ["bea", "root"]
    assert users.set_role("bea", "approver").role == "approver"
    assert users.disable("bea").disabled
    assert not users.enable("bea").disabled
    assert users.get("bea").email == "bea@example.com"
    assert users.find("nobody") is None

    log = events(store.db, subject_type="user")
    assert [e.action for e in log] == [
        "user.create",
        "user.create",
        "user.role",
        "user.disable",
        "user.enable",
    ]
    assert {e.actor for e in log} == {"root"}
    assert log[2].before == {"name": "bea", "role": "viewer"}
    assert log[2].after == {"name": "bea", "role": "approver"}
    assert verify_chain(store.db).ok


def test_bad_input_and_missing_users_are_refused(store: Store) -> None:
    users = UserService(store)
    with pytest.raises(InvalidInput, match="role 'owner' is not one of viewer, editor"):
        users.add("ann", "owner")
    for name in ("", " ann", "a\nb", "x" * 201):
        with pytest.raises(InvalidInput, match="user name"):
            users.add(name, "viewer")
    with pytest.raises(InvalidInput, match="email"):
        users.add("ann", "viewer", email="not-an-address")
    users.add("ann", "viewer")
    with pytest.raises(AlreadyExists, match="user 'ann' already exists"):
        users.add("ann", "editor")
    with pytest.raises(NotFound, match="user 'bob' does not exist"):
        users.get("bob")
    with pytest.raises(NotFound, match="user 'bob' does not exist"):
        users.set_role("bob", "admin")


def test_once_an_admin_exists_only_admins_manage_users(store: Store) -> None:
    UserService(store, actor="anyone").add("ann", "editor")  # no admin yet: bootstrap is open
    root = UserService(store, actor="root")
    root.add("root", "admin")
    for actor in ("ann", "stranger"):
        with pytest.raises(PermissionDenied, match="only an enabled admin manages users"):
            UserService(store, actor=actor).add("cat", "viewer")
    with pytest.raises(PermissionDenied):
        UserService(store, actor="ann").set_role("ann", "admin")
    root.set_role("ann", "admin")
    assert UserService(store, actor="ann").add("cat", "viewer").name == "cat"


def test_the_last_enabled_admin_cannot_be_removed(store: Store) -> None:
    root = UserService(store, actor="root")
    root.add("root", "admin")
    with pytest.raises(Conflict, match="'root' is the last enabled admin"):
        root.disable("root")
    with pytest.raises(Conflict, match="last enabled admin"):
        root.set_role("root", "approver")
    root.add("ann", "admin")
    assert root.set_role("root", "approver").role == "approver"
    ann = UserService(store, actor="ann")
    assert ann.set_role("root", "approver").role == "approver"  # unchanged: no event
    with pytest.raises(PermissionDenied):  # root is no longer an admin
        root.set_role("root", "admin")
    assert [e.action for e in events(store.db)].count("user.role") == 1
