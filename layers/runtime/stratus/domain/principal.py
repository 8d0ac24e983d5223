"""Who calls the order-service API (`/api/v1/`), and what they may do.

A principal is loaded from the users table on every request (not only read from the token), so
deactivating a customer or revoking a scope takes effect at once.
"""

from __future__ import annotations

from dataclasses import dataclass

ADMIN_SCOPE = "admin"
LOGGING_SCOPE = "logging"  # components and clients that may write log entries for any order
SERVICE_SCOPE_PREFIX = "service:"


def service_scope(service_id: str) -> str:
    return f"{SERVICE_SCOPE_PREFIX}{service_id}"


@dataclass(frozen=True)
class Principal:
    user_id: str
    scopes: frozenset[str]
    email: str | None = None
    name: str | None = None

    @property
    def is_admin(self) -> bool:
        return ADMIN_SCOPE in self.scopes

    def may_order(self, service_id: str) -> bool:
        return self.is_admin or service_scope(service_id) in self.scopes

    def may_see(self, owner_id: str) -> bool:
        """Customers see their own orders, products and logs; admins see all."""
        return self.is_admin or owner_id == self.user_id
