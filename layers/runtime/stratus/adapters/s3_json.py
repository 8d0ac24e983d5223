"""JSON documents in S3, read one way everywhere: a missing key is `None`, never an error to sort out.

Used by the Lambdas' adapters and by the processing container (run snapshot, manifest, catalog).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

# GetObject answers NoSuchKey; HeadObject, which has no body, a bare 404 (botocore: "404" or "NotFound").
_MISSING_KEY_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def is_missing_key(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in _MISSING_KEY_CODES


def read_json(s3_client: Any, bucket: str, key: str) -> Any | None:
    """The document at `key`, or None when there is no object there. Raises `ValueError` for a body
    that is not JSON, `ClientError` for any other failure (e.g. access denied)."""
    try:
        body = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if is_missing_key(error):
            return None
        raise
    return json.loads(body)


def write_json(s3_client: Any, bucket: str, key: str, document: Any) -> None:
    s3_client.put_object(Bucket=bucket, Key=key, Body=json.dumps(document).encode(), ContentType="application/json")
