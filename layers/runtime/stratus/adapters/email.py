"""Sends e-mail through Amazon SES (locally: the emulator's SES, whose sent messages a test can read)."""

from __future__ import annotations

from typing import Any


class SesEmailSender:
    def __init__(self, ses_client: Any, sender: str) -> None:
        self._ses = ses_client
        self._sender = sender

    def send(self, to: str, subject: str, body: str) -> str:
        """Returns SES' message id."""
        response = self._ses.send_email(
            Source=self._sender,
            Destination={"ToAddresses": [to]},
            Message={"Subject": {"Data": subject, "Charset": "UTF-8"},
                     "Body": {"Text": {"Data": body, "Charset": "UTF-8"}}},
        )
        return response["MessageId"]
