"""Order-service customers (`/api/v1/auth/*`, `/api/v1/crm/*`): registration, the OAuth2 token
endpoint (client-credentials and password grants), password resets, and what admins do with customers.

A customer is an `Account` with a client secret; its `user_id` is its OAuth2 client id. Its tokens are
signed with the deployment's key and issuer, so the same customer can also call the openEO API with
`Authorization: Bearer basic//<access_token>`. Plain Python: repositories, the signing key and the
e-mail sender are injected, so this is testable without AWS.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Mapping, Protocol

from stratus.domain.accounts import Account, AccountRepository, EmailTaken
from stratus.domain.auth import hash_password, needs_rehash, sign_token, verify_secret
from stratus.domain.principal import ADMIN_SCOPE, LOGGING_SCOPE, SERVICE_SCOPE_PREFIX
from stratus.domain.limits import LimitReached, Rate, RateLimiter
from stratus.events import isoformat_z, utcnow
from stratus.observability import logger
from stratus.order_errors import (
    CustomerExistsException,
    CustomerNotFoundException,
    InvalidClientException,
    InvalidGrantException,
    InvalidRequestException,
    PasswordResetInvalidException,
    RegistrationClosedException,
    RegistrationTokenInvalidException,
    TooManyRequestsException,
    UnsupportedGrantTypeException,
)

CUSTOMER_ID_PREFIX = "cus-"
GRANT_TYPES = ("client_credentials", "password")
MAX_NAME_CHARS = 200
MAX_EMAIL_CHARS = 254  # RFC 5321 path limit
MAX_ID_CHARS = 256  # longer client ids are never ours; DynamoDB keys end at 2048 bytes
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SERVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_INACTIVE = "This customer account is deactivated."


@dataclass(frozen=True)
class OrderSummary:
    """An order (a job made from a service) as the CRM lists it."""

    order_id: str
    service_id: str
    job_status: str  # the job's status (created, queued, running, finished, error, canceled)
    created: datetime
    updated: datetime
    title: str | None = None
    progress: float | None = None
    error_code: str | None = None


class CustomerOrders(Protocol):
    """Read-only view of a user's orders in the jobs table."""

    def list_orders(self, user_id: str, limit: int, after: str | None) -> tuple[list[OrderSummary], str | None]:
        """Newest first."""
        ...

    def order_times(self, user_id: str, since: datetime | None = None) -> list[tuple[str, datetime]]:
        """(service_id, created) of each of the user's orders created at or after `since`."""
        ...


class EmailSender(Protocol):
    def send(self, to: str, subject: str, body: str) -> str: ...


class PendingRegistrations(Protocol):
    """Registrations waiting for their e-mail verification, by the digest of the verification token."""

    def put(self, digest: str, data: dict[str, Any], expires: float) -> None: ...

    def take(self, digest: str, now: float) -> dict[str, Any] | None:
        """The registration if unexpired at `now`, removed atomically: a token works once."""
        ...


@dataclass(frozen=True)
class AccountRates:
    """The rate limits and the lockout of the order-service account endpoints (`resources` sets them)."""

    registrations_per_client: Rate = Rate(10, 3600)
    registrations_per_email: Rate = Rate(3, 3600)
    resets_per_client: Rate = Rate(10, 3600)
    resets_per_email: Rate = Rate(3, 3600)
    token_requests_per_account: Rate = Rate(60, 60)
    lockout: Rate = Rate(5, 900)  # wrong passwords or secrets per account name before it is locked


def new_customer_id() -> str:
    return CUSTOMER_ID_PREFIX + secrets.token_hex(8)


def normalise_email(email: Any) -> str:
    if not isinstance(email, str) or len(email.strip()) > MAX_EMAIL_CHARS or not _EMAIL.match(email.strip()):
        raise InvalidRequestException(reason="`email` must be an e-mail address")
    return email.strip().lower()


