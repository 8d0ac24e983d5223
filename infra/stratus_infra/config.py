"""The deployment's typed configuration, read once from CDK context in `infra/app.py`.

Context keys (all optional; `cdk deploy -c stratus:stage=prod -c stratus:spot=true`):

| key                          | type | default | meaning                                                        |
| ---------------------------- | ---- | ------- | -------------------------------------------------------------- |
| `stratus:stage`              | str  | `dev`   | deployment name; the stack is `Stratus-<stage>`                |
| `stratus:retainData`         | bool | `true`  | keep tables and buckets when the stack is deleted              |
| `stratus:spot`               | bool | `false` | run processing on Fargate Spot (cheaper, can be interrupted)   |
| `stratus:logLevel`           | str  | `INFO`  | Lambda log level; `DEBUG` also logs every state machine event  |
| `stratus:resultsExpiryDays`  | int  | `30`    | days after which job runs are deleted from the results bucket |
| `stratus:notificationSender` | str  | `no-reply@stratus.example` | SES sender of order e-mails (verified on deploy) |
| `stratus:allowedPrivateHosts` | str | empty | host names/CIDRs webhooks and `load_stac` may reach though not public |
| `stratus:registration`       | str  | `verify` | order-service self-registration: `verify`, `approval` or `closed` |
| `stratus:collections`        | str  | `default` | collections configuration `infra/collections/<name>.json` (README "Collections") |
| `stratus:alarmEmail`         | str  | empty   | alarm topic's e-mail subscription (keep it in cdk.json) |
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import RemovalPolicy
from constructs import Node

from stratus.resources import REGISTRATION_MODES, REGISTRATION_VERIFY
from stratus_infra import constants

CONTEXT_PREFIX = "stratus:"
_STAGE_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
_COLLECTIONS_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


@dataclass(frozen=True)
class StratusConfig:
    """One deployment of Stratus.

    :param stage: Deployment name (lower-case letters, digits, hyphens; at most 20 characters). Used in the stack
        name and the token secret's name, so several stages can share an account. @default "dev"
    :param retain_data: Whether tables and buckets survive `cdk destroy` (RETAIN, with table deletion protection)
        or are deleted with their content (DESTROY). @default True
    :param spot: Run processing jobs on Fargate Spot instead of on-demand Fargate. @default False
    :param log_level: Log level of the Lambda functions (DEBUG, INFO, WARNING, ERROR). DEBUG also switches state
        machine logging from ERROR to ALL. @default "INFO"
    :param results_expiry_days: Days after which a job run's objects are deleted from the results bucket.
        @default 30
    :param notification_sender: E-mail address the order notifications and password resets come from; the
        stack creates it as an SES identity (SES mails it a verification link). @default no-reply@stratus.example
    :param allowed_private_hosts: Comma-separated host names and CIDRs that user-given URLs (order webhooks,
        `load_stac`) may reach although they are not public addresses, e.g. an operator's own receiver in the
        VPC (`STRATUS_ALLOWED_PRIVATE_HOSTS`). @default "" (none)
    :param registration: Order-service self-registration (`STRATUS_REGISTRATION`): `verify` (an e-mail
        verification activates the customer), `approval` (verification, then an admin activates) or `closed`.
        @default "verify"
    :param collections: Name of the collections configuration, `infra/collections/<name>.json`
        (`stratus.collections_config`), written into the data bucket on deploy. @default "default"
    :param alarm_email: E-mail address subscribed to the alarm topic (SNS mails it a confirmation link); keep it
        in cdk.json's context so a later deploy does not drop the subscription. @default "" (no subscription)
    """

    stage: str = "dev"
    retain_data: bool = True
    spot: bool = False
    log_level: str = "INFO"
    results_expiry_days: int = constants.DEFAULT_RESULTS_EXPIRY_DAYS
    notification_sender: str = "no-reply@stratus.example"
    allowed_private_hosts: str = ""
    registration: str = REGISTRATION_VERIFY
    collections: str = "default"
    alarm_email: str = ""

    def __post_init__(self) -> None:
        if not _COLLECTIONS_NAME.match(self.collections) or not self.collections_file.is_file():
            raise ValueError(f"collections {self.collections!r} names no file infra/collections/<name>.json")
        if self.registration not in REGISTRATION_MODES:
            raise ValueError(f"registration {self.registration!r} must be one of {REGISTRATION_MODES}")
        if not _STAGE_PATTERN.match(self.stage):
            raise ValueError(f"stage {self.stage!r} must match {_STAGE_PATTERN.pattern}")
        if self.log_level not in constants.LOG_LEVELS:
            raise ValueError(f"log_level {self.log_level!r} must be one of {constants.LOG_LEVELS}")
        if self.results_expiry_days < 1:
            raise ValueError("results_expiry_days must be at least 1")
        if "@" not in self.notification_sender:
            raise ValueError(f"notification_sender {self.notification_sender!r} is not an e-mail address")
        if self.alarm_email and "@" not in self.alarm_email:
            raise ValueError(f"alarm_email {self.alarm_email!r} is not an e-mail address")

    @property
    def collections_file(self) -> Path:
        return constants.REPO_ROOT / "infra" / "collections" / f"{self.collections}.json"

    @property
    def stack_name(self) -> str:
        return f"Stratus-{self.stage}"

    @property
    def data_removal_policy(self) -> RemovalPolicy:
        return RemovalPolicy.RETAIN if self.retain_data else RemovalPolicy.DESTROY

    @classmethod
    def from_context(cls, node: Node) -> StratusConfig:
        """Read `stratus:*` context (cdk.json or `-c key=value`; the CLI passes the latter as strings)."""
        defaults = cls()

        def get(key: str) -> Any:
            return node.try_get_context(CONTEXT_PREFIX + key)

        return cls(
            stage=_as_str(get("stage"), defaults.stage),
            retain_data=_as_bool(get("retainData"), defaults.retain_data, "retainData"),
            spot=_as_bool(get("spot"), defaults.spot, "spot"),
            log_level=_as_str(get("logLevel"), defaults.log_level).upper(),
            results_expiry_days=_as_int(get("resultsExpiryDays"), defaults.results_expiry_days, "resultsExpiryDays"),
            notification_sender=_as_str(get("notificationSender"), defaults.notification_sender),
            allowed_private_hosts=_as_str(get("allowedPrivateHosts"), defaults.allowed_private_hosts),
            registration=_as_str(get("registration"), defaults.registration),
            collections=_as_str(get("collections"), defaults.collections),
            alarm_email=_as_str(get("alarmEmail"), defaults.alarm_email).strip(),
        )


def _as_str(value: Any, default: str) -> str:
    return default if value is None else str(value)


def _as_bool(value: Any, default: bool, key: str) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"context {CONTEXT_PREFIX}{key}={value!r} is not a boolean")


def _as_int(value: Any, default: int, key: str) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"context {CONTEXT_PREFIX}{key}={value!r} is not an integer") from None
