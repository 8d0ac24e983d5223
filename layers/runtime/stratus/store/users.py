"""PynamoDB implementation of `UserRepository`."""

from __future__ import annotations

from pynamodb.exceptions import DoesNotExist, PutError

from stratus.domain.auth import User, UserRepository
from stratus.store.dynamo import is_condition_failure
from stratus.store.models import UserModel


class DynamoUserRepository(UserRepository):
    def get(self, user_id: str) -> User | None:
        try:
            item = UserModel.get(user_id, consistent_read=True)
        except DoesNotExist:
            return None
        return User(user_id=item.user_id, password_hash=item.password_hash, name=item.name, email=item.email,
                    roles=list(item.roles or []), created=item.created, active=item.active is not False,
                    scopes=list(item.scopes or []), is_customer=item.client_secret_hash is not None,
                    token_version=int(item.token_version or 0))

    def add(self, user: User) -> bool:
        try:
            UserModel(user.user_id, password_hash=user.password_hash, name=user.name, email=user.email,
                      roles=user.roles, created=user.created).save(condition=UserModel.user_id.does_not_exist())
            return True
        except PutError as error:
            if is_condition_failure(error):
                return False
            raise

    def update_password_hash(self, user_id: str, password_hash: str) -> None:
        UserModel(user_id).update(actions=[UserModel.password_hash.set(password_hash)])
