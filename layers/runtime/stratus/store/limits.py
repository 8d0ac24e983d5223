"""PynamoDB implementations of the limit ports on the limits table (`LimitModel`): counters, usage slots,
the files-bytes ledger and pending registrations. Every check is a condition of the write itself."""

from __future__ import annotations

from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, TransactWriteError
from pynamodb.transactions import TransactWrite

from stratus.domain.files import LedgerOutcome
from stratus.domain.limits import CounterStore, SlotStore
from stratus.store.dynamo import is_condition_failure
from stratus.store.models import LimitModel

_BATCH_GET_MAX = 100  # DynamoDB BatchGetItem's keys per request


class DynamoCounterStore(CounterStore):
    def increment(self, key: str, expires: int) -> int:
        item = LimitModel(key)
        item.update(actions=[LimitModel.amount.add(1), LimitModel.expires.set(LimitModel.expires | expires)])
        return int(item.amount)

    def value(self, key: str) -> int:
        try:
            return int(LimitModel.get(key, consistent_read=True).amount or 0)
        except DoesNotExist:
            return 0


class DynamoSlotStore(SlotStore):
    def expiries(self, keys: list[str]) -> dict[str, float]:
        found: dict[str, float] = {}
        for start in range(0, len(keys), _BATCH_GET_MAX):
            for item in LimitModel.batch_get(keys[start:start + _BATCH_GET_MAX], consistent_read=True,
                                             attributes_to_get=["limit_key", "expires"]):
                found[item.limit_key] = float(item.expires or 0)
        return found

    def claim(self, key: str, holder: str, now: float, expires: float) -> bool:
        try:
            LimitModel(key, holder=holder, expires=expires).save(
                condition=LimitModel.limit_key.does_not_exist() | (LimitModel.expires <= now))
            return True
        except PutError as error:
            if is_condition_failure(error):
                return False
            raise

    def release(self, key: str, holder: str) -> None:
        try:
            LimitModel(key).delete(condition=LimitModel.holder == holder)
        except DeleteError as error:
            if not is_condition_failure(error):
                raise


def _files_total_key(user_id: str) -> str:
    return f"files-bytes#{user_id}"


def _file_key(storage_key: str) -> str:
    return f"file-size#{storage_key}"


class DynamoFileQuotaLedger:
    """`FileQuotaLedger`: a bytes counter per user and the size accounted for each of its files, changed
    together in one transaction."""

    def total(self, user_id: str) -> int | None:
        try:
            return int(LimitModel.get(_files_total_key(user_id), consistent_read=True).amount or 0)
        except DoesNotExist:
            return None

    def start(self, user_id: str, used: int) -> None:
        try:
            LimitModel(_files_total_key(user_id), amount=used).save(condition=LimitModel.limit_key.does_not_exist())
        except PutError as error:
            if not is_condition_failure(error):
                raise

    def recorded(self, storage_key: str) -> int | None:
        try:
            return int(LimitModel.get(_file_key(storage_key), consistent_read=True).amount or 0)
        except DoesNotExist:
            return None

    def change(self, user_id: str, storage_key: str, expected: int | None, old: int, new: int | None,
               quota: int) -> LedgerOutcome:
        delta = (new or 0) - old
        if delta > 0 and delta > quota:
            return LedgerOutcome.QUOTA
        file_item = LimitModel(_file_key(storage_key), amount=new, holder=user_id)
        file_condition = (LimitModel.limit_key.does_not_exist() if expected is None
                          else LimitModel.amount == expected)
        total_condition = LimitModel.limit_key.exists()
        if delta > 0:
            total_condition &= LimitModel.amount <= quota - delta
        try:
            with TransactWrite(connection=Connection(region=LimitModel.Meta.region,
                                                     host=LimitModel.Meta.host)) as transaction:
                if new is None:
                    transaction.delete(LimitModel(_file_key(storage_key)), condition=file_condition)
                else:
                    transaction.save(file_item, condition=file_condition)
                transaction.update(LimitModel(_files_total_key(user_id)), actions=[LimitModel.amount.add(delta)],
                                   condition=total_condition)
        except TransactWriteError as error:
            reasons = [getattr(reason, "code", None) if reason else None for reason in error.cancellation_reasons]
            if len(reasons) == 2 and reasons[1] == "ConditionalCheckFailed":
                return LedgerOutcome.QUOTA
            if reasons and reasons[0] == "ConditionalCheckFailed":
                return LedgerOutcome.CONFLICT
            if any(reason == "TransactionConflict" for reason in reasons):
                return LedgerOutcome.CONFLICT
            raise
        return LedgerOutcome.DONE


class DynamoPendingRegistrations:
    """`PendingRegistrations`: registrations waiting for their e-mail verification, keyed by the digest of
    the verification token; taken once (a conditional delete)."""

    @staticmethod
    def _key(digest: str) -> str:
        return f"registration#{digest}"

    def put(self, digest: str, data: dict[str, Any], expires: float) -> None:
        LimitModel(self._key(digest), data=data, expires=int(expires)).save()

    def take(self, digest: str, now: float) -> dict[str, Any] | None:
        """The registration, once: of parallel takers only the one whose delete finds the item gets it."""
        try:
            item = LimitModel.get(self._key(digest), consistent_read=True)
        except DoesNotExist:
            return None
        if float(item.expires or 0) <= now:
            return None
        try:
            item.delete(condition=LimitModel.limit_key.exists())
        except DeleteError as error:
            if is_condition_failure(error):
                return None
            raise
        return dict(item.data or {})
