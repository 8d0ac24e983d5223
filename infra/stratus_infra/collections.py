"""The deployment's collections: the chosen configuration file (`infra/collections/<name>.json`, context
`stratus:collections`) written into the data bucket, and the function that refreshes the cached metadata of
its remote entries on a schedule and after each deployment (`stratus.domain.collection_refresh`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import custom_resources as cr
from constructs import Construct

from stratus import catalog_layout, collections_config
from stratus.collections_config import STAC_CATALOG
from stratus.resources import COLLECTIONS_REFRESH_SCHEDULE_HOURS, FUNCTIONS
from stratus_infra.access import Targets
from stratus_infra.functions import FunctionRuntime, StratusFunction


@dataclass(frozen=True)
class CollectionsProps:
    """Props of `Collections`.

    :param runtime: Layer, environment and logging of the refresh function.
    :param targets: What the refresh function's `Access` names (the data bucket).
    :param data_bucket: Where the configuration and the metadata cache live.
    :param config_file: The collections configuration (validated at synth: an invalid file fails it).
    :param refresh_hours: Hours between scheduled refreshes. @default `COLLECTIONS_REFRESH_SCHEDULE_HOURS`
    """

    runtime: FunctionRuntime
    targets: Targets
    data_bucket: s3.IBucket
    config_file: Path
    refresh_hours: int = COLLECTIONS_REFRESH_SCHEDULE_HOURS


class Collections(Construct):
    """`config` (the parsed configuration), `configuration` (the custom resource writing it) and `refresh`."""

    def __init__(self, scope: Construct, construct_id: str, props: CollectionsProps) -> None:
        super().__init__(scope, construct_id)
        self.config = collections_config.load(props.config_file)
        body = json.dumps(json.loads(props.config_file.read_text(encoding="utf-8")), indent=1)
        key = catalog_layout.collections_config_key()
        # written by an SDK call (the file is small, it travels in the template): no bucket-deployment asset
        put = cr.AwsSdkCall(service="S3", action="putObject",
                            parameters={"Bucket": props.data_bucket.bucket_name, "Key": key, "Body": body,
                                        "ContentType": "application/json"},
                            physical_resource_id=cr.PhysicalResourceId.of(
                                "collections-" + hashlib.sha256(body.encode()).hexdigest()[:16]))
        self.configuration = cr.AwsCustomResource(
            self, "Configuration", on_create=put, on_update=put, install_latest_aws_sdk=False,
            policy=cr.AwsCustomResourcePolicy.from_statements([
                iam.PolicyStatement(actions=["s3:PutObject"], resources=[props.data_bucket.arn_for_objects(key)])]))

        spec = FUNCTIONS["collections_refresh"]
        self.refresh = StratusFunction(self, spec.logical_name, spec=spec, runtime=props.runtime,
                                       targets=props.targets)
        # what the configuration names outside the stack (declared in the file, not in the spec)
        self._grant_sources(self.refresh)
        events.Rule(self, "RefreshSchedule", description="Refreshes the metadata of Stratus' remote collections",
                    schedule=events.Schedule.rate(Duration.hours(props.refresh_hours)),
                    targets=[targets.LambdaFunction(self.refresh, retry_attempts=2)])
        # a fresh deployment's /collections shows full metadata within a minute, not after the first schedule:
        # invoked when the configuration changes; asynchronously, so an unreachable source never fails a deploy
        invoke = cr.AwsSdkCall(service="Lambda", action="invoke",
                               parameters={"FunctionName": self.refresh.function_name, "InvocationType": "Event"},
                               physical_resource_id=put.physical_resource_id)
        self.refresh_on_deploy = cr.AwsCustomResource(
            self, "RefreshOnDeploy", on_create=invoke, on_update=invoke, install_latest_aws_sdk=False,
            policy=cr.AwsCustomResourcePolicy.from_statements([
                iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[self.refresh.function_arn])]))
        self.refresh_on_deploy.node.add_dependency(self.configuration)

    def _grant_sources(self, function: StratusFunction) -> None:
        """Read access to what the entries name: static catalogs in S3 and the secrets of auth headers."""
        stack = Stack.of(self)
        buckets = sorted({urlsplit(source.url).netloc for source in self.config.collections
                          if source.kind == STAC_CATALOG and source.url.startswith("s3://")})
        if buckets:
            function.add_to_role_policy(iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[f"arn:{stack.partition}:s3:::{bucket}/*" for bucket in buckets]))
        secrets = sorted({source.auth_secret for source in self.config.collections if source.auth_secret})
        if secrets:
            function.add_to_role_policy(iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue"],
                resources=[secret if secret.startswith("arn:") else stack.format_arn(
                    service="secretsmanager", resource="secret", resource_name=f"{secret}-??????",
                    arn_format=ArnFormat.COLON_RESOURCE_NAME) for secret in secrets]))
