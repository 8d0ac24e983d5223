"""The HTTP API: an API Gateway REST API proxying every request (OPTIONS included) to the API Lambda function,
and the secret that signs its basic-auth tokens."""

from __future__ import annotations

from dataclasses import dataclass, field

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stratus.resources import FUNCTIONS, TOKEN_SECRET_NAME
from stratus_infra import constants
from stratus_infra.functions import FunctionRuntime, StratusFunction, settings_environment
from stratus_infra.storage import Storage
from stratus_infra.tables import Tables

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
    :param tables: Users (read/write: password rehash), jobs (read/write), logs (read/write: deleted with
        their job), process_graphs
        (read/write: user-defined processes).
    :param storage: Data bucket (read: STAC catalog) and results bucket (read: manifests, presigned downloads;
        delete under `jobs/`: `DELETE /jobs/{job_id}`) and files bucket (read/write/delete under `users/`: the
        workspaces of `/files`).
    :param state_machine: The job state machine the API starts and stops executions of (and reads, to find
        the Batch queue whose job it terminates on cancel).
    :param sync_function: The processing function the API invokes for synchronous requests (`POST /result`).
    :param export_prefix: Prefix of the output export names, normally the stack name.
    :param oidc_settings: `Settings` fields for OpenID Connect (`Identity.settings()`). @default {} (off)
    :param event_queues: Queues the API sends events to (order service: an invalid order's end on the status
        queue, `POST /api/v1/logging` entries on the logs queue). @default none
    :param email_identity_arn: SES identity of password-reset e-mails. @default None (no e-mail)
    :param token_secret_name: Name of the generated token signing secret. @default `resources.TOKEN_SECRET_NAME`
    :param stage_name: API Gateway stage, the first path segment of the URL. @default "api"
    :param throttling_rate_limit: Steady-state requests per second of the stage. @default 50
    :param throttling_burst_limit: Burst size of the stage. @default 100
    :param log_retention: Retention of the access log group. @default one month
    """

    runtime: FunctionRuntime
    tables: Tables
    storage: Storage
    state_machine: sfn.IStateMachine
    sync_function: lambda_.IFunction
    export_prefix: str
    oidc_settings: dict[str, str] = field(default_factory=dict)
    event_queues: list[sqs.IQueue] = field(default_factory=list)
    email_identity_arn: str | None = None
    token_secret_name: str = TOKEN_SECRET_NAME
    stage_name: str = constants.API_STAGE_NAME
    throttling_rate_limit: float = constants.API_THROTTLING_RATE_LIMIT
    throttling_burst_limit: int = constants.API_THROTTLING_BURST_LIMIT
    log_retention: logs.RetentionDays = constants.DEFAULT_LOG_RETENTION


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
        )

        spec = FUNCTIONS["api"]
        self.function = StratusFunction(
            self,
            spec.logical_name,
            spec=spec,
            runtime=props.runtime,
            environment=settings_environment(
                state_machine_arn=props.state_machine.state_machine_arn,
                token_secret_id=self.token_secret.secret_arn,
                sync_function_name=props.sync_function.function_name,
                **props.oidc_settings,
            ),
        )
        props.tables["users"].grant_read_write_data(self.function)
        props.tables["jobs"].grant_read_write_data(self.function)
        props.tables["logs"].grant_read_write_data(self.function)
        props.tables["process_graphs"].grant_read_write_data(self.function)
        props.tables["services"].grant_read_write_data(self.function)  # order service: the service catalog
        props.tables["limits"].grant_read_write_data(self.function)  # usage slots, quotas, rate limits
        for queue in props.event_queues:
            queue.grant_send_messages(self.function)
        if props.email_identity_arn:
            self.function.add_to_role_policy(iam.PolicyStatement(actions=["ses:SendEmail"],
                                                                 resources=[props.email_identity_arn]))
        props.storage.data.grant_read(self.function)
        props.storage.results.grant_read(self.function)  # presigned GETs are signed with the function's role
        props.state_machine.grant_start_execution(self.function)
        props.state_machine.grant_execution(self.function, "states:StopExecution")  # DELETE /jobs/{id}/results
        # DescribeStateMachine: the Batch queue of a run (grant_read would add account-wide List*).
        props.state_machine.grant(self.function, "states:DescribeStateMachine")
        props.storage.results.grant_delete(self.function, "jobs/*")  # DELETE /jobs/{job_id}
        # Cancel also terminates the run's Batch job, found by name; ListJobs has no resource-level scope.
        stack = Stack.of(self)
        self.function.add_to_role_policy(iam.PolicyStatement(
            actions=["batch:TerminateJob"],
            resources=[stack.format_arn(service="batch", resource="job", resource_name="*")]))
        self.function.add_to_role_policy(iam.PolicyStatement(actions=["batch:ListJobs"], resources=["*"]))
        props.sync_function.grant_invoke(self.function)
        props.storage.results.grant_put(self.function, "sync/*")  # frozen graphs of synchronous requests only
        # the users' workspaces (`/files`); presigned downloads are signed with the function's role
        props.storage.files.grant_read_write(self.function, "users/*")
        props.storage.files.grant_delete(self.function, "users/*")
        self.token_secret.grant_read(self.function)

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
