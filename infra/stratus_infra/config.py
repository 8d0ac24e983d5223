"""The deployment's typed configuration: the stage's saved file `infra/config/<stage>.json`, then CDK context.

`cdk deploy -c stratus:stage=prod` reads `infra/config/prod.json`; its keys are the context keys below without
the `stratus:` prefix. A `-c stratus:<key>=...` flag overrides the file for that one synth (with a warning: it is
not saved, the next deploy without the flag goes back to the file). `docs/operations.md` documents every key.

| key                          | type | default | meaning                                                        |
| ---------------------------- | ---- | ------- | -------------------------------------------------------------- |
| `stratus:stage`              | str  | `dev`   | deployment name; the stack is `Stratus-<stage>` (context only) |
| `stratus:retainData`         | bool | `true`  | keep tables, buckets, token secret when the stack is deleted |
| `stratus:spot`               | bool | `false` | run processing on Fargate Spot (cheaper, can be interrupted)   |
| `stratus:logLevel`           | str  | `INFO`  | Lambda log level; `DEBUG` also logs every state machine event  |
| `stratus:tracing`            | bool | `true`  | X-Ray tracing of functions, API, state machine (~0.1 s cold start) |
| `stratus:resultsExpiryDays`  | int  | `30`    | days after which job runs are deleted from the results bucket |
| `stratus:notificationSender` | str  | required | sender of every e-mail (orders, registration, resets, Cognito) |
| `stratus:mailIdentity`       | str  | `create` | `create` the sender domain's SES identity (DKIM), or `existing` |
| `stratus:allowedPrivateHosts` | str | empty | host names/CIDRs webhooks and `load_stac` may reach though not public |
| `stratus:registration`       | str  | `verify` | order-service self-registration: `verify`, `approval` or `closed` |
| `stratus:collections`        | str  | `default` | collections configuration `infra/collections/<name>.json` |
| `stratus:alarmEmail`         | str  | empty   | alarm topic's e-mail subscription |
| `stratus:reservedConcurrency` | obj | `{}` | function key (`resources.FUNCTIONS`) -> reserved concurrency |
| `stratus:wafRateLimit`       | int  | `0`     | 0: no WAF (~6 USD/month); else block an IP above this per 5 minutes |
| `stratus:usagePlans`         | obj  | `{}`    | name -> {rateLimit, burstLimit, quotaPerDay?}: order API clients |
| `stratus:orderApiKeyRequired` | bool | `false` | the order API (`/api/v1/`) requires an API key of a plan |
| `stratus:monthlyBudgetUsd`   | int  | `0`     | 0: none; else a budget alerting at 80 % forecast, 100 % actual |
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aws_cdk import Annotations, RemovalPolicy
from constructs import Node

from stratus.resources import FUNCTIONS, REGISTRATION_MODES, REGISTRATION_VERIFY
from stratus_infra import constants

CONTEXT_PREFIX = "stratus:"
_STAGE_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
_COLLECTIONS_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_EMAIL = re.compile(r"^[^@\s]+@([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)$")
MAIL_IDENTITY_MODES = ("create", "existing")
CONFIG_DIR = constants.REPO_ROOT / "infra" / "config"
_USAGE_PLAN_FIELDS = {"rateLimit", "burstLimit", "quotaPerDay"}


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
    :param notification_sender: E-mail address the order notifications, password resets and Cognito mails come
        from. Required: there is no usable default. @default "" (synth fails)
    :param mail_identity: `create`: the stack creates the SES domain identity of the sender's domain with Easy
        DKIM (its CNAME records are outputs); `existing`: the identity exists (another stage created it, or the
        operator), so two stages can mail from one sender. @default "create"
    :param tracing: X-Ray tracing of the Lambda functions, the API stage and the state machine. Off, the functions
        do not import the X-Ray SDK (about 0.1 s of each cold start). @default True
    :param allowed_private_hosts: Comma-separated host names and CIDRs that user-given URLs (order webhooks,
        `load_stac`) may reach although they are not public addresses, e.g. an operator's own receiver in the
        VPC (`STRATUS_ALLOWED_PRIVATE_HOSTS`). @default "" (none)
    :param registration: Order-service self-registration (`STRATUS_REGISTRATION`): `verify` (an e-mail
        verification activates the customer), `approval` (verification, then an admin activates) or `closed`.
        @default "verify"
    :param collections: Name of the collections configuration, `infra/collections/<name>.json`
        (`stratus.collections_config`), written into the data bucket on deploy. @default "default"
    :param alarm_email: E-mail address subscribed to the alarm topic (SNS mails it a confirmation link).
        @default "" (no subscription)
    :param reserved_concurrency: Function key -> reserved concurrent executions (a cap, and a floor others cannot
        take). @default {} (none: the account's pool)
    :param waf_rate_limit: Requests per 5 minutes from one IP address above which a WAF web ACL on the API stage
        blocks it; 0 for no WAF (it costs ~6 USD a month). @default 0
    :param usage_plans: Usage plan name -> `{"rateLimit": rps, "burstLimit": n, "quotaPerDay": n}` (quota
        optional), for the API keys of the order API's clients. @default {}
    :param order_api_key_required: Whether `/api/v1/` requires an API key (of a usage plan), so each client is
        throttled by its plan. @default False
    :param monthly_budget_usd: Monthly cost budget of the account notifying the alarm topic; 0 for none.
        @default 0
    :param source: Where the values came from (the file read, if any), for messages. @default ""
    """

    stage: str = "dev"
    retain_data: bool = True
    spot: bool = False
    log_level: str = "INFO"
    results_expiry_days: int = constants.DEFAULT_RESULTS_EXPIRY_DAYS
    notification_sender: str = ""
    mail_identity: str = "create"
    tracing: bool = True
    allowed_private_hosts: str = ""
    registration: str = REGISTRATION_VERIFY
    collections: str = "default"
    alarm_email: str = ""
    reserved_concurrency: Mapping[str, int] = field(default_factory=dict)
    waf_rate_limit: int = 0
    usage_plans: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    order_api_key_required: bool = False
    monthly_budget_usd: int = 0
    source: str = field(default="", compare=False)

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
        where = f" (in {self.source})" if self.source else ""
        if not self.notification_sender:
            raise ValueError(f"stratus:notificationSender is required{where}: the address Stratus mails from, e.g. "
                             f"no-reply@<your domain>; set it in infra/config/{self.stage}.json")
        if not _EMAIL.match(self.notification_sender):
            raise ValueError(f"notificationSender {self.notification_sender!r}{where} is not an e-mail address")
        if self.mail_identity not in MAIL_IDENTITY_MODES:
            raise ValueError(f"mailIdentity {self.mail_identity!r}{where} must be one of {MAIL_IDENTITY_MODES}")
        if self.alarm_email and not _EMAIL.match(self.alarm_email):
            raise ValueError(f"alarm_email {self.alarm_email!r} is not an e-mail address")
        unknown = sorted(set(self.reserved_concurrency) - set(FUNCTIONS))
        if unknown:
            raise ValueError(f"reservedConcurrency{where} names unknown functions {unknown}: known {sorted(FUNCTIONS)}")
        for key, value in self.reserved_concurrency.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"reservedConcurrency.{key}={value!r}{where} must be a positive integer")
        if self.waf_rate_limit and self.waf_rate_limit < constants.WAF_MIN_RATE_LIMIT:
            raise ValueError(f"wafRateLimit {self.waf_rate_limit}{where} must be 0 (no WAF) or at least "
                             f"{constants.WAF_MIN_RATE_LIMIT} (AWS WAF's minimum)")
        for name, plan in self.usage_plans.items():
            if not isinstance(plan, Mapping) or not {"rateLimit", "burstLimit"} <= set(plan) \
                    or not set(plan) <= _USAGE_PLAN_FIELDS \
                    or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in plan.values()):
                raise ValueError(f"usagePlans.{name}{where} must be {{rateLimit, burstLimit[, quotaPerDay]}} with "
                                 f"positive integers, not {plan!r}")
        if self.order_api_key_required and not self.usage_plans:
            raise ValueError(f"orderApiKeyRequired{where} needs at least one usage plan for the clients' API keys")
        if self.monthly_budget_usd < 0:
            raise ValueError("monthlyBudgetUsd must be 0 (none) or positive")

    @property
    def mail_domain(self) -> str:
        """The domain of the sender, the SES identity."""
        return self.notification_sender.rsplit("@", 1)[1].lower()

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
    def from_context(cls, node: Node, config_dir: Path = CONFIG_DIR) -> StratusConfig:
        """The stage's saved file `<config_dir>/<stage>.json`, overridden by `stratus:*` context (cdk.json or
        `-c key=value`; the CLI passes the latter as strings). An override is reported as a warning: it is not
        saved. A stage without a file takes everything from context and the defaults."""
        defaults = cls(notification_sender="x@example.org")
        stage = _as_str(node.try_get_context(CONTEXT_PREFIX + "stage"), defaults.stage)
        path = config_dir / f"{stage}.json"
        saved: dict[str, Any] = {}
        if _STAGE_PATTERN.match(stage) and path.is_file():
            try:
                saved = json.loads(path.read_text())
            except json.JSONDecodeError as error:
                raise ValueError(f"{path} is not valid JSON: {error}") from None
            if not isinstance(saved, dict):
                raise ValueError(f"{path} must hold a JSON object")
            unknown = sorted(set(saved) - set(_KEYS) - {"$comment"})
            if unknown:
                raise ValueError(f"{path}: unknown keys {unknown}; known {sorted(_KEYS)}")
        overridden = []

        def get(key: str) -> Any:
            value = node.try_get_context(CONTEXT_PREFIX + key)
            if value is None:
                return saved.get(key)
            if key in saved and saved[key] != value:
                overridden.append(key)
            return value

        config = cls(
            stage=stage,
            retain_data=_as_bool(get("retainData"), defaults.retain_data, "retainData"),
            spot=_as_bool(get("spot"), defaults.spot, "spot"),
            log_level=_as_str(get("logLevel"), defaults.log_level).upper(),
            tracing=_as_bool(get("tracing"), defaults.tracing, "tracing"),
            results_expiry_days=_as_int(get("resultsExpiryDays"), defaults.results_expiry_days, "resultsExpiryDays"),
            notification_sender=_as_str(get("notificationSender"), "").strip(),
            mail_identity=_as_str(get("mailIdentity"), defaults.mail_identity),
            allowed_private_hosts=_as_str(get("allowedPrivateHosts"), defaults.allowed_private_hosts),
            registration=_as_str(get("registration"), defaults.registration),
            collections=_as_str(get("collections"), defaults.collections),
            alarm_email=_as_str(get("alarmEmail"), defaults.alarm_email).strip(),
            reserved_concurrency=_as_object(get("reservedConcurrency"), "reservedConcurrency"),
            waf_rate_limit=_as_int(get("wafRateLimit"), defaults.waf_rate_limit, "wafRateLimit"),
            usage_plans=_as_object(get("usagePlans"), "usagePlans"),
            order_api_key_required=_as_bool(get("orderApiKeyRequired"), defaults.order_api_key_required,
                                            "orderApiKeyRequired"),
            monthly_budget_usd=_as_int(get("monthlyBudgetUsd"), defaults.monthly_budget_usd, "monthlyBudgetUsd"),
            source=str(path.relative_to(constants.REPO_ROOT)) if saved and path.is_relative_to(constants.REPO_ROOT)
            else (str(path) if saved else ""),
        )
        for key in overridden:
            Annotations.of(node.root).add_warning_v2(
                f"stratus:{key}Override",
                f"stratus:{key} from -c overrides {config.source} for this synth only; save it in the file or the "
                f"next deploy reverts it")
        return config


# the keys of a stage file (and of `stratus:*` context, which also names the stage)
_KEYS = ("retainData", "spot", "logLevel", "tracing", "resultsExpiryDays", "notificationSender",
         "mailIdentity", "allowedPrivateHosts", "registration", "collections", "alarmEmail", "reservedConcurrency",
         "wafRateLimit", "usagePlans", "orderApiKeyRequired", "monthlyBudgetUsd")


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


def _as_object(value: Any, key: str) -> dict[str, Any]:
    """A JSON object from a stage file or cdk.json, or a `-c` string holding one."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"context {CONTEXT_PREFIX}{key}={value!r} is not a JSON object") from None
    if not isinstance(value, dict):
        raise ValueError(f"{key} must be a JSON object, not {value!r}")
    return value
