"""PynamoDB implementations of `CustomerRepository` (the users table) and `CustomerOrders` (the
jobs table's `user-jobs` index)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from stratus.domain.customers import Customer, CustomerOrders, CustomerRepository, EmailTaken, OrderSummary
from stratus.order_errors import InvalidRequestException
from stratus.store.dynamo import decode_page_token, encode_page_token, is_condition_failure
from stratus.store.models import JobModel, LimitModel, UserModel


def _invalid_token() -> Exception:
    return InvalidRequestException(reason="`after` is not a page token of this listing")




def _email_claim(email: str) -> str:
    """One account per e-mail address: the claim item every customer's address has in the limits table."""
    return f"email#{email}"


def _transaction() -> TransactWrite:
    return TransactWrite(connection=Connection(region=UserModel.Meta.region, host=UserModel.Meta.host))


def _failed_conditions(error: TransactWriteError) -> list[bool]:
    return [bool(reason) and getattr(reason, "code", None) == "ConditionalCheckFailed"
            for reason in error.cancellation_reasons]


def _to_customer(item: UserModel) -> Customer:
    return Customer(
        customer_id=item.user_id, name=item.name, email=item.email, password_hash=item.password_hash,
        client_secret_hash=item.client_secret_hash, active=item.active is not False,
        scopes=list(item.scopes or []), usage_limits=dict(item.usage_limits or {}), created=item.created,
        password_reset_hash=item.password_reset_hash, password_reset_expires=item.password_reset_expires,
        token_version=int(item.token_version or 0),
    )


class DynamoCustomerRepository(CustomerRepository):
    _UPDATABLE = {
        "name": UserModel.name, "email": UserModel.email, "active": UserModel.active, "scopes": UserModel.scopes,
        "usage_limits": UserModel.usage_limits, "password_hash": UserModel.password_hash,
        "client_secret_hash": UserModel.client_secret_hash, "password_reset_hash": UserModel.password_reset_hash,
        "password_reset_expires": UserModel.password_reset_expires,
    }

    def get(self, customer_id: str) -> Customer | None:
        try:
            return _to_customer(UserModel.get(customer_id, consistent_read=True))
        except DoesNotExist:
            return None

    def ids_by_email(self, email: str) -> list[str]:
        return [item.user_id for item in UserModel.users_by_email.query(email, attributes_to_get=["user_id"])]

    def add(self, customer: Customer) -> bool:
        item = UserModel(
            customer.customer_id, password_hash=customer.password_hash, name=customer.name, email=customer.email,
            roles=[], created=customer.created, active=customer.active,
            client_secret_hash=customer.client_secret_hash, scopes=list(customer.scopes),
            usage_limits=dict(customer.usage_limits) or None,
        )
        try:
            with _transaction() as transaction:
                transaction.save(item, condition=UserModel.user_id.does_not_exist())
                if customer.email:
                    transaction.save(LimitModel(_email_claim(customer.email), holder=customer.customer_id),
                                     condition=LimitModel.limit_key.does_not_exist())
            return True
        except TransactWriteError as error:
            failed = _failed_conditions(error)
            if len(failed) > 1 and failed[1]:
                raise EmailTaken() from None
            if failed and failed[0]:
                return False
            if any(getattr(r, "code", None) == "TransactionConflict" for r in error.cancellation_reasons if r):
                raise EmailTaken() from None  # a parallel transaction on the same claim; it won
            raise

    def email_holder(self, email: str) -> str | None:
        try:
            return LimitModel.get(_email_claim(email), consistent_read=True).holder
        except DoesNotExist:
            return None

    def change_email(self, customer_id: str, old: str | None, new: str) -> bool:
        try:
            with _transaction() as transaction:
                transaction.save(LimitModel(_email_claim(new), holder=customer_id),
                                 condition=LimitModel.limit_key.does_not_exist())
                if old:
                    transaction.delete(LimitModel(_email_claim(old)),
                                       condition=LimitModel.limit_key.does_not_exist()
                                       | (LimitModel.holder == customer_id))
                transaction.update(UserModel(customer_id), actions=[UserModel.email.set(new)],
                                   condition=UserModel.user_id.exists())
            return True
        except TransactWriteError as error:
            failed = _failed_conditions(error)
            if failed and failed[0]:
                raise EmailTaken() from None
            if failed and failed[-1]:
                return False
            raise

    def update(self, customer_id: str, changes: Mapping[str, Any],
               expected: Mapping[str, Any] | None = None, revoke_tokens: bool = False) -> bool:
        actions = []
        for name, value in changes.items():
            attribute = self._UPDATABLE[name]
            actions.append(attribute.remove() if value is None else attribute.set(value))
        if revoke_tokens:
            actions.append(UserModel.token_version.add(1))
        condition = UserModel.user_id.exists()
        for name, value in (expected or {}).items():
            attribute = self._UPDATABLE[name]
            if value is None:
                condition &= attribute.does_not_exist()
            elif isinstance(value, list) and not value:
                condition &= attribute.does_not_exist() | (attribute == [])
            else:
                condition &= attribute == value
        try:
            UserModel(customer_id).update(actions=actions, condition=condition)
            return True
        except UpdateError as error:
            if is_condition_failure(error):
                return False
            raise

    def list_customers(self, limit: int, after: str | None) -> tuple[list[Customer], str | None]:
        start_key = decode_page_token(after, {"user_id"}, _invalid_token) if after else None
        scan = UserModel.scan(filter_condition=UserModel.client_secret_hash.exists(), limit=limit,
                              page_size=limit, last_evaluated_key=start_key)
        customers = [_to_customer(item) for item in scan]
        return customers, encode_page_token(scan.last_evaluated_key)


def _to_order(item: JobModel) -> OrderSummary:
    return OrderSummary(order_id=item.job_id, service_id=item.service_id, job_status=item.status,
                        created=item.created, updated=item.updated, title=item.title, progress=item.progress,
                        error_code=item.error_code)


class DynamoCustomerOrders(CustomerOrders):
    def list_orders(self, user_id: str, limit: int, after: str | None) -> tuple[list[OrderSummary], str | None]:
        start_key = decode_page_token(after, {"job_id", "user_id", "created"}, _invalid_token,
                                      owner=("user_id", user_id)) if after else None
        query = JobModel.user_jobs.query(user_id, filter_condition=JobModel.service_id.exists(), limit=limit,
                                         page_size=limit, last_evaluated_key=start_key, scan_index_forward=False)
        orders = [_to_order(item) for item in query]
        return orders, encode_page_token(query.last_evaluated_key)

    def order_times(self, user_id: str, since: datetime | None = None) -> list[tuple[str, datetime]]:
        query = JobModel.user_jobs.query(
            user_id, range_key_condition=None if since is None else JobModel.created >= since,
            filter_condition=JobModel.service_id.exists(), attributes_to_get=["service_id", "created"])
        return [(item.service_id, item.created) for item in query]
