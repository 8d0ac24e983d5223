"""Synth tests of the Stratus CDK app: resource types and counts, derived-from-source settings, least privilege.

The app is synthesized once per module (`synth` fixture, in-process) and once through the real CLI.
Neither needs Docker: the layer is bundled by pip on the host and the processing image is only built at deploy.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from stratus.resources import (
    BUCKETS,
    COLLECTIONS_REFRESH_SCHEDULE_HOURS,
    FANOUT_POLICY,
    FUNCTIONS,
    OIDC_REDIRECT_URLS,
    PROCESSING_COMMAND,
    PROCESSING_MEMORY_MB,
    PROCESSING_TIMEOUT_S,
    PROCESSING_VCPU,
    QUEUES,
    STATE_MACHINE_SUBSTITUTIONS,
    SYNC_ROOT,
    TOKEN_SECRET_NAME,
)
from stratus.settings import ENV
from stratus.store.models import TABLES, TTL_ATTRIBUTES, key_schema

REPO_ROOT = Path(__file__).resolve().parents[2]
SYNTH_TIMEOUT_S = 300  # seconds: a cold synth builds the Lambda layer with pip

pytestmark = [pytest.mark.timeout(SYNTH_TIMEOUT_S), pytest.mark.slow]
Synth = Any  # conftest.Synth: stack, template, resources, outdir

# Actions allowed on "Resource": "*" because AWS offers no resource-level permissions for them.
WILDCARD_RESOURCE_ACTIONS = {
    # X-Ray tracing of the Lambda functions and the state machine
    "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
    # Step Functions logging to CloudWatch Logs goes through "vended log delivery", which needs "*"
    "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
    # `batch:submitJob.sync` polls the job; DescribeJobs has no resource-level permissions
    "batch:DescribeJobs",
    # cancel (API) finds the run's Batch job by name; ListJobs has no resource-level permissions
    "batch:ListJobs",
    # the Fargate execution role pulls the image; ECR auth tokens are account-wide
    "ecr:GetAuthorizationToken",
}


INSECURE_TRANSPORT = {"Bool": {"aws:SecureTransport": "false"}}


def of_type(synth: Synth, resource_type: str) -> dict[str, dict]:
    return {lid: r for lid, r in synth.resources.items() if r["Type"] == resource_type}


def logical_id(synth: Synth, construct) -> str:
    """Logical id of an L2 construct's (or an L1's) CloudFormation resource."""
    cfn = getattr(construct.node, "default_child", None) or construct
    return synth.stack.resolve(synth.stack.get_logical_id(cfn))


def statements(synth: Synth):
    """(policy logical id, statement) of every identity policy: AWS::IAM::Policy and roles' inline policies."""
    for lid, resource in synth.resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Policy":
            documents = [props["PolicyDocument"]]
        elif resource["Type"] == "AWS::IAM::Role":
            documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
        else:
            continue
        for document in documents:
            for statement in document["Statement"]:
                yield lid, statement


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def sent_to(synth: Synth, role_logical_id: str) -> set[str]:
    """Logical ids of the queues a role may send messages to."""
    queues = set()
    for resource in of_type(synth, "AWS::IAM::Policy").values():
        if {"Ref": role_logical_id} in resource["Properties"]["Roles"]:
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                if "sqs:SendMessage" in as_list(statement["Action"]):
                    queues.update(r["Fn::GetAtt"][0] for r in as_list(statement["Resource"]))
    return queues


def policy_actions_of(synth: Synth, role_logical_id: str) -> set[str]:
    actions = set()
    for resource in of_type(synth, "AWS::IAM::Policy").values():
        if {"Ref": role_logical_id} in resource["Properties"]["Roles"]:
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                actions.update(as_list(statement["Action"]))
    return actions


# --- resource inventory -----------------------------------------------------------------------------------------


def test_resource_counts(synth: Synth) -> None:
    # Given the app synthesized with cdk.json's context
    # When counting resources by type
    # Then each concern is there exactly as often as the shared resource specs say
    t = synth.template
    t.resource_count_is("AWS::ApiGateway::RestApi", 1)
    # the runtime layer, the portal deployment's AWS CLI and the extra layers functions name ("catalogue")
    t.resource_count_is("AWS::Lambda::LayerVersion", 2 + len({name for f in FUNCTIONS.values() for name in f.layers}))
    t.resource_count_is("AWS::DynamoDB::Table", len(TABLES))
    t.resource_count_is("AWS::S3::Bucket", len(BUCKETS) + 2)  # + access logs, the portal's files
    t.resource_count_is("AWS::SQS::Queue", 2 * len(QUEUES))  # each with its DLQ
    t.resource_count_is("AWS::Lambda::EventSourceMapping", len(QUEUES))
    # two per queue (DLQ depth, oldest message age), two per function (errors, throttles), API 5xx rate and
    # p95/p99 latency, failed executions, lost runs the reaper ended, SES bounce and complaint rates
    t.resource_count_is("AWS::CloudWatch::Alarm", 2 * len(QUEUES) + 2 * len(FUNCTIONS) + 7)
    t.resource_count_is("AWS::CloudWatch::Dashboard", 1)
    t.resource_count_is("AWS::SNS::Topic", 1)
    t.resource_count_is("AWS::StepFunctions::StateMachine", 1)
    t.resource_count_is("AWS::Batch::ComputeEnvironment", 1)
    t.resource_count_is("AWS::Batch::JobQueue", 1)
    t.resource_count_is("AWS::Batch::JobDefinition", 1)
    t.resource_count_is("AWS::SecretsManager::Secret", 1)
    t.resource_count_is("AWS::EC2::NatGateway", 0)
    assert len(of_type(synth, "AWS::Lambda::Function")) >= len(FUNCTIONS)


def test_every_resource_is_tagged(synth: Synth) -> None:
    # Given the synthesized template / When reading the tags of taggable resources / Then project and stage are set
    for resource_type in ("AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::SQS::Queue", "AWS::Lambda::Function",
                          "AWS::StepFunctions::StateMachine", "AWS::SecretsManager::Secret", "AWS::EC2::VPC"):
        for lid, resource in of_type(synth, resource_type).items():
            if lid.startswith("Custom"):  # CDK's singleton custom resource providers are not taggable
                continue
            tags = {t["Key"]: t["Value"] for t in resource["Properties"].get("Tags", [])}
            assert tags.get("project") == "stratus" and tags.get("stage") == "dev", lid


