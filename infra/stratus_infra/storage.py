"""S3 buckets: `data` (the static STAC catalog and its assets), `results` (job runs) and `files` (the users'
workspaces, `/files`), plus their access logs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stratus.resources import BUCKETS, SYNC_ROOT
from stratus_infra import constants


@dataclass(frozen=True)
class StorageProps:
    """Props of `Storage`.

    :param removal_policy: What happens to the buckets when the stack is deleted; DESTROY also empties them
        first (a custom resource). @default RETAIN
    :param results_expiry_days: Days after which objects of job runs (`catalog_layout.run_prefix`) are deleted
        from the results bucket. @default 30
    :param sync_expiry_days: Days after which what synchronous requests wrote (`stratus.resources.SYNC_ROOT`) is deleted
        from the results bucket. @default 1
    :param data_noncurrent_version_expiry_days: Days an overwritten or deleted object of the (versioned) data
        bucket can still be restored. @default 90
    :param cors_allowed_origins: Origins that may GET objects through presigned URLs from a browser (openEO web
        editors run on other origins). @default ("*",)
    :param access_logs: Write S3 server access logs of both buckets into a third bucket. @default True
    :param access_log_expiry_days: Days access logs are kept. @default 90
    """

    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN
    results_expiry_days: int = constants.DEFAULT_RESULTS_EXPIRY_DAYS
    sync_expiry_days: int = constants.SYNC_RESULTS_EXPIRY_DAYS
    data_noncurrent_version_expiry_days: int = constants.DATA_NONCURRENT_VERSION_EXPIRY_DAYS
    cors_allowed_origins: Sequence[str] = ("*",)
    access_logs: bool = True
    access_log_expiry_days: int = constants.ACCESS_LOG_EXPIRY_DAYS


class Storage(Construct):
    """`buckets["data"]`, `buckets["results"]`, `buckets["files"]` (also `data`, `results`, `files`) and
    `access_log_bucket` (or None)."""

    def __init__(self, scope: Construct, construct_id: str, props: StorageProps | None = None) -> None:
        super().__init__(scope, construct_id)
        props = props or StorageProps()
        destroy = props.removal_policy == RemovalPolicy.DESTROY
        common = dict(
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=props.removal_policy,
            auto_delete_objects=destroy,
        )
        self.access_log_bucket: s3.Bucket | None = None
        if props.access_logs:
            self.access_log_bucket = s3.Bucket(
                self,
                "AccessLogs",
                **common,  # S3-managed encryption: log delivery cannot write to KMS-encrypted buckets
                lifecycle_rules=[s3.LifecycleRule(id="expire-access-logs",
                                                  expiration=Duration.days(props.access_log_expiry_days))],
            )
        cors = [
            s3.CorsRule(
                allowed_methods=[s3.HttpMethods.GET, s3.HttpMethods.HEAD],
                allowed_origins=list(props.cors_allowed_origins),
                allowed_headers=["*"],
                exposed_headers=["ETag", "Content-Length", "Content-Range", "Content-Type"],
                max_age=constants.PRESIGNED_GET_CORS_MAX_AGE_S,
            )
        ]
        abort_uploads = Duration.days(constants.ABORT_INCOMPLETE_UPLOAD_DAYS)
        lifecycle = {
            "data": [
                s3.LifecycleRule(
                    id="expire-old-versions",
                    noncurrent_version_expiration=Duration.days(props.data_noncurrent_version_expiry_days),
                    abort_incomplete_multipart_upload_after=abort_uploads,
                )
            ],
            "results": [
                s3.LifecycleRule(
                    id="expire-job-runs",
                    prefix=constants.results_runs_prefix(),
                    expiration=Duration.days(props.results_expiry_days),
                ),
                s3.LifecycleRule(
                    id="expire-sync-requests",
                    prefix=SYNC_ROOT,
                    expiration=Duration.days(props.sync_expiry_days),
                ),
                s3.LifecycleRule(id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=abort_uploads),
            ],
            "files": [
                s3.LifecycleRule(id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=abort_uploads),
            ],
        }
        self.buckets: dict[str, s3.Bucket] = {}
        for name in BUCKETS:
            self.buckets[name] = s3.Bucket(
                self,
                name.title(),
                **common,
                versioned=name == "data",
                cors=cors,
                lifecycle_rules=lifecycle.get(name),
                server_access_logs_bucket=self.access_log_bucket,
                server_access_logs_prefix=f"{name}/" if self.access_log_bucket else None,
            )

    @property
    def data(self) -> s3.Bucket:
        return self.buckets["data"]

    @property
    def results(self) -> s3.Bucket:
        return self.buckets["results"]

    @property
    def files(self) -> s3.Bucket:
        return self.buckets["files"]

    def settings(self) -> dict[str, str]:
        """`Settings` field -> bucket name, e.g. `{"results_bucket": <name>}`."""
        return {f"{name}_bucket": bucket.bucket_name for name, bucket in self.buckets.items()}
