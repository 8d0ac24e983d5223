"""Sends e-mail through Amazon SES (locally: the emulator's SES, whose sent messages a test can read)."""

from __future__ import annotations

from typing import Any


class SesEmailSender:
    def __init__(self, ses_client: Any, sender: str, configuration_set: str = "") -> None:
        """`configuration_set`: sent with every message, so SES suppresses bouncing addresses and reports
        bounces and complaints (`infra/stratus_infra/mail.py`); "" for none (the local emulator)."""
        self._ses = ses_client
        self._sender = sender
        self._configuration_set = {"ConfigurationSetName": configuration_set} if configuration_set else {}

    def send(self, to: str, subject: str, body: str) -> str:
        """Returns SES' message id."""
        response = self._ses.send_email(
            Source=self._sender,
            Destination={"ToAddresses": [to]},
            Message={"Subject": {"Data": subject, "Charset": "UTF-8"},
                     "Body": {"Text": {"Data": body, "Charset": "UTF-8"}}},
            **self._configuration_set,
        )
        return response["MessageId"]