# --- Lambda -----------------------------------------------------------------------------------------------------


def test_functions_follow_their_specs(synth: Synth) -> None:
    # Given the function specs of stratus.resources
    functions = of_type(synth, "AWS::Lambda::Function")
    layer_id = logical_id(synth, synth.stack.node.find_child("RuntimeLayer").layer)
    extra_layer_ids = {"catalogue": logical_id(synth, synth.stack.node.find_child("CatalogueLayer").layer)}
    for key, spec in FUNCTIONS.items():
        # When finding the function of each spec (by its description)
        matches = [r["Properties"] for r in functions.values()
                   if r["Properties"].get("Description") == spec.description]
        assert len(matches) == 1, key
        props = matches[0]
        # Then handler, sizes, architecture, tracing and environment are as specified
        assert props["Timeout"] == spec.timeout_s
        assert props["MemorySize"] == spec.memory_mb
        # (zip functions on Graviton; the processing image is built for x86_64)
        assert props["Architectures"] == (["x86_64"] if spec.packaging == "image" else ["arm64"])
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert "LogGroup" in props["LoggingConfig"]
        variables = props["Environment"]["Variables"]
        assert all(name.startswith(("STRATUS_", "POWERTOOLS_")) for name in variables)
        if spec.packaging == "image":
            # the processing image, started by the Lambda runtime interface client with the spec's handler
            assert props["PackageType"] == "Image"
            assert props["ImageConfig"]["Command"] == [spec.handler]
            assert props["ImageConfig"]["EntryPoint"] == ["python", "-m", "awslambdaric"]
            for name in ("data_bucket", "results_bucket"):
                assert ENV[name] in variables, (key, name)
            continue
        assert props["Handler"] == spec.handler
        assert props["Runtime"] == "python3.14"
        # (in the template's order, which is not the order given; the layers share no file)
        assert sorted(layer["Ref"] for layer in props["Layers"]) == sorted([layer_id, *(extra_layer_ids[name]
                                                                                         for name in spec.layers)])
        for name in ("users_table", "jobs_table", "logs_table", "data_bucket", "results_bucket",
                     "status_queue_url", "log_queue_url"):
            assert ENV[name] in variables, (key, name)
        assert (ENV["state_machine_arn"] in variables) == (key in ("api", "reaper"))  # they start, stop or ask runs
        assert (ENV["sync_function_name"] in variables) == (key == "api")


def test_log_groups_have_retention(synth: Synth) -> None:
    for lid, resource in of_type(synth, "AWS::Logs::LogGroup").items():
        assert resource["Properties"].get("RetentionInDays"), lid


# --- DynamoDB ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(TABLES))
def test_table_matches_its_model(synth: Synth, key: str) -> None:
    # Given the PynamoDB model's key schema
    schema = key_schema(TABLES[key])
    # When reading the table synthesized for it
    resource = synth.resources[logical_id(synth, synth.stack.tables[key])]
    props = resource["Properties"]

    # Then keys, indexes and attribute types equal the model's
    def keys(partition, sort):
        result = [{"AttributeName": partition["name"], "KeyType": "HASH"}]
        return result + ([{"AttributeName": sort["name"], "KeyType": "RANGE"}] if sort else [])

    assert props["KeySchema"] == keys(schema["partition_key"], schema["sort_key"])
    indexes = {i["IndexName"]: i for i in props.get("GlobalSecondaryIndexes", [])}
    assert set(indexes) == {i["name"] for i in schema["indexes"]}
    for index in schema["indexes"]:
        assert indexes[index["name"]]["KeySchema"] == keys(index["partition_key"], index["sort_key"])
        projection = {"ProjectionType": index["projection"]}
        if index["non_key_attributes"]:
            projection["NonKeyAttributes"] = index["non_key_attributes"]
        assert indexes[index["name"]]["Projection"] == projection
    if key == "jobs":  # a user's job list does not read every job's process graph
        user_jobs = indexes["user-jobs-listed"]["Projection"]
        assert user_jobs["ProjectionType"] == "INCLUDE" and "process" not in user_jobs["NonKeyAttributes"]
    expected_types = {}
    for k in [schema["partition_key"], schema["sort_key"]] + [
        a for i in schema["indexes"] for a in (i["partition_key"], i["sort_key"])
    ]:
        if k:
            expected_types[k["name"]] = k["type"]
    assert {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]} == expected_types
    # and it is on-demand, backed up continuously, encrypted and kept on stack deletion
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["DeletionProtectionEnabled"] is True
    assert resource["DeletionPolicy"] == "Retain"
    # and expires items by the model's TTL attribute, if it has one (the limits table)
    expected_ttl = {"AttributeName": TTL_ATTRIBUTES[key], "Enabled": True} if key in TTL_ATTRIBUTES else None
    assert props.get("TimeToLiveSpecification") == expected_ttl


# --- S3 ---------------------------------------------------------------------------------------------------------


def test_buckets_are_private_encrypted_and_ssl_only(synth: Synth) -> None:
    buckets = of_type(synth, "AWS::S3::Bucket")
    for lid, resource in buckets.items():
        props = resource["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True
        }, lid
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"], lid
    ssl_denied = set()
    for resource in of_type(synth, "AWS::S3::BucketPolicy").values():
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement.get("Condition") == INSECURE_TRANSPORT:
                ssl_denied.add(resource["Properties"]["Bucket"]["Ref"])
    assert ssl_denied == set(buckets)


def test_data_bucket_is_versioned_and_results_expire(synth: Synth) -> None:
    data = synth.resources[logical_id(synth, synth.stack.storage.data)]["Properties"]
    results = synth.resources[logical_id(synth, synth.stack.storage.results)]["Properties"]
    assert data["VersioningConfiguration"] == {"Status": "Enabled"}
    rules = {r["Id"]: r for r in results["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-job-runs"]["Prefix"] == "jobs/"
    assert rules["expire-job-runs"]["ExpirationInDays"] == 30
    assert rules["expire-sync-requests"]["Prefix"] == SYNC_ROOT == "sync/"
    assert rules["expire-sync-requests"]["ExpirationInDays"] == 1
    cors = results["CorsConfiguration"]["CorsRules"][0]
    assert "GET" in cors["AllowedMethods"]
    assert data["LoggingConfiguration"]["DestinationBucketName"]


# --- SQS --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(QUEUES))
def test_queue_has_dlq_and_encryption(synth: Synth, key: str) -> None:
    # Given a queue spec / When reading its queue and DLQ / Then the redrive policy and encryption follow the spec
    spec = QUEUES[key]
    queue = synth.resources[logical_id(synth, synth.stack.queues[key])]["Properties"]
    dlq_id = logical_id(synth, synth.stack.queues.dead_letter_queues[key])
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": spec.max_receive_count,
    }
    assert queue["VisibilityTimeout"] == spec.visibility_timeout_s
    assert queue["SqsManagedSseEnabled"] is True
    assert synth.resources[dlq_id]["Properties"]["SqsManagedSseEnabled"] is True


