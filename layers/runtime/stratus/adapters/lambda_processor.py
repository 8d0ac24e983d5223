"""`SyncProcessor` on Lambda: invokes the processing function synchronously with pointers only."""

from __future__ import annotations

import json
from typing import Any

from stratus.run_contract import RunConfig


class LambdaSyncProcessor:
    def __init__(self, lambda_client: Any, function_name: str) -> None:
        self._lambda = lambda_client
        self._function_name = function_name

    def run(self, run: RunConfig) -> dict[str, Any]:
        response = self._lambda.invoke(
            FunctionName=self._function_name,
            InvocationType="RequestResponse",
            Payload=json.dumps(run.to_sync_event()).encode(),
        )
        payload = json.loads(response["Payload"].read() or b"{}")
        if response.get("FunctionError"):
            # crashed or timed out: no openEO error from the processing itself
            message = payload.get("errorMessage") or "the processing function failed"
            return {"ok": False, "error": {"code": "Internal", "message": f"Server error: {message}"}}
        return payload