def check_scope(scope: Any) -> str:
    """Scopes are "admin", "logging" or "service:<service id>"."""
    if isinstance(scope, str):
        if scope in (ADMIN_SCOPE, LOGGING_SCOPE):
            return scope
        if scope.startswith(SERVICE_SCOPE_PREFIX) and _SERVICE_ID.match(scope[len(SERVICE_SCOPE_PREFIX):]):
            return scope
    raise InvalidRequestException(
        reason=f"`scope` must be '{ADMIN_SCOPE}', '{LOGGING_SCOPE}' or '{SERVICE_SCOPE_PREFIX}<service id>'")


def _digest(token: str) -> str:
    """Reset tokens are 256 random bits: a plain SHA-256 suffices (no guessing to slow down)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _plausible_id(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_CHARS


REGISTRATION_VERIFY, REGISTRATION_APPROVAL, REGISTRATION_CLOSED = "verify", "approval", "closed"


class CustomerService:
    def __init__(self, customers: AccountRepository, orders: CustomerOrders, signing_key: Callable[[], str],
                 token_lifetime_s: int, email_sender: Callable[[], EmailSender], *,
                 pending: PendingRegistrations, limiter: RateLimiter, rates: AccountRates = AccountRates(),
                 registration: str = REGISTRATION_VERIFY, verify_ttl_s: int = 24 * 3600,
                 default_scopes: Iterable[str] = (), reset_ttl_s: int = 3600,
                 password_min_chars: int = 8, password_max_chars: int = 1024,
                 on_account_change: Callable[[str], None] = lambda customer_id: None) -> None:
        if registration not in (REGISTRATION_VERIFY, REGISTRATION_APPROVAL, REGISTRATION_CLOSED):
            raise ValueError(f"registration must be verify, approval or closed, not {registration!r}")
        self._customers = customers
        self._orders = orders
        self._signing_key = signing_key  # fetched lazily, like `AuthService`
        self._lifetime = timedelta(seconds=token_lifetime_s)
        self._email_sender = email_sender  # built on first use: most requests send no e-mail
        self._pending = pending
        self._limiter = limiter
        self._rates = rates
        self._registration = registration
        self._verify_ttl_s = verify_ttl_s
        self._default_scopes = [check_scope(s) for s in default_scopes]
        self._reset_ttl = timedelta(seconds=reset_ttl_s)
        self._password_chars = (password_min_chars, password_max_chars)
        self._account_changed = on_account_change  # e.g. drops this container's cached copy of the account

    # --- registration -------------------------------------------------------------------------

    def register(self, name: Any, email: Any, password: Any, client: str, verify_url: str | None = None) -> None:
        """POST /auth/register: answers the same for new and taken addresses (no enumeration). A new one
        gets a verification e-mail with a single-use token (`verify_registration`); the owner of a taken
        one gets an e-mail saying so. Rate-limited per client (IP address) and per e-mail address."""
        if self._registration == REGISTRATION_CLOSED:
            raise RegistrationClosedException()
        name = self._check_name(name)
        email = normalise_email(email)
        self._check_password(password)
        self._rate("register-client", client, self._rates.registrations_per_client)
        self._rate("register-email", email, self._rates.registrations_per_email)
        password_hash = hash_password(password)  # also for a taken address: the answer takes as long
        where = f"POST {verify_url}" if verify_url else "POST /api/v1/auth/register/verify"
        if self._email_taken(email):
            self._send(email, "Your Stratus account", (
                f"Hello,\n\nsomeone (hopefully you) tried to register a new Stratus account with {email}, which "
                "has an account already. If you forgot its password, ask for a reset with POST "
                "/api/v1/auth/password-reset.\n\nIf it was not you, ignore this message.\n"))
            logger.info("registration for a taken e-mail address")
            return
        token = secrets.token_urlsafe(32)
        expires = time.time() + self._verify_ttl_s
        self._pending.put(_digest(token), {"name": name, "email": email, "password_hash": password_hash}, expires)
        approval = ("\nAn administrator then approves the account; until then it cannot get tokens.\n"
                    if self._registration == REGISTRATION_APPROVAL else "")
        self._send(email, "Verify your Stratus account", (
            f"Hello {name},\n\nsomeone (hopefully you) registered a Stratus account with this address.\n\n"
            f"Verification token: {token}\n\n"
            f"It is valid until {isoformat_z(utcnow() + timedelta(seconds=self._verify_ttl_s))}. To verify the "
            f'address and get your client id and secret (shown once), send\n{where}\n{{"token": "<the token>"}}\n'
            f"{approval}\nIf you did not register, ignore this message: no account is made.\n"))
        logger.info("registration pending verification")

    def verify_registration(self, token: Any) -> tuple[Account, str]:
        """POST /auth/register/verify: the registration's customer, made now with the default scopes
        (active, or inactive until an admin approves it), and its client secret (returned once)."""
        if self._registration == REGISTRATION_CLOSED:
            raise RegistrationClosedException()
        if not isinstance(token, str) or not token or len(token) > MAX_ID_CHARS:
            raise RegistrationTokenInvalidException()
        registration = self._pending.take(_digest(token), time.time())
        if registration is None:
            raise RegistrationTokenInvalidException()
        active = self._registration == REGISTRATION_VERIFY
        return self._add_customer(registration["name"], registration["email"], registration["password_hash"],
                                  scopes=self._default_scopes, active=active)

    def create_customer(self, name: Any, email: Any, password: Any,
                        scopes: Iterable[str] = ()) -> tuple[Account, str]:
        """An active customer made by an operator (no verification)."""
        name = self._check_name(name)
        email = normalise_email(email)
        self._check_password(password)
        return self._add_customer(name, email, hash_password(password), scopes=scopes, active=True)

    def _add_customer(self, name: str, email: str, password_hash: str, scopes: Iterable[str],
                      active: bool) -> tuple[Account, str]:
        scopes = sorted({check_scope(s) for s in scopes})
        if self._by_email(email):  # accounts older than the e-mail claims
            raise CustomerExistsException()
        secret = _new_client_secret()
        customer = Account(user_id=new_customer_id(), name=name, email=email, password_hash=password_hash,
                            client_secret_hash=hash_password(secret), scopes=scopes, active=active)
        try:
            added = self._customers.add(customer)
        except EmailTaken:
            raise CustomerExistsException() from None
        if not added:  # a random 64-bit id taken: practically never
            raise CustomerExistsException(message="Please retry: the generated client id is taken.")
        logger.info("customer registered", extra={"customer_id": customer.customer_id, "active": active})
        return customer, secret

    def ensure_admin(self, email: str, password: str, name: str = "Administrator") -> tuple[str, str]:
        """An active customer with the admin scope, this e-mail and password (created or reset), and a
        fresh client secret: for seeding a demo or first admin. Returns (customer_id, client_secret)."""
        existing = [c for c in self._by_email(normalise_email(email)) if c.is_customer]
        if not existing:
            customer, secret = self.create_customer(name, email, password, scopes=[ADMIN_SCOPE])
            return customer.customer_id, secret
        customer = existing[0]
        self._check_password(password)
        secret = _new_client_secret()
        self._customers.update(customer.customer_id, {
            "password_hash": hash_password(password), "client_secret_hash": hash_password(secret),
            "active": True, "scopes": sorted({*customer.scopes, ADMIN_SCOPE}),
        }, revoke_tokens=True)
        self._account_changed(customer.customer_id)
        return customer.customer_id, secret

    def rotate_client_secret(self, customer_id: str) -> str:
        """A new client secret for a customer; the old one and every token issued so far stop working."""
        self.get(customer_id)
        secret = _new_client_secret()
        self._customers.update(customer_id, {"client_secret_hash": hash_password(secret)}, revoke_tokens=True)
        self._account_changed(customer_id)
        return secret

    # --- tokens -------------------------------------------------------------------------------

    def issue_token(self, grant_type: Any, form: Mapping[str, Any],
                    client: tuple[str | None, str | None] | None = None) -> dict[str, Any]:
        """POST /auth/token (RFC 6749 sections 4.3 and 4.4). `form`: the request's parameters;
        `client`: the client id and secret if they came as HTTP Basic (the API layer reads the header);
        otherwise they are the form's `client_id` and `client_secret`.

        An optional `scope` parameter narrows the token to those of the customer's scopes; without
        it the token carries all of them. The scopes in effect are re-read from the customer on every
        request, so revocations apply at once. Each account name (client id or user name) has a request
        rate, and after repeated wrong secrets or passwords a lockout that also refuses the right one
        until its window ends; both apply whether the name exists or not."""
        if not isinstance(grant_type, str) or not grant_type.strip():
            raise InvalidRequestException(reason="`grant_type` is required")
        grant_type = grant_type.strip()
        if grant_type == "client_credentials":
            customer = self._client_credentials(form, client)
        elif grant_type == "password":
            customer = self._password_owner(form)
        else:
            raise UnsupportedGrantTypeException()
        requested = form.get("scope")
        granted = set(customer.scopes)
        claims: dict[str, Any] = {"client_id": customer.customer_id, "tv": customer.token_version}
        if isinstance(requested, str) and requested.strip():
            granted &= set(requested.split())
            claims["scope"] = " ".join(sorted(granted))  # a narrowed token
        token = sign_token(self._signing_key(), customer.customer_id, self._lifetime, **claims)
        logger.info("token issued", extra={"customer_id": customer.customer_id, "grant_type": grant_type})
        return {"access_token": token, "token_type": "Bearer", "expires_in": int(self._lifetime.total_seconds()),
                "scope": " ".join(sorted(granted))}

    def _rate(self, name: str, subject: str, rate: Rate) -> None:
        try:
            self._limiter.hit(name, subject, rate)
        except LimitReached as reached:
            raise TooManyRequestsException(retry_after_s=reached.retry_after_s) from None

    def _guard_login(self, account_name: str) -> None:
        """Rate and lockout of one account name, before its secret is checked."""
        self._rate("token", account_name, self._rates.token_requests_per_account)
        try:
            self._limiter.check_lockout("token-failure", account_name, self._rates.lockout)
        except LimitReached as reached:
            raise TooManyRequestsException(retry_after_s=reached.retry_after_s) from None

    def _login_failed(self, account_name: str) -> None:
        self._limiter.record_failure("token-failure", account_name, self._rates.lockout)

    def _client_credentials(self, form: Mapping[str, Any], client: tuple[str | None, str | None] | None) -> Account:
        client_id, secret = client if client is not None else _form_client(form)
        if client_id is None or secret is None:
            raise InvalidClientException(message="Client authentication is required: `client_id` and "
                                                  "`client_secret` in the body or HTTP Basic.")
        if not _plausible_id(client_id):
            raise InvalidClientException()
        self._guard_login(client_id)
        customer = self._customers.get(client_id)
        stored = customer.client_secret_hash if customer else None
        if not verify_secret(stored, secret) or customer is None or stored is None:
            self._login_failed(client_id)
            raise InvalidClientException()
        if not customer.active:
            raise InvalidGrantException(message=_INACTIVE)
        if needs_rehash(stored):
            self._customers.update(customer.customer_id, {"client_secret_hash": hash_password(secret)})
        return customer

    def _password_owner(self, form: Mapping[str, Any]) -> Account:
        username, password = form.get("username"), form.get("password")
        if not isinstance(username, str) or not username or not isinstance(password, str):
            raise InvalidRequestException(reason="the password grant needs `username` (the e-mail) and `password`")
        try:
            account_name = normalise_email(username)
            candidates = None
        except InvalidRequestException:
            account_name, candidates = username[:MAX_EMAIL_CHARS], []
        self._guard_login(account_name)
        if candidates is None:
            candidates = [c for c in self._by_email(account_name) if c.is_customer]
        if not candidates:
            verify_secret(None, password)  # as slow as a real check
            self._login_failed(account_name)
            raise InvalidGrantException()
        match = next((c for c in candidates if verify_secret(c.password_hash, password)), None)
        if match is None:
            self._login_failed(account_name)
            raise InvalidGrantException()
        if not match.active:
            raise InvalidGrantException(message=_INACTIVE)
        if needs_rehash(match.password_hash):
            self._customers.update(match.customer_id, {"password_hash": hash_password(password)})
        return match

    # --- password reset -----------------------------------------------------------------------

    def request_password_reset(self, email: Any, confirm_url: str | None = None, client: str = "unknown") -> None:
        """POST /auth/password-reset: e-mails a reset token valid for `reset_ttl_s` to an active
        customer with this address. Behaves the same whether the address is known or not; rate-limited
        per client and per address (each request may send an e-mail)."""
        email = normalise_email(email)
        self._rate("reset-client", client, self._rates.resets_per_client)
        self._rate("reset-email", email, self._rates.resets_per_email)
        customer = next((c for c in self._by_email(email) if c.is_customer and c.active), None)
        if customer is None:
            return
        token = secrets.token_urlsafe(32)
        expires = utcnow() + self._reset_ttl
        self._customers.update(customer.customer_id, {"password_reset_hash": _digest(token),
                                                      "password_reset_expires": expires})
        where = f"POST {confirm_url}" if confirm_url else "POST /api/v1/auth/password-reset/confirm"
        body = (
            f"Hello {customer.name or ''},\n\n"
            "someone (hopefully you) asked to reset the password of your Stratus account.\n\n"
            f"Reset token: {token}\n\n"
            f"It is valid until {isoformat_z(expires)}. To choose a new password, send\n"
            f'{where}\n{{"email": "{email}", "token": "<the token>", "new_password": "<your new password>"}}\n\n'
            "If you did not ask for this, ignore this message: your password stays as it is.\n"
        )
        try:
            self._email_sender().send(email, "Stratus password reset", body)
        except Exception:  # the answer must not differ for known addresses; operators see the log
            logger.exception("password reset e-mail not sent", extra={"customer_id": customer.customer_id})

    def confirm_password_reset(self, email: Any, token: Any, new_password: Any) -> None:
        """POST /auth/password-reset/confirm: sets the new password if the token is the customer's
        current, unexpired one; a token works once."""
        self._check_password(new_password, field_name="new_password")
        if not isinstance(token, str) or not token:
            raise PasswordResetInvalidException()
        try:
            candidates = self._by_email(normalise_email(email))
        except InvalidRequestException:
            raise PasswordResetInvalidException() from None
        digest, now = _digest(token), utcnow()
        for customer in candidates:
            stored, expires = customer.password_reset_hash, customer.password_reset_expires
            if (customer.is_customer and customer.active and stored and expires and expires > now
                    and hmac.compare_digest(stored, digest)):
                changes = {"password_hash": hash_password(new_password), "password_reset_hash": None,
                           "password_reset_expires": None}
                if self._customers.update(customer.customer_id, changes, expected={"password_reset_hash": stored},
                                          revoke_tokens=True):  # tokens got with the old password end too
                    self._account_changed(customer.customer_id)
                    logger.info("password reset", extra={"customer_id": customer.customer_id})
                    return
        raise PasswordResetInvalidException()

    # --- admin (CRM) --------------------------------------------------------------------------

    def get(self, customer_id: str) -> Account:
        customer = self._customers.get(customer_id) if _plausible_id(customer_id) else None
        if customer is None or not customer.is_customer:
            raise CustomerNotFoundException(customer_id=customer_id)
        return customer

    def list_customers(self, limit: int, after: str | None = None,
                       email: str | None = None) -> tuple[list[Account], str | None]:
        """A page of customers and the token of the next page (None: the last). With `email`, the
        customer with that address (one page)."""
        if email is not None:
            return [c for c in self._by_email(normalise_email(email)) if c.is_customer], None
        return self._customers.list_customers(limit, after)

    _UPDATABLE = ("name", "email", "active", "usage_limits")

    def update(self, customer_id: str, changes: Mapping[str, Any]) -> Account:
        """PATCH /crm/customers/{id}: `name`, `email`, `active`, `usage_limits`. `usage_limits` is merged
        per service (JSON merge patch): `{service: {"limit": n, "interval_s": s}}` sets one,
        `{service: null}` removes one, `null` removes all."""
        unknown = sorted(set(changes) - set(self._UPDATABLE))
        if unknown:
            raise InvalidRequestException(reason=f"cannot change {', '.join(unknown)}; "
                                                 f"updatable: {', '.join(self._UPDATABLE)}")
        customer = self.get(customer_id)
        values: dict[str, Any] = {}
        if "name" in changes:
            values["name"] = self._check_name(changes["name"])
        new_email = None
        if "email" in changes:
            email = normalise_email(changes["email"])
            if email != customer.email:
                if any(c.customer_id != customer_id for c in self._by_email(email)):
                    raise CustomerExistsException()
                new_email = email
        if "active" in changes:
            if not isinstance(changes["active"], bool):
                raise InvalidRequestException(reason="`active` must be true or false")
            values["active"] = changes["active"]
        if "usage_limits" in changes:
            values["usage_limits"] = _merge_usage_limits(customer.usage_limits, changes["usage_limits"]) or None
        if new_email is not None:
            try:
                if not self._customers.change_email(customer_id, customer.email, new_email):
                    raise CustomerNotFoundException(customer_id=customer_id)
            except EmailTaken:
                raise CustomerExistsException() from None
        if values:
            # deactivating ends every token issued so far: reactivation does not bring them back
            revoke = values.get("active") is False and customer.active
            if not self._customers.update(customer_id, values, revoke_tokens=revoke):
                raise CustomerNotFoundException(customer_id=customer_id)
            logger.info("customer updated", extra={"customer_id": customer_id, "changed": sorted(values)})
        if values or new_email is not None:
            self._account_changed(customer_id)
        return self.get(customer_id)

    def deactivate(self, customer_id: str) -> Account:
        return self.update(customer_id, {"active": False})

    def grant_scope(self, customer_id: str, scope: Any) -> Account:
        scope = check_scope(scope)
        return self._change_scopes(customer_id, lambda held: held | {scope})

    def revoke_scope(self, customer_id: str, scope: Any) -> Account:
        scope = check_scope(scope)
        return self._change_scopes(customer_id, lambda held: held - {scope})

    def _change_scopes(self, customer_id: str, change: Callable[[set[str]], set[str]]) -> Account:
        for _ in range(5):  # optimistic: two admins changing scopes at once both win
            customer = self.get(customer_id)
            scopes = sorted(change(set(customer.scopes)))
            if scopes == sorted(set(customer.scopes)):
                return customer
            if self._customers.update(customer_id, {"scopes": scopes}, expected={"scopes": customer.scopes}):
                self._account_changed(customer_id)
                logger.info("scopes changed", extra={"customer_id": customer_id, "scopes": scopes})
                return self.get(customer_id)
        raise InvalidRequestException(reason="the customer's scopes changed concurrently; please retry")

    def orders(self, customer_id: str, limit: int, after: str | None = None) -> tuple[list[OrderSummary], str | None]:
        """GET /crm/customers/{id}/orders: the customer's orders, newest first."""
        self.get(customer_id)
        return self._orders.list_orders(customer_id, limit, after)

    def count_orders(self, customer_id: str, service_id: str | None = None, since: datetime | None = None) -> int:
        """The customer's orders (of one service, if given) created at or after `since`."""
        return sum(1 for service, _ in self._orders.order_times(customer_id, since)
                   if service_id is None or service == service_id)

    def usage(self, customer_id: str) -> dict[str, Any]:
        """GET /crm/customers/{id}/usage: orders per service, and for the services with a usage limit
        of this customer the orders inside the limit's current interval."""
        customer = self.get(customer_id)
        now = utcnow()
        times = self._orders.order_times(customer_id)
        services = sorted({service for service, _ in times} | set(customer.usage_limits))
        entries = []
        for service in services:
            entry: dict[str, Any] = {"service_id": service,
                                     "orders": sum(1 for s, _ in times if s == service),
                                     "usage_limit": None}
            limit = customer.usage_limits.get(service)
            if limit:
                since = now - timedelta(seconds=limit["interval_s"])
                entry["usage_limit"] = {**limit, "orders_in_interval": sum(
                    1 for s, created in times if s == service and created >= since)}
            entries.append(entry)
        return {"customer_id": customer_id, "orders": len(times), "services": entries,
                "computed": isoformat_z(now)}

    # --- helpers ------------------------------------------------------------------------------

    def _by_email(self, email: str) -> list[Account]:
        """Accounts with this e-mail, re-read consistently (the e-mail index lags behind writes)."""
        found = (self._customers.get(customer_id) for customer_id in self._customers.ids_by_email(email))
        return [c for c in found if c is not None and c.email == email]

    def _email_taken(self, email: str) -> bool:
        return self._customers.email_holder(email) is not None or bool(self._by_email(email))

    def _send(self, to: str, subject: str, body: str) -> None:
        try:
            self._email_sender().send(to, subject, body)
        except Exception:  # the answer must not differ; operators see the log
            logger.exception("account e-mail not sent", extra={"subject": subject})

    @staticmethod
    def _check_name(name: Any) -> str:
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME_CHARS:
            raise InvalidRequestException(reason=f"`name` must be a text of 1 to {MAX_NAME_CHARS} characters")
        return name.strip()

    def _check_password(self, password: Any, field_name: str = "password") -> None:
        low, high = self._password_chars
        if not isinstance(password, str) or not low <= len(password) <= high:
            raise InvalidRequestException(reason=f"`{field_name}` must have {low} to {high} characters")