def test_queues_enforce_ssl(synth: Synth) -> None:
    denied = set()
    for resource in of_type(synth, "AWS::SQS::QueuePolicy").values():
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement.get("Condition") == INSECURE_TRANSPORT:
                denied.update(q["Ref"] for q in resource["Properties"]["Queues"])
    assert denied == set(of_type(synth, "AWS::SQS::Queue"))


@pytest.mark.parametrize("key", sorted(QUEUES))
def test_consumer_event_source_reports_batch_item_failures(synth: Synth, key: str) -> None:
    spec = QUEUES[key]
    queue_id = logical_id(synth, synth.stack.queues[key])
    function_id = logical_id(synth, synth.stack.consumers.functions[spec.consumer])
    mappings = [r["Properties"] for r in of_type(synth, "AWS::Lambda::EventSourceMapping").values()
                if r["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}]
    assert len(mappings) == 1
    mapping = mappings[0]
    assert mapping["FunctionName"] == {"Ref": function_id}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == spec.batch_size
    assert mapping["MaximumBatchingWindowInSeconds"] == spec.max_batching_window_s


# --- Step Functions ---------------------------------------------------------------------------------------------


def test_state_machine_definition_is_the_asl_file_fully_substituted(synth: Synth) -> None:
    # Given the state machine resource
    (props,) = [r["Properties"] for r in of_type(synth, "AWS::StepFunctions::StateMachine").values()]
    # When reading its definition (the ASL file with the fan-out policy written in, `state_machine_definition`)
    definition = props["DefinitionString"]
    states = json.loads(definition)["States"]
    # Then it has the job's states, with the Batch task waiting for the job
    assert {"PrepareJob", "MarkQueued", "PlanRun", "RunProcessing", "Tiles", "Combine", "MarkFinished", "MarkError",
            "Failed"} <= set(states)
    assert states["RunProcessing"]["Resource"] == "arn:aws:states:::batch:submitJob.sync"
    assert states["Tiles"]["MaxConcurrency"] == FANOUT_POLICY.max_concurrency
    assert states["Tiles"]["ToleratedFailurePercentage"] == FANOUT_POLICY.tolerated_failure_percentage
    # and every ${...} placeholder is filled by exactly the shared substitutions
    placeholders = set(re.findall(r"\$\{([^}]*)\}", definition))
    assert placeholders == set(props["DefinitionSubstitutions"]) == set(STATE_MACHINE_SUBSTITUTIONS)
    assert all(not str(v).startswith("${") for v in props["DefinitionSubstitutions"].values())
    assert props["StateMachineType"] == "STANDARD"
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ERROR"


def test_state_machine_may_run_its_tasks(synth: Synth) -> None:
    role_id = logical_id(synth, synth.stack.workflow.state_machine.role)
    actions = policy_actions_of(synth, role_id)
    assert {
        "lambda:InvokeFunction",
        "sqs:SendMessage",
        "batch:SubmitJob",
        "batch:DescribeJobs",
        "batch:TerminateJob",
        "events:PutTargets",
        "events:PutRule",
        "events:DescribeRule",
    } <= actions


# --- Batch ------------------------------------------------------------------------------------------------------


def test_batch_runs_the_processing_image_on_fargate(synth: Synth) -> None:
    (environment,) = [r["Properties"] for r in of_type(synth, "AWS::Batch::ComputeEnvironment").values()]
    assert environment["ComputeResources"]["Type"] == "FARGATE"
    (job,) = [r["Properties"] for r in of_type(synth, "AWS::Batch::JobDefinition").values()]
    assert job["PlatformCapabilities"] == ["FARGATE"]
    container = job["ContainerProperties"]
    # the image is an asset: built and pushed at deploy time, never at synth time
    image_hash = re.search(r":([0-9a-f]{64})$", container["Image"]["Fn::Sub"]).group(1)
    staged = synth.outdir / f"asset.{image_hash}"
    assert (staged / "containers" / "processing" / "Dockerfile").is_file()
    for unwanted in (".venv", "node_modules", "tests", "local", "infra", ".git", "benchmarks", "cdk.out"):
        assert not (staged / unwanted).exists(), unwanted
    assert container["Command"] == PROCESSING_COMMAND
    assert {r["Type"]: r["Value"] for r in container["ResourceRequirements"]} == {
        "VCPU": f"{PROCESSING_VCPU:g}", "MEMORY": str(PROCESSING_MEMORY_MB)
    }
    assert container["NetworkConfiguration"] == {"AssignPublicIp": "ENABLED"}
    assert job["Timeout"] == {"AttemptDurationSeconds": PROCESSING_TIMEOUT_S}
    assert_retries_only_infrastructure_errors(job)
    names = {e["Name"] for e in container["Environment"]}
    assert {ENV["data_bucket"], ENV["results_bucket"], ENV["status_queue_url"], ENV["log_queue_url"]} <= names


def test_processing_network_has_s3_gateway_endpoint(synth: Synth) -> None:
    (endpoint,) = [r["Properties"] for r in of_type(synth, "AWS::EC2::VPCEndpoint").values()]
    assert endpoint["VpcEndpointType"] == "Gateway"
    assert ".s3" in json.dumps(endpoint["ServiceName"])


def test_job_role_is_least_privilege(synth: Synth) -> None:
    actions = policy_actions_of(synth, logical_id(synth, synth.stack.processing.job_role))
    # results are put through the run's session of the jobs' results role (docs/operations.md §5)
    results_actions = policy_actions_of(synth, logical_id(synth, synth.stack.processing.results_roles["job_results"]))
    assert "sqs:SendMessage" in actions and "sts:AssumeRole" in actions and "s3:PutObject" in results_actions
    assert not any(a.startswith(("dynamodb:", "states:", "sqs:Receive", "sqs:Delete")) for a in actions)


# --- API --------------------------------------------------------------------------------------------------------


def test_api_proxies_everything_to_the_lambda(synth: Synth) -> None:
    methods = [r["Properties"] for r in of_type(synth, "AWS::ApiGateway::Method").values()]
    # OPTIONS is not answered by API Gateway: the Lambda sets CORS headers, on errors too
    assert {m["HttpMethod"] for m in methods} == {"ANY"}
    assert all(m["Integration"]["Type"] == "AWS_PROXY" for m in methods)
    (stage,) = [r["Properties"] for r in of_type(synth, "AWS::ApiGateway::Stage").values()]
    assert stage["AccessLogSetting"]["DestinationArn"]
    assert stage["TracingEnabled"] is True
    (settings,) = stage["MethodSettings"]
    assert settings["ThrottlingRateLimit"] > 0 and settings["ThrottlingBurstLimit"] > 0


def test_outputs_are_exported_with_the_stack_name(synth: Synth) -> None:
    outputs = synth.template.to_json()["Outputs"]
    exports = {o["Export"]["Name"] for o in outputs.values() if "Export" in o}
    assert "Stratus-dev-ApiUrl" in exports
    assert all(name.startswith("Stratus-dev-") for name in exports)


def test_api_function_permissions(synth: Synth) -> None:
    actions = policy_actions_of(synth, logical_id(synth, synth.stack.api.function.role))
    assert {"states:StartExecution", "secretsmanager:GetSecretValue", "dynamodb:Query", "dynamodb:PutItem",
            "s3:GetObject*"} <= actions
    assert "lambda:InvokeFunction" in actions
    # job lifecycle: cancel stops the execution and terminates its Batch job; delete removes results
    assert {"states:StopExecution", "states:DescribeStateMachine", "batch:TerminateJob", "batch:ListJobs",
            "s3:DeleteObject*", "dynamodb:BatchWriteItem"} <= actions
    # the only writes to S3: frozen graphs of synchronous requests under sync/, the users' workspaces under users/
    role = logical_id(synth, synth.stack.api.function.role)
    for resource in of_type(synth, "AWS::IAM::Policy").values():
        if {"Ref": role} not in resource["Properties"]["Roles"]:
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            if "s3:PutObject" in as_list(statement["Action"]):
                targets = json.dumps(statement["Resource"])
                assert "/sync/*" in targets or "/users/*" in targets, targets


def test_order_service_permissions(synth: Synth) -> None:
    # Given the verified sender identity: the sender's domain, signed with DKIM
    (identity,) = of_type(synth, "AWS::SES::EmailIdentity").values()
    assert synth.stack.config.notification_sender.endswith("@" + identity["Properties"]["EmailIdentity"])
    assert identity["Properties"]["DkimAttributes"]["SigningEnabled"] is True
    # Then the status manager may mail from it (and only from it), read the customers' addresses and enqueue
    # webhooks, but not sign them
    status_role = logical_id(synth, synth.stack.consumers.functions["status"].role)
    status_actions = policy_actions_of(synth, status_role)
    assert {"ses:SendEmail", "dynamodb:GetItem", "sqs:SendMessage"} <= status_actions
    assert "secretsmanager:GetSecretValue" not in status_actions
    # (and queue finished runs' result items for the catalogue)
    assert sent_to(synth, status_role) == {logical_id(synth, synth.stack.queues[key]) for key in ("webhooks", "ingest")}
    # And the webhook function reads orders and the signing key and writes the order log through its queue: no
    # table writes, no e-mail, no other queue
    webhook_role = logical_id(synth, synth.stack.consumers.functions["webhooks"].role)
    webhook_actions = policy_actions_of(synth, webhook_role)
    assert {"dynamodb:GetItem", "secretsmanager:GetSecretValue", "sqs:SendMessage",
            "sqs:ChangeMessageVisibility"} <= webhook_actions
    assert not {a for a in webhook_actions if a.startswith(("dynamodb:Put", "dynamodb:Update", "dynamodb:Delete",
                                                             "dynamodb:BatchWrite", "ses:", "s3:"))}
    assert sent_to(synth, webhook_role) == {logical_id(synth, synth.stack.queues["logs"])}
    for _, statement in statements(synth):
        if "ses:SendEmail" in as_list(statement["Action"]):
            assert "identity/" in json.dumps(statement["Resource"]) and statement["Resource"] != "*"
    # And the API sends order events (invalid orders, log entries) and uses the service catalog
    api_actions = policy_actions_of(synth, logical_id(synth, synth.stack.api.function.role))
    assert {"sqs:SendMessage", "ses:SendEmail"} <= api_actions


def test_cognito_pool_serves_the_api_with_oidc(synth: Synth) -> None:
    # Given the synthesized user pool, its clients and the API function's environment
    (pool,) = of_type(synth, "AWS::Cognito::UserPool").values()
    assert pool["Properties"]["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    clients = [r["Properties"] for r in of_type(synth, "AWS::Cognito::UserPoolClient").values()]
    (machine,) = [c for c in clients if c.get("GenerateSecret")]
    (public,) = [c for c in clients if not c.get("GenerateSecret")]
    # Then machines get the client-credentials grant for the API scope only, and tools the code grant
    assert machine["AllowedOAuthFlows"] == ["client_credentials"]
    (scope,) = machine["AllowedOAuthScopes"]  # "<resource server>/openeo", joined from the server's Ref
    assert scope["Fn::Join"][1][1] == "/openeo"
    assert "code" in public["AllowedOAuthFlows"] and "openid" in public["AllowedOAuthScopes"]
    # And the public client has the code grant only (PKCE, no implicit grant), with the tools' redirect URLs
    assert public["AllowedOAuthFlows"] == ["code"]
    assert public["CallbackURLs"] == OIDC_REDIRECT_URLS
    (server,) = of_type(synth, "AWS::Cognito::UserPoolResourceServer").values()
    assert server["Properties"]["Identifier"] == "stratus"
    # And the API and the STAC API (which accepts the same tokens) know the issuer and both clients
    envs = [f["Properties"]["Environment"]["Variables"] for f in of_type(synth, "AWS::Lambda::Function").values()
            if ENV["oidc_issuer"] in f["Properties"].get("Environment", {}).get("Variables", {})]
    assert len(envs) == 2
    for env in envs:
        assert "cognito-idp" in json.dumps(env[ENV["oidc_issuer"]])
        assert len(env[ENV["oidc_client_ids"]]["Fn::Join"][1]) == 2


def test_token_secret_is_generated(synth: Synth) -> None:
    (secret,) = [r["Properties"] for r in of_type(synth, "AWS::SecretsManager::Secret").values()]
    assert secret["Name"] == f"{TOKEN_SECRET_NAME}/dev"
    assert secret["GenerateSecretString"]["PasswordLength"] >= 32


# --- IAM --------------------------------------------------------------------------------------------------------


def test_no_wildcard_permissions_beyond_what_aws_requires(synth: Synth) -> None:
    # Given every identity policy statement
    for lid, statement in statements(synth):
        actions = as_list(statement["Action"])
        resources = as_list(statement.get("Resource", []))
        assert "NotAction" not in statement and "NotResource" not in statement, lid
        # Then no statement allows every action, or every action of a service
        assert not any(a == "*" or a.endswith(":*") for a in actions), (lid, actions)
        # and "*" resources are limited to actions that have no resource-level permissions
        if "*" in resources:
            assert set(actions) <= WILDCARD_RESOURCE_ACTIONS, (lid, set(actions) - WILDCARD_RESOURCE_ACTIONS)


# --- collections --------------------------------------------------------------------------------------------------


def test_the_chosen_collections_configuration_is_written_to_the_data_bucket(synth: Synth) -> None:
    # Given the default `stratus:collections` context
    (resource,) = [r for r in synth.resources.values() if r["Type"] == "Custom::AWS"
                   and "putObject" in json.dumps(r["Properties"]["Create"])]
    create = json.loads(_joined(resource["Properties"]["Create"]))
    # Then an SDK call puts infra/collections/default.json at the configuration's key of the data bucket
    assert (create["service"], create["action"]) == ("S3", "putObject")
    assert create["parameters"]["Key"] == "config/collections.json"
    assert json.loads(create["parameters"]["Body"]) == json.loads(
        (REPO_ROOT / "infra" / "collections" / "default.json").read_text())
    assert logical_id(synth, synth.stack.storage.data) in json.dumps(resource["Properties"]["Create"])


def test_the_collections_refresh_runs_on_a_schedule_and_writes_only_the_cache(synth: Synth) -> None:
    refresh = synth.stack.collections.refresh
    function_id = logical_id(synth, refresh)
    # Given the refresh function, its rule runs it every COLLECTIONS_REFRESH_SCHEDULE_HOURS
    rules = [r["Properties"] for r in of_type(synth, "AWS::Events::Rule").values()
             if function_id in json.dumps(r["Properties"]["Targets"])]
    assert [rule["ScheduleExpression"] for rule in rules] == [f"rate({COLLECTIONS_REFRESH_SCHEDULE_HOURS} hours)"]
    # and each deployment that changes the configuration invokes it (asynchronously)
    invokes = [r for r in synth.resources.values() if r["Type"] == "Custom::AWS"
               and '"action":"invoke"' in json.dumps(r["Properties"]["Create"]).replace('\\"', '"')]
    assert len(invokes) == 1 and function_id in json.dumps(invokes[0]["Properties"]["Create"])
    # Then it may read the configuration, write only under the cache prefix, and nothing else of the buckets
    role = logical_id(synth, refresh.role)
    for resource in of_type(synth, "AWS::IAM::Policy").values():
        if {"Ref": role} not in resource["Properties"]["Roles"]:
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            targets = json.dumps(statement["Resource"])
            if any(a.startswith("s3:Put") for a in as_list(statement["Action"])):
                assert "/cache/collections/*" in targets, targets
            elif any(a.startswith("s3:") for a in as_list(statement["Action"])):
                assert "/config/*" in targets, targets
    assert ENV["data_bucket"] in of_type(synth, "AWS::Lambda::Function")[function_id]["Properties"][
        "Environment"]["Variables"]


def test_collections_context_chooses_the_file_and_rejects_unknown_names() -> None:
    import aws_cdk as cdk

    from stratus_infra.config import StratusConfig

    chosen = StratusConfig.from_context(cdk.App(context={"stratus:collections": "own-only"}).node)
    assert chosen.collections_file == REPO_ROOT / "infra" / "collections" / "own-only.json"
    for name in ("nope", "../collections/default", ""):
        with pytest.raises(ValueError):
            StratusConfig.from_context(cdk.App(context={"stratus:collections": name}).node)


def _joined(value: Any) -> str:
    """A template string value, with `Fn::Join` of literals and references flattened to text."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(p if isinstance(p, str) else json.dumps(p).replace('"', "'") for p in parts)
    return json.dumps(value)


def assert_retries_only_infrastructure_errors(job: dict) -> None:
    """A lost host, a Spot reclaim or an image pull failure is retried; everything else exits at once."""
    strategy = job["RetryStrategy"]
    assert strategy["Attempts"] >= 2
    assert strategy["EvaluateOnExit"] == [
        {"Action": "RETRY", "OnStatusReason": "Host EC2*"},
        {"Action": "RETRY", "OnStatusReason": "*Spot*"},
        {"Action": "RETRY", "OnReason": "CannotPullContainer*"},
        {"Action": "EXIT", "OnReason": "*"},
    ]


# --- Monitoring -------------------------------------------------------------------------------------------------


def alarms(synth: Synth) -> dict[str, dict]:
    return {lid: r["Properties"] for lid, r in of_type(synth, "AWS::CloudWatch::Alarm").items()}


def test_every_alarm_notifies_the_encrypted_alarm_topic(synth: Synth) -> None:
    # Given the alarm topic
    (topic_id, topic), = of_type(synth, "AWS::SNS::Topic").items()
    # Then it is encrypted with a rotated key CloudWatch may use, and takes no plain-HTTP publishing
    key = synth.resources[topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]]["Properties"]
    assert key["EnableKeyRotation"] is True
    cloudwatch_use = [s for s in key["KeyPolicy"]["Statement"]  # (with SES and AWS Budgets, which publish too)
                      if "cloudwatch.amazonaws.com" in as_list(s.get("Principal", {}).get("Service", []))]
    assert cloudwatch_use and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(cloudwatch_use[0]["Action"])
    (policy,) = [r["Properties"] for r in of_type(synth, "AWS::SNS::TopicPolicy").values()]
    assert any(st["Effect"] == "Deny" and st.get("Condition") == INSECURE_TRANSPORT
               for st in policy["PolicyDocument"]["Statement"])
    # And every alarm of the stack (the DLQ alarms too) notifies it when it fires and when it is over
    for lid, alarm in alarms(synth).items():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}], lid
        assert alarm["OKActions"] == [{"Ref": topic_id}], lid
    # And without an address configured nobody is subscribed yet
    assert not of_type(synth, "AWS::SNS::Subscription")


def test_alarms_cover_dlqs_api_functions_and_executions(synth: Synth) -> None:
    monitoring = synth.stack.monitoring
    names = set(monitoring.alarms)
    # Given one DLQ alarm per queue, errors and throttles per function, API 5xx rate and p99 latency, executions
    assert {f"{QUEUES[key].logical_name}Dlq" for key in QUEUES} <= names
    camel = {key: "".join(part.title() for part in key.split("_")) for key in FUNCTIONS}
    assert {f"{camel[key]}{kind}" for key in FUNCTIONS for kind in ("Errors", "Throttles")} <= names
    assert {"Api5xxRate", "ApiLatencyP99", "FailedExecutions"} <= names
    rendered = {name: synth.resources[logical_id(synth, alarm)]["Properties"]
                for name, alarm in monitoring.alarms.items()}
    # Then each function's alarms watch that function
    for key in FUNCTIONS:
        (dimension,) = rendered[f"{camel[key]}Errors"]["Dimensions"]
        assert dimension["Name"] == "FunctionName"
    assert rendered["ApiLatencyP99"]["ExtendedStatistic"] == "p99"
    api_rate = {m["Id"]: m for m in rendered["Api5xxRate"]["Metrics"]}
    assert api_rate["requests"]["MetricStat"]["Metric"]["MetricName"] == "Count"
    assert api_rate["errors"]["MetricStat"]["Metric"]["MetricName"] == "5XXError"
    executions = {m["Id"]: m for m in rendered["FailedExecutions"]["Metrics"]}
    assert executions["failed"]["MetricStat"]["Metric"]["MetricName"] == "ExecutionsFailed"
    assert executions["timedOut"]["MetricStat"]["Metric"]["MetricName"] == "ExecutionsTimedOut"


def test_dashboard_shows_api_queues_executions_and_functions(synth: Synth) -> None:
    (dashboard,) = [r["Properties"] for r in of_type(synth, "AWS::CloudWatch::Dashboard").values()]
    body = json.dumps(dashboard["DashboardBody"])
    assert dashboard["DashboardName"] == "Stratus-dev"
    for metric in ("Count", "4XXError", "5XXError", "Latency", "ApproximateNumberOfMessagesVisible",
                   "ApproximateAgeOfOldestMessage", "ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed",
                   "Duration", "Errors"):
        assert f'\\"{metric}\\"' in body, metric


# --- configuration variants -------------------------------------------------------------------------------------


VARIANT_USAGE_PLANS = {"standard": {"rateLimit": 10, "burstLimit": 20, "quotaPerDay": 5000}}


@pytest.fixture(scope="module")
def variant(synthesize, tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """One synth of a stage that turns on what the default leaves off (a second synth costs ~40 s)."""
    return synthesize(tmp_path_factory.mktemp("cdk-variant"), **{
        "stratus:stage": "test", "stratus:spot": "true", "stratus:retainData": "false",
        "stratus:alarmEmail": "ops@example.org", "stratus:notificationSender": "no-reply@example.org",
        "stratus:mailIdentity": "existing", "stratus:tracing": "false", "stratus:wafRateLimit": "1000",
        "stratus:reservedConcurrency": json.dumps({"api": 20, "sync_processing": 4}),
        "stratus:usagePlans": json.dumps(VARIANT_USAGE_PLANS), "stratus:orderApiKeyRequired": "true",
        "stratus:monthlyBudgetUsd": "50"})


def test_spot_and_ephemeral_stage(variant: Synth) -> None:
    # Given a stage with Fargate Spot, without data retention, with an operator's address for alarms
    # Then the address is subscribed to the alarm topic by e-mail
    (subscription,) = [r["Properties"] for r in of_type(variant, "AWS::SNS::Subscription").values()]
    assert subscription["Protocol"] == "email" and subscription["Endpoint"] == "ops@example.org"
    # Then the compute environment uses Spot, tables and buckets are deleted with the stack
    (environment,) = [r["Properties"] for r in of_type(variant, "AWS::Batch::ComputeEnvironment").values()]
    assert environment["ComputeResources"]["Type"] == "FARGATE_SPOT"
    (job,) = [r["Properties"] for r in of_type(variant, "AWS::Batch::JobDefinition").values()]
    assert_retries_only_infrastructure_errors(job)
    assert variant.stack.stack_name == "Stratus-test"
    for resource in of_type(variant, "AWS::DynamoDB::Table").values():
        assert resource["DeletionPolicy"] == "Delete"
        assert resource["Properties"]["DeletionProtectionEnabled"] is False
    for resource in of_type(variant, "AWS::S3::Bucket").values():
        assert resource["DeletionPolicy"] == "Delete"
    # And the token secret goes with the data; in the default stage it stays with it
    (secret,) = of_type(variant, "AWS::SecretsManager::Secret").values()
    assert secret["DeletionPolicy"] == "Delete"


def test_token_secret_is_kept_with_retained_data(synth: Synth) -> None:
    (secret,) = of_type(synth, "AWS::SecretsManager::Secret").values()
    assert secret["DeletionPolicy"] == "Retain"


def test_limits_from_configuration(variant: Synth, synth: Synth) -> None:
    functions = {logical_id(variant, f): f for f in (variant.stack.api.function,
                                                      variant.stack.processing.sync_function)}
    # Then the configured functions have their reserved concurrency, the default stage none
    reserved = {lid: r["Properties"].get("ReservedConcurrentExecutions")
                for lid, r in of_type(variant, "AWS::Lambda::Function").items() if lid in functions}
    assert sorted(reserved.values()) == [4, 20]
    assert not [r for r in of_type(synth, "AWS::Lambda::Function").values()
                if "ReservedConcurrentExecutions" in r["Properties"]]
    # And each usage plan throttles its clients' keys on the API's stage
    (plan,) = [r["Properties"] for r in of_type(variant, "AWS::ApiGateway::UsagePlan").values()]
    assert plan["Throttle"] == {"RateLimit": 10, "BurstLimit": 20}
    assert plan["Quota"] == {"Limit": 5000, "Period": "DAY"}
    assert plan["ApiStages"][0]["Stage"] == {"Ref": logical_id(variant, variant.stack.api.rest_api.deployment_stage)}
    # And the order API requires an API key there (its CORS preflight does not), the openEO API does not
    methods = [m["Properties"] for m in of_type(variant, "AWS::ApiGateway::Method").values()]
    keyed = [m for m in methods if m.get("ApiKeyRequired")]
    assert len(keyed) == 2 * 6 and "OPTIONS" not in {m["HttpMethod"] for m in keyed}
    assert [m for m in methods if m["HttpMethod"] == "OPTIONS" and not m.get("ApiKeyRequired")]
    assert not [m for m in of_type(synth, "AWS::ApiGateway::Method").values() if m["Properties"].get("ApiKeyRequired")]
    # And a WAF web ACL on the stage blocks an IP above the rate; the default stage has no WAF (it costs monthly)
    (acl,) = [r["Properties"] for r in of_type(variant, "AWS::WAFv2::WebACL").values()]
    (rule,) = acl["Rules"]
    assert rule["Statement"]["RateBasedStatement"] == {"Limit": 1000, "AggregateKeyType": "IP",
                                                       "EvaluationWindowSec": 300}
    assert rule["Action"] == {"Block": {}}
    (association,) = [r["Properties"] for r in of_type(variant, "AWS::WAFv2::WebACLAssociation").values()]
    assert association["WebACLArn"] == {"Fn::GetAtt": [next(iter(of_type(variant, "AWS::WAFv2::WebACL"))), "Arn"]}
    assert not of_type(synth, "AWS::WAFv2::WebACL") and not of_type(synth, "AWS::ApiGateway::UsagePlan")


def test_tracing_off_leaves_the_xray_sdk_out(variant: Synth, synth: Synth) -> None:
    # Given tracing off: no function traces and each is told so (it then skips the X-Ray SDK); on by default
    for lid, function in of_type(variant, "AWS::Lambda::Function").items():
        props = function["Properties"]
        assert props.get("TracingConfig", {}).get("Mode") != "Active", lid
        if not lid.startswith(("Custom", "AWS", "BucketNotificationsHandler")):  # CDK's own handlers
            assert props["Environment"]["Variables"]["POWERTOOLS_TRACE_DISABLED"] == "true", lid
    (stage,) = of_type(variant, "AWS::ApiGateway::Stage").values()
    assert stage["Properties"]["TracingEnabled"] is False
    (machine,) = of_type(variant, "AWS::StepFunctions::StateMachine").values()
    assert machine["Properties"]["TracingConfiguration"]["Enabled"] is False
    api = synth.resources[logical_id(synth, synth.stack.api.function)]["Properties"]
    assert api["TracingConfig"]["Mode"] == "Active"
    assert "POWERTOOLS_TRACE_DISABLED" not in api["Environment"]["Variables"]


def test_mail_through_the_domain_identity_and_a_configuration_set(variant: Synth, synth: Synth) -> None:
    # Given the default stage, which creates the sender's domain identity, and a stage that names it
    assert not of_type(variant, "AWS::SES::EmailIdentity")
    (configuration_set,) = of_type(synth, "AWS::SES::ConfigurationSet").values()
    # Then bouncing and complaining addresses are suppressed, and bounces/complaints reach the alarm topic
    assert configuration_set["Properties"]["SuppressionOptions"] == {"SuppressedReasons": ["BOUNCE", "COMPLAINT"]}
    (destination,) = of_type(synth, "AWS::SES::ConfigurationSetEventDestination").values()
    events = destination["Properties"]["EventDestination"]
    assert {"bounce", "complaint"} <= set(events["MatchingEventTypes"])
    assert events["SnsDestination"]["TopicARN"] == {"Ref": logical_id(synth, synth.stack.monitoring.topic)}
    # And every function mails with the configuration set; Cognito mails through SES from the sender too
    api = synth.resources[logical_id(synth, synth.stack.api.function)]["Properties"]["Environment"]["Variables"]
    assert api["STRATUS_MAIL_CONFIGURATION_SET"] == {"Ref": logical_id(synth, synth.stack.mail.configuration_set)}
    (pool,) = of_type(synth, "AWS::Cognito::UserPool").values()
    email = pool["Properties"]["EmailConfiguration"]
    assert email["EmailSendingAccount"] == "DEVELOPER"
    assert email["From"] == synth.stack.config.notification_sender
    # And the DKIM records to publish are outputs
    outputs = synth.template.to_json()["Outputs"]
    assert {f"MailDkimRecord{n}" for n in (1, 2, 3)} <= set(outputs)
    assert "MailDkimRecord1" not in variant.template.to_json()["Outputs"]


def test_alarms_on_queue_age_latency_lost_runs_and_cost(variant: Synth, synth: Synth) -> None:
    names = set(synth.stack.monitoring.alarms)
    assert {f"{QUEUES[key].logical_name}Age" for key in QUEUES} <= names
    assert {"ApiLatencyP95", "LostRunsEnded", "MailBounceRate", "MailComplaintRate"} <= names
    lost = synth.resources[logical_id(synth, synth.stack.monitoring.alarms["LostRunsEnded"])]["Properties"]
    # the reaper's EMF metric, in the stage's namespace (stratus.metrics)
    assert (lost["Namespace"], lost["MetricName"]) == ("Stratus/dev", "LostRunsEnded")
    # And a budget notifies the alarm topic when configured (none by default)
    assert not of_type(synth, "AWS::Budgets::Budget")
    (budget,) = [r["Properties"] for r in of_type(variant, "AWS::Budgets::Budget").values()]
    assert budget["Budget"]["BudgetLimit"] == {"Amount": 50, "Unit": "USD"}
    topic = {"Ref": logical_id(variant, variant.stack.monitoring.topic)}
    assert {n["Subscribers"][0]["Address"] == topic for n in budget["NotificationsWithSubscribers"]} == {True}


def test_no_cdk_nag_finding_is_left_unreasoned(synth: Synth, variant: Synth) -> None:
    from aws_cdk.assertions import Annotations, Match

    from stratus_infra import nag

    # Given both synths ran the AwsSolutions and Serverless packs (a finding not accepted fails the synth)
    for built in (synth, variant):
        annotations = Annotations.from_stack(built.stack)
        rules = Match.string_like_regexp(r"^(AwsSolutions|Serverless)-")
        assert annotations.find_error("*", rules) == [] and annotations.find_warning("*", rules) == []
    # Then every accepted finding says why
    assert all(len(reason) > 30 for _, reason, _ in nag._ACCEPTED)
    assert all(len(reason) > 30 for _, reason in nag._WILDCARDS)




def test_config_rejects_invalid_context() -> None:
    import aws_cdk as cdk

    from stratus_infra.config import StratusConfig

    assert StratusConfig.from_context(cdk.App(context={"stratus:spot": "yes"}).node).spot is True
    assert StratusConfig.from_context(cdk.App(context={"stratus:allowedPrivateHosts": "10.1.0.0/16,hooks.internal"})
                                      .node).allowed_private_hosts == "10.1.0.0/16,hooks.internal"
    for key, value in (("stage", "Prod!"), ("spot", "maybe"), ("logLevel", "loud"), ("resultsExpiryDays", "0"),
                       ("alarmEmail", "nobody")):
        with pytest.raises(ValueError):
            StratusConfig.from_context(cdk.App(context={f"stratus:{key}": value}).node)


# --- the real CLI -----------------------------------------------------------------------------------------------


def test_cli_synth_without_docker(tmp_path: Path) -> None:
    # Given the pinned CDK CLI
    if not (REPO_ROOT / "node_modules" / ".bin" / "cdk").exists() or shutil.which("npx") is None:
        pytest.skip("node_modules/.bin/cdk is missing: run `npm ci` in the repository root to install the CDK CLI")
    if not (REPO_ROOT / ".venv" / "bin" / "python").exists():
        pytest.skip("cdk.json runs .venv/bin/python: create the virtualenv with `make install`")
    out = tmp_path / "cdk.out"
    # When synthesizing from the repository root, as a developer would
    result = subprocess.run(
        ["npx", "--no-install", "cdk", "synth", "--quiet", "--no-notices", "-o", str(out)],
        cwd=REPO_ROOT,
        env={**os.environ, "CDK_DISABLE_CLI_TELEMETRY": "1"},
        capture_output=True,
        text=True,
        timeout=SYNTH_TIMEOUT_S,
    )
    # Then it succeeds and writes the template
    assert result.returncode == 0, result.stderr[-4000:]
    assert (out / "Stratus-dev.template.json").is_file()
    # and the Lambda assets hold no dev-only code
    manifest = json.loads((out / "Stratus-dev.assets.json").read_text())
    directories = [out / a["source"]["path"] for a in manifest["files"].values()
                   if a["source"].get("packaging") == "zip"]
    directories += [out / a["source"]["directory"] for a in manifest.get("dockerImages", {}).values()]
    assert directories
    (layer,) = [out / a["source"]["path"] for a in manifest["files"].values()
                if a.get("displayName", "").startswith("RuntimeLayer")]
    assert (layer / "python" / "stratus" / "__init__.py").is_file()
    assert not (layer / "python" / "bin").exists()
    for directory in directories:
        for path in directory.rglob("*"):
            parts = path.relative_to(directory).parts
            assert "stratus_local" not in parts and "tests" not in parts, path
            assert not any(p in (".venv", "node_modules", ".git") for p in parts), path


# --- saved configuration ------------------------------------------------------------------------------------------


def test_the_stage_file_is_the_saved_configuration_and_a_flag_overrides_it_with_a_warning(tmp_path: Path) -> None:
    import aws_cdk as cdk

    from stratus_infra.config import StratusConfig

    # Given a stage file
    (tmp_path / "blue.json").write_text(json.dumps({
        "notificationSender": "no-reply@blue.example.org", "spot": True, "reservedConcurrency": {"api": 5},
        "usagePlans": {"standard": {"rateLimit": 5, "burstLimit": 10}}}))
    # When the stage is synthesized without flags, its file decides
    config = StratusConfig.from_context(cdk.App(context={"stratus:stage": "blue"}).node, config_dir=tmp_path)
    assert (config.spot, config.reserved_concurrency, config.mail_domain) == (True, {"api": 5}, "blue.example.org")
    # And a -c flag overrides it for that synth only, with a warning that it is not saved
    app = cdk.App(context={"stratus:stage": "blue", "stratus:spot": "false"})
    assert StratusConfig.from_context(app.node, config_dir=tmp_path).spot is False
    (warning,) = [entry.data for entry in app.node.metadata if entry.type == "aws:cdk:warning"]
    assert "stratus:spot" in warning and "blue.json" in warning


def test_the_stage_files_of_the_repository_are_valid() -> None:
    import aws_cdk as cdk

    from stratus_infra.config import CONFIG_DIR, StratusConfig

    stages = sorted(path.stem for path in CONFIG_DIR.glob("*.json"))
    assert {"dev", "prod"} <= set(stages)
    for stage in stages:
        config = StratusConfig.from_context(cdk.App(context={"stratus:stage": stage}).node)
        assert config.source == f"infra/config/{stage}.json" and "@" in config.notification_sender


def test_a_missing_sender_and_bad_values_fail_with_a_clear_message(tmp_path: Path) -> None:
    import aws_cdk as cdk

    from stratus_infra.config import StratusConfig

    def load(**saved):
        (tmp_path / "green.json").write_text(json.dumps(saved))
        return StratusConfig.from_context(cdk.App(context={"stratus:stage": "green"}).node, config_dir=tmp_path)

    with pytest.raises(ValueError, match=r"notificationSender is required.*infra/config/green\.json"):
        load(spot=True)
    sender = {"notificationSender": "no-reply@green.example.org"}
    for bad in ({"unknownKey": 1}, {"reservedConcurrency": {"nope": 3}}, {"reservedConcurrency": {"api": 0}},
                {"wafRateLimit": 5}, {"usagePlans": {"p": {"rateLimit": 1}}}, {"orderApiKeyRequired": True},
                {"mailIdentity": "borrowed"}, {"notificationSender": "not-an-address"}):
        with pytest.raises(ValueError):
            load(**{**sender, **bad})


def test_the_layer_holds_arm64_wheels_and_what_rs256_needs(synth: Synth) -> None:
    # Given the runtime layer as bundled for the functions (python3.14 on arm64)
    (layer,) = [path.parent.parent for path in synth.outdir.glob("asset.*/python/stratus/__init__.py")]
    # Then PyJWT can verify Cognito's RS256 tokens (it needs cryptography) and compiled modules are for arm64
    assert (layer / "cryptography").is_dir() and (layer / "jwt").is_dir()
    compiled = [path.name for path in layer.rglob("*.so")]
    assert compiled and not [name for name in compiled if "x86_64" in name]
    assert [name for name in compiled if "aarch64" in name]
