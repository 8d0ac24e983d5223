"""`SyncProcessor` on Lambda: invokes the processing function synchronously with pointers only."""

from __future__ import annotations

import json
from typing import Any


class LambdaSyncProcessor:
    def __init__(self, lambda_client: Any, function_name: str) -> None:
        self._lambda = lambda_client
        self._function_name = function_name

    def run(self, request_id: str, graph_key: str, results_prefix: str) -> dict[str, Any]:
        response = self._lambda.invoke(
            FunctionName=self._function_name,
            InvocationType="RequestResponse",
            Payload=json.dumps({"request_id": request_id, "graph_key": graph_key,
                                "results_prefix": results_prefix}).encode(),
        )
        payload = json.loads(response["Payload"].read() or b"{}")
        if response.get("FunctionError"):
            # crashed or timed out: no openEO error from the processing itself
            message = payload.get("errorMessage") or "the processing function failed"
            return {"ok": False, "error": {"code": "Internal", "message": f"Server error: {message}"}}
        return payload
