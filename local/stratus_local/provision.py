"""Creates Stratus' resources in the embedded emulator from the same definitions the CDK app uses:
table keys from the PynamoDB models, queues from `resources.QUEUES`, the state machine from the
ASL file with the same substitution names."""

from __future__ import annotations

import io
import json
import secrets
import zipfile
from dataclasses import dataclass, replace
from typing import Any

from stratus import resources
from stratus.settings import Settings
from stratus.store import models
from stratus_local.handlers import REPO_ROOT, local_function_name

ACCOUNT = "123456789012"
STATE_MACHINE_NAME = "stratus-batch-job"


@dataclass
class Provisioned:
    settings: Settings
    queue_urls: dict[str, str]
    queue_arns: dict[str, str]
    dlq_urls: dict[str, str]
    state_machine_arn: str
    oidc: "OidcClients | None" = None


@dataclass
class OidcClients:
    """The Cognito pool's app clients: a machine client (client credentials) and the public one for tools."""

    user_pool_id: str
    machine_client_id: str
    machine_client_secret: str
    public_client_id: str


def _dynamodb_table_args(model) -> dict[str, Any]:
    schema = models.key_schema(model)
    definitions: dict[str, str] = {}

    def keys(partition: dict, sort: dict | None) -> list[dict]:
        result = [{"AttributeName": partition["name"], "KeyType": "HASH"}]
        definitions[partition["name"]] = partition["type"]
        if sort:
            result.append({"AttributeName": sort["name"], "KeyType": "RANGE"})
            definitions[sort["name"]] = sort["type"]
        return result

    args: dict[str, Any] = {
        "KeySchema": keys(schema["partition_key"], schema["sort_key"]),
        "BillingMode": "PAY_PER_REQUEST",
        "SSESpecification": {"Enabled": True},
    }
    if schema["indexes"]:
        args["GlobalSecondaryIndexes"] = [
            {"IndexName": index["name"], "KeySchema": keys(index["partition_key"], index["sort_key"]),
             "Projection": {"ProjectionType": index["projection"],
                            **({"NonKeyAttributes": index["non_key_attributes"]}
                               if index["non_key_attributes"] else {})}}
            for index in schema["indexes"]
        ]
    args["AttributeDefinitions"] = [{"AttributeName": n, "AttributeType": t} for n, t in definitions.items()]
    return args


LOCAL_STAGE = "local"  # the Batch jobs' stage tag (`resources.BATCH_JOB_STAGE_TAG`)


