"""Runtime settings, read from the environment only in `Settings.from_env()`."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from stratus import resources

if TYPE_CHECKING:
    from stratus.outbound import AllowList

# Environment variable names, shared by the CDK app (which sets them) and the runtime (which reads them).
ENV = {
    "users_table": "STRATUS_USERS_TABLE",
    "jobs_table": "STRATUS_JOBS_TABLE",
    "logs_table": "STRATUS_LOGS_TABLE",
    "process_graphs_table": "STRATUS_PROCESS_GRAPHS_TABLE",
    "services_table": "STRATUS_SERVICES_TABLE",
    "limits_table": "STRATUS_LIMITS_TABLE",
    "web_services_table": "STRATUS_WEB_SERVICES_TABLE",
    "data_bucket": "STRATUS_DATA_BUCKET",
    "results_bucket": "STRATUS_RESULTS_BUCKET",
    "files_bucket": "STRATUS_FILES_BUCKET",
    "files_quota_bytes": "STRATUS_FILES_QUOTA_BYTES",
    "status_queue_url": "STRATUS_STATUS_QUEUE_URL",
    "log_queue_url": "STRATUS_LOG_QUEUE_URL",
    "webhook_queue_url": "STRATUS_WEBHOOK_QUEUE_URL",
    "ingest_queue_url": "STRATUS_INGEST_QUEUE_URL",
    "ingest_dlq_url": "STRATUS_INGEST_DLQ_URL",
    "state_machine_arn": "STRATUS_STATE_MACHINE_ARN",
    "sync_function_name": "STRATUS_SYNC_FUNCTION",
    "token_secret_id": "STRATUS_TOKEN_SECRET_ID",
    "presign_expiry_s": "STRATUS_PRESIGN_EXPIRY_S",
    "backend_title": "STRATUS_BACKEND_TITLE",
    "oidc_issuer": "STRATUS_OIDC_ISSUER",
    "oidc_client_ids": "STRATUS_OIDC_CLIENT_IDS",
    "oidc_default_client_id": "STRATUS_OIDC_DEFAULT_CLIENT_ID",
    "notification_sender": "STRATUS_NOTIFICATION_SENDER",
    "mail_configuration_set": "STRATUS_MAIL_CONFIGURATION_SET",
    "order_collection_id": "STRATUS_ORDER_COLLECTION_ID",
    "allowed_private_hosts": "STRATUS_ALLOWED_PRIVATE_HOSTS",
    "registration": "STRATUS_REGISTRATION",
    "reaper_stale_after_s": "STRATUS_REAPER_STALE_AFTER_S",
    "registrations_per_client_per_hour": "STRATUS_REGISTRATIONS_PER_CLIENT_PER_HOUR",
    "fanout_min_tile_px": "STRATUS_FANOUT_MIN_TILE_PX",
    "fanout_max_tile_px": "STRATUS_FANOUT_MAX_TILE_PX",
    "fanout_tile_block_px": "STRATUS_FANOUT_TILE_BLOCK_PX",
    "fanout_task_load_bytes": "STRATUS_FANOUT_TASK_LOAD_BYTES",
    "results_role_arn": "STRATUS_RESULTS_ROLE_ARN",
}


@dataclass(frozen=True)
class Settings:
    users_table: str = "stratus-users"
    jobs_table: str = "stratus-jobs"
    logs_table: str = "stratus-logs"
    process_graphs_table: str = "stratus-process-graphs"
    services_table: str = "stratus-services"
    limits_table: str = "stratus-limits"
    web_services_table: str = "stratus-web-services"
    data_bucket: str = "stratus-data"
    results_bucket: str = "stratus-results"
    files_bucket: str = "stratus-files"
    files_quota_bytes: int = resources.FILES_QUOTA_BYTES
    status_queue_url: str = ""
    log_queue_url: str = ""
    webhook_queue_url: str = ""
    ingest_queue_url: str = ""  # catalogue changes to the indexer (`stratus.domain.indexer`)
    ingest_dlq_url: str = ""  # its DLQ, where the indexer also parks invalid items with the reason
    state_machine_arn: str = ""
    sync_function_name: str = ""
    token_secret_id: str = resources.TOKEN_SECRET_NAME
    presign_expiry_s: int = resources.PRESIGNED_URL_EXPIRY_S
    backend_title: str = "Stratus"
    oidc_issuer: str = ""  # the Cognito user pool's issuer URL; empty: OpenID Connect is off
    oidc_client_ids: str = ""  # comma-separated app clients whose access tokens are accepted
    oidc_default_client_id: str = ""  # the public client offered to openEO tools (`default_clients`)
    notification_sender: str = "no-reply@stratus.example"  # SES identity of order e-mails
    mail_configuration_set: str = ""  # SES configuration set of every message (bounce handling); empty: none
    order_collection_id: str = "sentinel-2-l2a-demo"  # the collection the shipped services process
    # comma-separated host names and CIDRs that user-given URLs (webhooks, load_stac) may reach although they
    # are not public addresses (`stratus.outbound.AllowList`): an operator's own receivers, tests; empty: none
    allowed_private_hosts: str = ""
    # order-service self-registration: "verify" (e-mail verification activates), "approval" (verification,
    # then an admin activates) or "closed" (admins create customers)
    registration: str = resources.REGISTRATION_VERIFY
    # a queued or running job quiet this long is looked at by the reaper
    reaper_stale_after_s: int = resources.REAPER_POLICY.quiet_after_s
    # order-service registrations from one client address per hour (a class behind one NAT needs more)
    registrations_per_client_per_hour: int = resources.REGISTRATIONS_PER_CLIENT[0]
    # the fan-out planner's tile edges (px) and the loaded bytes one task may hold (0: what its memory allows);
    # production keeps the defaults, tests and local runs make small tiles
    fanout_min_tile_px: int = resources.FANOUT_MIN_TILE_PX
    fanout_max_tile_px: int = resources.FANOUT_MAX_TILE_PX
    fanout_tile_block_px: int = resources.FANOUT_BLOCK_PX
    fanout_task_load_bytes: int = 0
    # the processing's results role (`resources.RESULTS_ROLES`), assumed per run with a session policy for the
    # run's folder; empty (local runs, tests): the results bucket is reached with the process's own credentials
    results_role_arn: str = ""

    @property
    def oidc_client_id_list(self) -> list[str]:
        return [c.strip() for c in self.oidc_client_ids.split(",") if c.strip()]

    @property
    def outbound_allow_list(self) -> AllowList:
        from stratus.outbound import AllowList

        return AllowList.parse(self.allowed_private_hosts)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Settings":
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = environ.get(ENV[f.name])
            if raw is not None and raw != "":
                values[f.name] = int(raw) if f.type in ("int", int) else raw
        return cls(**values)

    def as_env(self) -> dict[str, str]:
        return {ENV[f.name]: str(getattr(self, f.name)) for f in fields(self)}
