"""Governance: users and roles (the identities approvals check), the audit log's reports."""

from .users import ROLES as ROLES
from .users import User as User
from .users import UserService as UserService
from .users import role_at_least as role_at_least

__all__ = ["ROLES", "User", "UserService", "role_at_least"]
