"""Accounts: the one model of the users table, whoever holds the account.

An account is an openEO user (`user_id` is the basic-auth login name), an OpenID Connect subject, or an
order-service customer (`user_id` is its OAuth2 client id; it has a client secret). `AuthService`,
`CustomerService` and `CallerResolver` all read and write accounts through one `AccountRepository`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping, Protocol

from stratus.events import isoformat_z, utcnow


@dataclass
class Account:
    user_id: str
    password_hash: str  # argon2; "" for OpenID Connect subjects (no password login)
    name: str | None = None
    email: str | None = None  # lower-case
    roles: list[str] = field(default_factory=list)
    created: datetime = field(default_factory=utcnow)
    active: bool = True  # a deactivated account's tokens stop working
    client_secret_hash: str | None = None  # set for order-service customers only
    scopes: list[str] = field(default_factory=list)  # what a customer may do ("admin", "service:<id>", ...)
    usage_limits: dict[str, dict[str, int]] = field(default_factory=dict)  # {service_id: {limit, interval_s}}
    password_reset_hash: str | None = None
    password_reset_expires: datetime | None = None
    token_version: int = 0  # the generation of its tokens (claim `tv`); older ones are refused

    @property
    def is_customer(self) -> bool:
        return self.client_secret_hash is not None

    @property
    def customer_id(self) -> str:
        """A customer's id is its account's id (and its OAuth2 client id)."""
        return self.user_id

    def describe(self) -> dict[str, Any]:
        """The order-service view of a customer: never a hash."""
        return {
            "customer_id": self.user_id,
            "client_id": self.user_id,
            "name": self.name,
            "email": self.email,
            "active": self.active,
            "scopes": sorted(set(self.scopes)),
            "usage_limits": dict(self.usage_limits),
            "created": isoformat_z(self.created),
        }


class EmailTaken(Exception):
    """Another account holds this e-mail address."""


class AccountRepository(Protocol):
    def get(self, user_id: str) -> Account | None:
        """Consistent read."""
        ...

    def add(self, account: Account) -> bool:
        """Adds the account and, if it has an e-mail address, claims it, in one transaction. False if the id
        is taken; raises `EmailTaken` if another account holds the address."""
        ...

    def ids_by_email(self, email: str) -> list[str]:
        """Ids of the accounts with this (lower-case) e-mail; eventually consistent."""
        ...

    def email_holder(self, email: str) -> str | None:
        """The account holding the claim on this address (consistent read), if any."""
        ...

    def change_email(self, user_id: str, old: str | None, new: str) -> bool:
        """Moves the account and its e-mail claim to `new`, in one transaction; raises `EmailTaken`."""
        ...

    def update(self, user_id: str, changes: Mapping[str, Any],
               expected: Mapping[str, Any] | None = None, revoke_tokens: bool = False) -> bool:
        """Sets the attributes in `changes` (None removes one) if the account exists and, for each
        attribute in `expected`, still has that value (None: has none); with `revoke_tokens` also adds one
        to `token_version`. False otherwise."""
        ...

    def list_customers(self, limit: int, after: str | None) -> tuple[list[Account], str | None]:
        """Customers only (accounts with a client secret), a page at a time."""
        ...
