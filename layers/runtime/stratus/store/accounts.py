"""PynamoDB implementation of `AccountRepository`: the one mapper of the users table."""

from __future__ import annotations

from typing import Any, Mapping

from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from stratus.domain.accounts import Account, AccountRepository, EmailTaken
from stratus.order_errors import InvalidRequestException
from stratus.store.dynamo import decode_page_token, encode_page_token, is_condition_failure
from stratus.store.models import LimitModel, UserModel


def _invalid_token() -> Exception:
    return InvalidRequestException(reason="`after` is not a page token of this listing")


def _email_claim(email: str) -> str:
    """One account per e-mail address: the claim item every account's address has in the limits table."""
    return f"email#{email}"


def _transaction() -> TransactWrite:
    return TransactWrite(connection=Connection(region=UserModel.Meta.region, host=UserModel.Meta.host))


def _failed_conditions(error: TransactWriteError) -> list[bool]:
    return [bool(reason) and getattr(reason, "code", None) == "ConditionalCheckFailed"
            for reason in error.cancellation_reasons]


def _to_account(item: UserModel) -> Account:
    return Account(
        user_id=item.user_id, password_hash=item.password_hash, name=item.name, email=item.email,
        roles=list(item.roles or []), created=item.created, active=item.active is not False,
        client_secret_hash=item.client_secret_hash, scopes=list(item.scopes or []),
        usage_limits=dict(item.usage_limits or {}), password_reset_hash=item.password_reset_hash,
        password_reset_expires=item.password_reset_expires, token_version=int(item.token_version or 0),
    )


def _to_item(account: Account) -> UserModel:
    return UserModel(
        account.user_id, password_hash=account.password_hash, name=account.name, email=account.email,
        roles=list(account.roles), created=account.created, active=account.active,
        client_secret_hash=account.client_secret_hash, scopes=list(account.scopes),
        usage_limits=dict(account.usage_limits) or None,
    )


class DynamoAccountRepository(AccountRepository):
    _UPDATABLE = {
        "name": UserModel.name, "email": UserModel.email, "active": UserModel.active, "scopes": UserModel.scopes,
        "usage_limits": UserModel.usage_limits, "password_hash": UserModel.password_hash,
        "client_secret_hash": UserModel.client_secret_hash, "password_reset_hash": UserModel.password_reset_hash,
        "password_reset_expires": UserModel.password_reset_expires,
    }

    def get(self, user_id: str) -> Account | None:
        try:
            return _to_account(UserModel.get(user_id, consistent_read=True))
        except DoesNotExist:
            return None

    def ids_by_email(self, email: str) -> list[str]:
        return [item.user_id for item in UserModel.users_by_email.query(email, attributes_to_get=["user_id"])]

    def add(self, account: Account) -> bool:
        item = _to_item(account)
        if not account.email:  # nothing to claim: one conditional put
            try:
                item.save(condition=UserModel.user_id.does_not_exist())
                return True
            except PutError as error:
                if is_condition_failure(error):
                    return False
                raise
        try:
            with _transaction() as transaction:
                transaction.save(item, condition=UserModel.user_id.does_not_exist())
                transaction.save(LimitModel(_email_claim(account.email), holder=account.user_id),
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

    def change_email(self, user_id: str, old: str | None, new: str) -> bool:
        try:
            with _transaction() as transaction:
                transaction.save(LimitModel(_email_claim(new), holder=user_id),
                                 condition=LimitModel.limit_key.does_not_exist())
                if old:
                    transaction.delete(LimitModel(_email_claim(old)),
                                       condition=LimitModel.limit_key.does_not_exist()
                                       | (LimitModel.holder == user_id))
                transaction.update(UserModel(user_id), actions=[UserModel.email.set(new)],
                                   condition=UserModel.user_id.exists())
            return True
        except TransactWriteError as error:
            failed = _failed_conditions(error)
            if failed and failed[0]:
                raise EmailTaken() from None
            if failed and failed[-1]:
                return False
            raise

    def update(self, user_id: str, changes: Mapping[str, Any],
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
            UserModel(user_id).update(actions=actions, condition=condition)
            return True
        except UpdateError as error:
            if is_condition_failure(error):
                return False
            raise

    def list_customers(self, limit: int, after: str | None) -> tuple[list[Account], str | None]:
        start_key = decode_page_token(after, {"user_id"}, _invalid_token) if after else None
        scan = UserModel.scan(filter_condition=UserModel.client_secret_hash.exists(), limit=limit,
                              page_size=limit, last_evaluated_key=start_key)
        return [_to_account(item) for item in scan], encode_page_token(scan.last_evaluated_key)
