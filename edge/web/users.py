"""Station screen users for the command line (`edge user add`): badge, name, role and a hashed PIN."""

from edge.auth import ROLES, AuthError, User, add_user

__all__ = ["ROLES", "AuthError", "User", "add_user"]
