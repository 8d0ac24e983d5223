"""PynamoDB implementation of `UserProcessRepository`: one item per (user, process id)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from pynamodb.exceptions import DeleteError, DoesNotExist

from stratus.domain.user_processes import UserProcessRepository
from stratus.errors import BadRequestException
from stratus.store.models import ProcessGraphModel


def _is_condition_failure(error: Exception) -> bool:
    return getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException"


def _decode_token(token: str, user_id: str) -> dict[str, Any]:
    """The start key of a page token, which must be one of this user's keys."""
    try:
        key = json.loads(base64.urlsafe_b64decode(token))
        valid = key["user_id"] == {"S": user_id} and set(key) == {"user_id", "process_graph_id"}
    except (ValueError, TypeError, KeyError):
        valid = False
    if not valid:
        raise BadRequestException(reason="`after` is not a page token of this listing")
    return key


class DynamoProcessGraphRepository(UserProcessRepository):
    def get(self, user_id: str, process_graph_id: str) -> dict[str, Any] | None:
        try:
            return ProcessGraphModel.get(user_id, process_graph_id, consistent_read=True).process
        except DoesNotExist:
            return None

    def put(self, user_id: str, process_graph_id: str, process: dict[str, Any]) -> None:
        ProcessGraphModel(user_id, process_graph_id, process=process, updated=datetime.now(UTC)).save()

    def delete(self, user_id: str, process_graph_id: str) -> bool:
        try:
            ProcessGraphModel(user_id, process_graph_id).delete(
                condition=ProcessGraphModel.process_graph_id.exists())
            return True
        except DeleteError as error:
            if _is_condition_failure(error):
                return False
            raise

    def list_for_user(self, user_id: str, limit: int, after: str | None) -> tuple[list[dict[str, Any]], str | None]:
        start_key = _decode_token(after, user_id) if after else None
        query = ProcessGraphModel.query(user_id, limit=limit, last_evaluated_key=start_key)
        processes = [item.process for item in query]
        next_key = query.last_evaluated_key
        token = base64.urlsafe_b64encode(json.dumps(next_key).encode()).decode() if next_key else None
        return processes, token
