"""PynamoDB implementation of `UserProcessRepository`: one item per (user, process id)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pynamodb.exceptions import DeleteError, DoesNotExist

from stratus.domain.user_processes import UserProcessRepository
from stratus.errors import BadRequestException
from stratus.store.dynamo import decode_page_token, encode_page_token, is_condition_failure
from stratus.store.models import ProcessGraphModel


def _invalid_token() -> Exception:
    return BadRequestException(reason="`after` is not a page token of this listing")




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
            if is_condition_failure(error):
                return False
            raise

    def list_for_user(self, user_id: str, limit: int, after: str | None) -> tuple[list[dict[str, Any]], str | None]:
        start_key = decode_page_token(after, {"user_id", "process_graph_id"}, _invalid_token,
                                      owner=("user_id", user_id)) if after else None
        query = ProcessGraphModel.query(user_id, limit=limit, last_evaluated_key=start_key)
        processes = [item.process for item in query]
        return processes, encode_page_token(query.last_evaluated_key)
