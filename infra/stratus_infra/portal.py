"""The customer portal and map tiles: the tiles function (the processing image with another entry point) behind
`/tiles/{proxy+}` of the REST API, and the portal's built files (`portal/dist`, `make portal`) in a private,
encrypted S3 bucket behind CloudFront (origin access control), with a `config.json` naming the API."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3_deployment
from constructs import Construct

from stratus import resources
from stratus_infra import access, constants
from stratus_infra.functions import settings_environment

PORTAL_DIST = constants.REPO_ROOT / "portal" / "dist"


@dataclass(frozen=True)
class PortalProps:
    """Props of `Portal`.

    :param rest_api: The REST API; `/tiles/{proxy+}` is added to it.
    :param targets: What the tiles function touches (`FUNCTIONS["tiles"].access`): the web services table, the
        results bucket and the token secret.
    :param environment: Settings of the tiles function (table and bucket names).
    :param base_layer: The portal's online base layer `{url, attribution}` (an XYZ template). @default none:
        the shipped Natural Earth boundaries only
    :param dist: The built portal. @default `portal/dist`
    :param build_context: Docker build context of the processing image. @default the repository root
    :param dockerfile: Its Dockerfile. @default `resources.PROCESSING_DOCKERFILE`
    :param image_exclude: Paths the image build must not see.
    """

    rest_api: apigw.RestApi
    targets: access.Targets
    environment: Mapping[str, str]
    base_layer: Mapping[str, str] | None = None
    dist: Path = PORTAL_DIST
    build_context: Path = constants.REPO_ROOT
    dockerfile: str = resources.PROCESSING_DOCKERFILE
    image_exclude: Sequence[str] = field(default_factory=lambda: tuple(constants.PROCESSING_IMAGE_EXCLUDE))
    log_retention: logs.RetentionDays = constants.DEFAULT_LOG_RETENTION
    access_log_bucket: s3.IBucket | None = None  # the stage's S3 server access logs (Storage.access_log_bucket)


class Portal(Construct):
    """`tiles_function`, `bucket`, `distribution` (the portal's URL is `https://<distribution domain>/`)."""

    def __init__(self, scope: Construct, construct_id: str, props: PortalProps) -> None:
        super().__init__(scope, construct_id)
        spec = resources.FUNCTIONS["tiles"]
        self.tiles_function = lambda_.DockerImageFunction(
            self,
            spec.logical_name,
            description=spec.description,
            code=lambda_.DockerImageCode.from_image_asset(
                str(props.build_context), file=props.dockerfile, exclude=list(props.image_exclude),
                platform=ecr_assets.Platform.LINUX_AMD64, entrypoint=["python", "-m", "awslambdaric"],
                cmd=[spec.handler]),
            architecture=lambda_.Architecture.X86_64,
            timeout=Duration.seconds(spec.timeout_s),
            memory_size=spec.memory_mb,
            environment={**props.environment,
                         **settings_environment(**access.environment(spec.access, props.targets))},
            tracing=lambda_.Tracing.ACTIVE,
            log_group=logs.LogGroup(self, "TilesLogs", retention=props.log_retention,
                                    removal_policy=RemovalPolicy.DESTROY),
        )
        access.grant(self.tiles_function, spec.access, props.targets)
        tiles = props.rest_api.root.add_resource("tiles")
        # ANY like the API's proxy (the function answers anything but GET with 404)
        tiles.add_proxy(default_integration=apigw.LambdaIntegration(self.tiles_function), any_method=True)

        if not (props.dist / "index.html").exists():
            raise FileNotFoundError(f"the portal is not built ({props.dist}): run `make portal` before synth")
        self.bucket = s3.Bucket(
            self, "Files", block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED, enforce_ssl=True, removal_policy=RemovalPolicy.DESTROY,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=props.access_log_bucket,
            server_access_logs_prefix="portal/" if props.access_log_bucket else None,
            auto_delete_objects=True)  # built files only: the next deployment writes them again
        self.distribution = cloudfront.Distribution(
            self, "Distribution",
            comment="Stratus customer portal",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                response_headers_policy=cloudfront.ResponseHeadersPolicy.SECURITY_HEADERS,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED),
            minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
        )
        config = {"api": props.rest_api.url.rstrip("/"),
                  "baseLayer": dict(props.base_layer) if props.base_layer else None}
        s3_deployment.BucketDeployment(
            self, "Deployment",
            sources=[s3_deployment.Source.asset(str(props.dist)),
                     s3_deployment.Source.json_data("config.json", config)],
            destination_bucket=self.bucket,
            # revalidated by CloudFront on each request (a few small files): a deployment shows at once without
            # invalidations, which would need `cloudfront:CreateInvalidation` on every distribution ("*")
            cache_control=[s3_deployment.CacheControl.no_cache()],
            exclude=["*.map"],
        )
