"""The HTTP API: an API Gateway REST API proxying every request (OPTIONS included) to the API Lambda function,
and the secret that signs its basic-auth tokens (and, through derived keys, the order webhooks)."""

from __future__ import annotations

from dataclasses import dataclass, field

from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stratus.resources import FUNCTIONS, TOKEN_SECRET_NAME
from stratus_infra import constants
from stratus_infra.access import Targets
from stratus_infra.functions import FunctionRuntime, StratusFunction, settings_environment

# CORS headers on responses API Gateway produces itself (throttling, integration timeouts, ...): the Lambda
# answers everything else, including preflights, and sets CORS headers there (openEO wants them on errors too).
_GATEWAY_RESPONSE_HEADERS = {
    "Access-Control-Allow-Origin": "'*'",
    "Access-Control-Allow-Headers": "'Authorization,Content-Type'",
}


@dataclass(frozen=True)
class ApiProps:
    """Props of `Api`.

    :param runtime: Layer, environment and logging of the API function.
    :param targets: What the API function touches (`FUNCTIONS["api"].access`) except the token secret, which
        this construct creates: tables, buckets, queues, the state machine, the synchronous processing function
        and the SES identity.
    :param export_prefix: Prefix of the output export names, normally the stack name.
    :param oidc_settings: `Settings` fields for OpenID Connect (`Identity.settings()`). @default {} (off)
    :param token_secret_name: Name of the generated token signing secret. @default `resources.TOKEN_SECRET_NAME`
    :param stage_name: API Gateway stage, the first path segment of the URL. @default "api"
    :param throttling_rate_limit: Steady-state requests per second of the stage. @default 50
    :param throttling_burst_limit: Burst size of the stage. @default 100
    :param log_retention: Retention of the access log group. @default one month
    :param token_secret_removal_policy: What happens to the token secret when the stack is deleted (kept with
        the data: a restored users table's tokens and the customers' webhook secrets derive from it).
        @default DESTROY
    """

    runtime: FunctionRuntime
    targets: Targets
    export_prefix: str
    oidc_settings: dict[str, str] = field(default_factory=dict)
    token_secret_name: str = TOKEN_SECRET_NAME
    stage_name: str = constants.API_STAGE_NAME
    throttling_rate_limit: float = constants.API_THROTTLING_RATE_LIMIT
    throttling_burst_limit: int = constants.API_THROTTLING_BURST_LIMIT
    log_retention: logs.RetentionDays = constants.DEFAULT_LOG_RETENTION
    token_secret_removal_policy: RemovalPolicy = RemovalPolicy.DESTROY


class Api(Construct):
    """`rest_api`, `function` and `token_secret`; the URL is exported as `<export_prefix>-ApiUrl`."""

    def __init__(self, scope: Construct, construct_id: str, props: ApiProps) -> None:
        super().__init__(scope, construct_id)
        self.token_secret = secretsmanager.Secret(
            self,
            "TokenSigningKey",
            secret_name=props.token_secret_name,
            description="Stratus: HMAC key that signs the bearer tokens issued for basic auth",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True
            ),
            removal_policy=props.token_secret_removal_policy,
        )

        spec = FUNCTIONS["api"]
        self.function = StratusFunction(
            self,
            spec.logical_name,
            spec=spec,
            runtime=props.runtime,
            targets=props.targets.with_(secrets={"token": self.token_secret}),
            environment=settings_environment(**props.oidc_settings),
        )

        access_logs = logs.LogGroup(
            self, "AccessLogs", retention=props.log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.rest_api = apigw.LambdaRestApi(
            self,
            "RestApi",
            handler=self.function,
            proxy=True,  # ANY on / and /{proxy+}; no API Gateway OPTIONS mock: preflights reach the Lambda
            # results of POST /result are GeoTIFF/netCDF bytes: let base64 bodies from the Lambda through as binary
            binary_media_types=["*/*"],
            description="Stratus openEO API",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            endpoint_export_name=f"{props.export_prefix}-ApiUrl",
            # Access logs need the account-level CloudWatch role of API Gateway; kept on delete because it is
            # shared by every REST API of the account and region.
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            deploy_options=apigw.StageOptions(
                stage_name=props.stage_name,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=False,
                ),
                throttling_rate_limit=props.throttling_rate_limit,
                throttling_burst_limit=props.throttling_burst_limit,
                tracing_enabled=True,
            ),
        )
        for response_id, response_type in (
            ("Default4xx", apigw.ResponseType.DEFAULT_4_XX),
            ("Default5xx", apigw.ResponseType.DEFAULT_5_XX),
        ):
            self.rest_api.add_gateway_response(
                response_id, type=response_type, response_headers=_GATEWAY_RESPONSE_HEADERS
            )
