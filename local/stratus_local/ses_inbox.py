"""A read-only inbox of the e-mails sent through the emulator's SES, for people and tests.

moto keeps sent messages in its SES backend but offers no HTTP view of them; this WSGI middleware
serves `GET /_stratus/ses/messages[?to=<address>]` as JSON (newest last). Locally no e-mail leaves
the machine; in AWS the same code sends real mail through SES.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

INBOX_PATH = "/_stratus/ses/messages"


def sent_messages(account_id: str, region: str) -> list[dict[str, Any]]:
    from moto.ses.models import ses_backends

    messages = []
    for message in ses_backends[account_id][region].sent_messages:
        recipients = [a for addresses in getattr(message, "destinations", {}).values() for a in addresses]
        messages.append({"id": message.id, "source": message.source, "to": recipients,
                         "subject": getattr(message, "subject", None), "body": getattr(message, "body", None)})
    return messages


class SesInbox:
    def __init__(self, app: Callable, account_id: str, region: str) -> None:
        self._app = app
        self._account_id = account_id
        self._region = region

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != INBOX_PATH:
            return self._app(environ, start_response)
        recipient = parse_qs(environ.get("QUERY_STRING", "")).get("to", [None])[0]
        messages = sent_messages(self._account_id, self._region)
        if recipient:
            messages = [m for m in messages if recipient.lower() in (a.lower() for a in m["to"])]
        body = json.dumps({"messages": messages}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