def _new_client_secret() -> str:
    return secrets.token_urlsafe(32)


def _form_client(form: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """Client id and secret from the body's `client_id` and `client_secret` (RFC 6749 2.3.1)."""
    client_id, secret = form.get("client_id"), form.get("client_secret")
    return (client_id if isinstance(client_id, str) and client_id else None,
            secret if isinstance(secret, str) else None)


def _merge_usage_limits(current: Mapping[str, Any], patch: Any) -> dict[str, dict[str, int]]:
    if patch is None:
        return {}
    if not isinstance(patch, dict):
        raise InvalidRequestException(reason="`usage_limits` must be an object {service_id: {limit, interval_s}}")
    merged = dict(current)
    for service, limit in patch.items():
        if not isinstance(service, str) or not _SERVICE_ID.match(service):
            raise InvalidRequestException(reason=f"`usage_limits`: '{service}' is not a service id")
        if limit is None:
            merged.pop(service, None)
            continue
        if (not isinstance(limit, dict) or set(limit) != {"limit", "interval_s"}
                or any(isinstance(v, bool) or not isinstance(v, int) for v in limit.values())
                or limit["limit"] < 0 or limit["interval_s"] < 1):
            raise InvalidRequestException(
                reason=f"`usage_limits.{service}` must be {{\"limit\": integer >= 0, \"interval_s\": integer >= 1}}")
        merged[service] = {"limit": limit["limit"], "interval_s": limit["interval_s"]}
    return merged