def _dummy_zip() -> bytes:
    """The emulator wants code for a function; ours runs in-process, so a placeholder suffices."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "# runs in-process through the local Lambda seam\n")
    return buffer.getvalue()


def provision(session: Any, settings: Settings, *, oidc_issuer_base: str | None = None) -> Provisioned:
    """``oidc_issuer_base``: where the emulator's Cognito pools are reachable over HTTP (the local
    issuer); without it, no user pool is made and OpenID Connect stays off."""
    s3, ddb, sqs = session.client("s3"), session.client("dynamodb"), session.client("sqs")
    region = session.region_name

    for bucket in (getattr(settings, f"{name}_bucket") for name in resources.BUCKETS):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})

    for key, model in models.TABLES.items():
        ddb.create_table(TableName=getattr(settings, f"{key}_table"), **_dynamodb_table_args(model))
        if key in models.TTL_ATTRIBUTES:
            ddb.update_time_to_live(TableName=getattr(settings, f"{key}_table"), TimeToLiveSpecification={
                "Enabled": True, "AttributeName": models.TTL_ATTRIBUTES[key]})

    queue_urls, queue_arns, dlq_urls = {}, {}, {}
    for key, spec in resources.QUEUES.items():
        dlq_url = sqs.create_queue(QueueName=f"stratus-{key}-dlq", Attributes={
            "MessageRetentionPeriod": str(spec.dlq_retention_days * 86400), "SqsManagedSseEnabled": "true"})["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        url = sqs.create_queue(QueueName=f"stratus-{key}", Attributes={
            "VisibilityTimeout": str(spec.visibility_timeout_s),
            "MessageRetentionPeriod": str(spec.retention_days * 86400),
            "SqsManagedSseEnabled": "true",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": spec.max_receive_count}),
        })["QueueUrl"]
        queue_urls[key], dlq_urls[key] = url, dlq_url
        queue_arns[key] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    # item JSON put under the ingest prefix of the data bucket reaches the indexer through the ingest queue
    s3.put_bucket_notification_configuration(Bucket=settings.data_bucket, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": queue_arns["ingest"], "Events": ["s3:ObjectCreated:*"], "Filter": {
            "Key": {"FilterRules": [{"Name": "prefix", "Value": resources.INGEST_ROOT}]}}}]})

    # SES sends only from verified identities (in AWS: the stack's EmailIdentity)
    session.client("ses").verify_email_identity(EmailAddress=settings.notification_sender)
    session.client("secretsmanager").create_secret(Name=settings.token_secret_id,
                                                   SecretString=secrets.token_urlsafe(48))

    role_arn = _create_role(session.client("iam"))
    settings = replace(settings, status_queue_url=queue_urls["status"], log_queue_url=queue_urls["logs"],
                       webhook_queue_url=queue_urls["webhooks"], ingest_queue_url=queue_urls["ingest"],
                       ingest_dlq_url=dlq_urls["ingest"],
                       sync_function_name=local_function_name("sync_processing"))
    oidc = None
    if oidc_issuer_base:
        oidc = _create_user_pool(session.client("cognito-idp"))
        settings = replace(settings, oidc_issuer=f"{oidc_issuer_base.rstrip('/')}/{oidc.user_pool_id}",
                           oidc_client_ids=f"{oidc.machine_client_id},{oidc.public_client_id}",
                           oidc_default_client_id=oidc.public_client_id)

    lam = session.client("lambda")
    function_arns = {}
    for key, spec in resources.FUNCTIONS.items():
        function_arns[key] = lam.create_function(
            FunctionName=local_function_name(key), Runtime="python3.11", Role=role_arn, Handler=spec.handler,
            Code={"ZipFile": _dummy_zip()}, Timeout=spec.timeout_s, MemorySize=spec.memory_mb,
            Environment={"Variables": settings.as_env()},
        )["FunctionArn"]

    job_queue_arn, job_definition_arn = _create_batch(session, role_arn, settings)

    definition = resources.state_machine_definition((REPO_ROOT / resources.STATE_MACHINE_FILE).read_text())
    substitutions = {
        "PrepareJobFunctionArn": function_arns["prepare_job"],
        "PlanRunFunctionArn": function_arns["plan_run"],
        "StageName": LOCAL_STAGE,
        "StatusQueueUrl": queue_urls["status"],
        "JobQueueArn": job_queue_arn,
        "JobDefinitionArn": job_definition_arn,
    }
    assert set(substitutions) == set(resources.STATE_MACHINE_SUBSTITUTIONS)
    for name, value in substitutions.items():
        definition = definition.replace("${" + name + "}", value)
    state_machine_arn = session.client("stepfunctions").create_state_machine(
        name=STATE_MACHINE_NAME, definition=definition, roleArn=role_arn)["stateMachineArn"]
    settings = replace(settings, state_machine_arn=state_machine_arn)
    return Provisioned(settings, queue_urls, queue_arns, dlq_urls, state_machine_arn, oidc)


def _create_user_pool(idp: Any) -> OidcClients:
    """The same pool shape as the CDK stack: a resource server scope for the API, two app clients."""
    pool_id = idp.create_user_pool(PoolName="stratus-users")["UserPool"]["Id"]
    scope = f"{resources.OIDC_RESOURCE_SERVER}/{resources.OIDC_OPENEO_SCOPE}"
    idp.create_resource_server(UserPoolId=pool_id, Identifier=resources.OIDC_RESOURCE_SERVER, Name="Stratus API",
                               Scopes=[{"ScopeName": resources.OIDC_OPENEO_SCOPE,
                                        "ScopeDescription": "Use the openEO API"}])
    machine = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="stratus-machine", GenerateSecret=True,
        AllowedOAuthFlowsUserPoolClient=True, AllowedOAuthFlows=["client_credentials"], AllowedOAuthScopes=[scope],
    )["UserPoolClient"]
    public = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="openeo-tools", GenerateSecret=False,
        AllowedOAuthFlowsUserPoolClient=True, AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "email", "profile", scope], CallbackURLs=resources.OIDC_REDIRECT_URLS,
        SupportedIdentityProviders=["COGNITO"],
    )["UserPoolClient"]
    return OidcClients(pool_id, machine["ClientId"], machine["ClientSecret"], public["ClientId"])


def _create_role(iam: Any) -> str:
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {
        "Service": ["lambda.amazonaws.com", "states.amazonaws.com", "batch.amazonaws.com", "ecs-tasks.amazonaws.com"]}}]}
    return iam.create_role(RoleName="stratus-local", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def _create_batch(session: Any, role_arn: str, settings: Settings) -> tuple[str, str]:
    ec2, batch = session.client("ec2"), session.client("batch")
    vpc_id = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.42.0.0/24")["Subnet"]["SubnetId"]
    group_id = ec2.create_security_group(GroupName="stratus-batch", Description="batch", VpcId=vpc_id)["GroupId"]
    environment_arn = batch.create_compute_environment(
        computeEnvironmentName="stratus-fargate", type="MANAGED", state="ENABLED",
        computeResources={"type": "FARGATE", "maxvCpus": 8, "subnets": [subnet_id], "securityGroupIds": [group_id]},
        serviceRole=role_arn,
    )["computeEnvironmentArn"]
    queue_arn = batch.create_job_queue(
        jobQueueName="stratus-jobs", state="ENABLED", priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment_arn}],
    )["jobQueueArn"]
    container_env = {k: v for k, v in settings.as_env().items() if v}
    definition_arn = batch.register_job_definition(
        jobDefinitionName="stratus-processing", type="container", platformCapabilities=["FARGATE"],
        timeout={"attemptDurationSeconds": resources.PROCESSING_TIMEOUT_S},
        containerProperties={
            "image": "stratus-processing:local",
            "command": list(resources.PROCESSING_COMMAND),
            "jobRoleArn": role_arn,
            "executionRoleArn": role_arn,
            "resourceRequirements": [
                {"type": "VCPU", "value": str(resources.PROCESSING_VCPU)},
                {"type": "MEMORY", "value": str(resources.PROCESSING_MEMORY_MB)},
            ],
            "environment": [{"name": k, "value": v} for k, v in sorted(container_env.items())],
        },
    )["jobDefinitionArn"]
    return queue_arn, definition_arn
