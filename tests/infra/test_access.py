"""Each principal's synthesized IAM policy is exactly what its `Access` in `stratus.resources` declares.

The expectations are derived here from the specs, with what each mode means in IAM actions spelled out below,
independently of `stratus_infra.access`: a grant the spec does not declare, or a declared one that is missing,
fails. Then spot checks of what matters most for security, stated without the specs.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from stratus import catalog_layout, resources
from stratus.resources import (
    BATCH_JOB_STAGE_TAG,
    DELETE,
    FUNCTIONS,
    PROCESSING_ACCESS,
    QUEUES,
    READ,
    RESULTS_ROLES,
    STATE_MACHINE_ACCESS,
    WRITE,
    Access,
)
from stratus.store.models import TABLES, key_schema

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]
Synth = Any  # conftest.Synth

# What a declared mode means in IAM actions (as the CDK grant methods define them).
TABLE_ACTIONS = {
    READ: {"dynamodb:BatchGetItem", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:Query",
           "dynamodb:GetItem", "dynamodb:Scan", "dynamodb:ConditionCheckItem", "dynamodb:DescribeTable"},
    WRITE: {"dynamodb:BatchWriteItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
            "dynamodb:DescribeTable"},
}
OBJECT_ACTIONS = {
    READ: {"s3:GetObject*", "s3:GetBucket*", "s3:List*"},  # also on the bucket itself: see below
    WRITE: {"s3:PutObject", "s3:PutObjectLegalHold", "s3:PutObjectRetention", "s3:PutObjectTagging",
            "s3:PutObjectVersionTagging", "s3:Abort*"},
    DELETE: {"s3:DeleteObject*"},
}
TABLE_WRITES = TABLE_ACTIONS[WRITE] - {"dynamodb:DescribeTable"}
SEND = {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}
CONSUME = {"sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueUrl", "sqs:DeleteMessage",
           "sqs:GetQueueAttributes"}
READ_SECRET = {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}
TRACING = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
ARN = "arn:{AWS::Partition}:{service}:{AWS::Region}:{AWS::AccountId}:"
EXECUTIONS = ARN.replace("{service}", "states") + "execution:{state-machine.name}:*"
# the Distributed Map's map runs and child executions (`{machine}/{map label}:{id}`)
MAP_RUNS = ARN.replace("{service}", "states") + "mapRun:{state-machine.name}/*"
MAP_CHILDREN = ARN.replace("{service}", "states") + "execution:{state-machine.name}/*"
BATCH_JOBS = ARN.replace("{service}", "batch") + "job/*"
STAGE = "dev"  # the synthesized stack's (StratusConfig's default)
SES_IDENTITY = ARN.replace("{service}", "ses") + "identity/ses-identity"
SES_CONFIGURATION_SET = ARN.replace("{service}", "ses") + "configuration-set/ses-configuration-set"
# What the state machine needs besides its Access: `.sync`'s managed rule, vended log delivery, X-Ray sampling.
BATCH_SYNC_RULE = ARN.replace("{service}", "events") + "rule/StepFunctionsGetEventsForBatchJobsRule"
STATE_MACHINE_EXTRAS = (
    {(a, BATCH_SYNC_RULE) for a in ("events:PutTargets", "events:PutRule", "events:DescribeRule")}
    | {(a, "*") for a in ("logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
                          "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
                          "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
                          "xray:GetSamplingRules", "xray:GetSamplingTargets")}
    | {(a, "*") for a in TRACING}
)

Grants = set[tuple[str, str]]  # (action, resource rendered with symbolic names)


# --- reading the template ---------------------------------------------------------------------------------------


def symbols(synth: Synth) -> dict[str, str]:
    """Logical id -> the symbolic name expectations use ("table:jobs", "bucket:results", "queue:status", ...)."""
    stack = synth.stack

    def lid(construct) -> str:
        cfn = getattr(construct.node, "default_child", None) or construct
        return stack.resolve(stack.get_logical_id(cfn))

    names = {lid(t): f"table:{k}" for k, t in stack.tables.tables.items()}
    names |= {lid(b): f"bucket:{k}" for k, b in stack.storage.buckets.items()}
    names |= {lid(q): f"queue:{k}" for k, q in stack.queues.queues.items()}
    names |= {lid(q): f"dlq:{k}" for k, q in stack.queues.dead_letter_queues.items()}
    names |= {lid(f): f"function:{k}" for k, f in functions(synth).items()}
    names[lid(stack.api.token_secret)] = "secret:token"
    names[lid(stack.workflow.state_machine)] = "state-machine"
    names[lid(stack.processing.job_queue)] = "batch-job-queue"
    names[lid(stack.processing.job_definition)] = "batch-job-definition"
    names[lid(stack.mail.configuration_set)] = "ses-configuration-set"
    names |= {lid(r): f"role:{k}" for k, r in stack.processing.results_roles.items()}
    return names


def functions(synth: Synth) -> dict[str, Any]:
    """FUNCTIONS key -> the function construct, found by its spec's description (so new specs are covered)."""
    found = {}
    for construct in synth.stack.node.find_all():
        for key, spec in FUNCTIONS.items():
            if getattr(construct, "function_arn", None) and _description(construct) == spec.description:
                found[key] = construct
    assert set(found) == set(FUNCTIONS)
    return found


def _description(function) -> str | None:
    cfn = function.node.default_child
    return getattr(cfn, "description", None)


def render(value: Any, names: dict[str, str]) -> str:
    if isinstance(value, str):
        return value
    (kind, argument), = value.items()
    if kind == "Ref":
        return names.get(argument, "{" + argument + "}")
    if kind == "Fn::GetAtt":
        return names.get(argument[0], "{" + ".".join(argument) + "}")
    if kind == "Fn::Join":
        return argument[0].join(render(part, names) for part in argument[1])
    if kind == "Fn::Select" and argument[0] == 6 and "Fn::Split" in argument[1]:  # a state machine's name
        return "{" + render(argument[1]["Fn::Split"][1], names) + ".name}"
    return json.dumps(value, sort_keys=True)  # matches no expectation


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def granted(synth: Synth, role_logical_id: str) -> Grants:
    """Every (action, resource) the role's identity policies allow; fails on Deny, conditions or NotAction."""
    names = symbols(synth)
    result: Grants = set()
    for resource in synth.resources.values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role_logical_id} in props["Roles"]:
            documents = [props["PolicyDocument"]]
        elif resource["Type"] == "AWS::IAM::Role" and resource is synth.resources[role_logical_id]:
            documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
        else:
            continue
        for document in documents:
            for statement in document["Statement"]:
                assert set(statement) - {"Condition"} == {"Action", "Effect", "Resource"}, statement
                assert statement["Effect"] == "Allow", statement
                condition = _condition(statement.get("Condition"))
                for action in as_list(statement["Action"]):
                    for target in as_list(statement["Resource"]):
                        result.add((action, _named_sender(render(target, names), synth) + condition))
    return result


def _condition(condition: dict | None) -> str:
    """` if key=value`: only single StringEquals conditions are expected (the Batch jobs' stage tag)."""
    if condition is None:
        return ""
    (operator, values), = condition.items()
    (key, value), = values.items()
    assert operator == "StringEquals" and isinstance(value, str), condition
    return f" if {key}={value}"


def _named_sender(resource: str, synth: Synth) -> str:
    """The SES identity's ARN names the sender's domain itself (it may exist outside the stack)."""
    return resource.replace(f":identity/{synth.stack.mail.domain}", ":identity/ses-identity")


def role_of(synth: Synth, construct) -> str:
    role = construct.role if hasattr(construct, "role") else construct
    return synth.stack.resolve(synth.stack.get_logical_id(role.node.default_child))


# --- what the specs declare -------------------------------------------------------------------------------------


def expected(access: Access) -> Grants:
    """The (action, resource) pairs `access` declares, by the meaning of each mode above."""
    result: Grants = set()
    for entry in access.tables:
        table = f"table:{entry.table}"
        targets = [table] + ([f"{table}/index/*"] if key_schema(TABLES[entry.table])["indexes"] else [])
        result |= {(a, t) for mode in entry.modes for a in TABLE_ACTIONS[mode] for t in targets}
    for entry in access.objects:
        bucket = f"bucket:{entry.bucket}"
        keys = f"{bucket}/{entry.prefix}*"
        for mode in entry.modes:
            # reading also lists and describes the bucket itself: without s3:ListBucket a missing key answers
            # 403 instead of 404, and the runtime reads "missing" as None
            targets = [bucket, keys] if mode == READ else [keys]
            result |= {(a, t) for a in OBJECT_ACTIONS[mode] for t in targets}
    result |= {(a, f"secret:{key}") for key in access.secrets for a in READ_SECRET}
    result |= {(a, f"queue:{key}") for key in access.sends_to for a in SEND}
    result |= {(a, f"dlq:{key}") for key in access.sends_to_dlq_of for a in SEND}
    result |= {("lambda:InvokeFunction", f"function:{key}{suffix}") for key in access.invokes for suffix in ("", ":*")}
    for action in access.state_machine:
        on_executions = action in ("states:StopExecution", "states:DescribeExecution", "states:GetExecutionHistory")
        result.add((action, EXECUTIONS if on_executions else "state-machine"))
    for action in access.map_runs:
        result.add((action, MAP_RUNS if action == "states:DescribeMapRun" else MAP_CHILDREN))
    for action in access.batch:
        if action == "batch:SubmitJob":
            result |= {(action, "batch-job-queue"), (action, "batch-job-definition")}
        elif action == "batch:TerminateJob":  # the stage's own jobs: tagged at SubmitJob
            result.add((action, f"{BATCH_JOBS} if aws:ResourceTag/{BATCH_JOB_STAGE_TAG}={STAGE}"))
        elif action == "batch:TagResource":  # at SubmitJob, with the stage's tag only
            result.add((action, f"{BATCH_JOBS} if aws:RequestTag/{BATCH_JOB_STAGE_TAG}={STAGE}"))
        else:
            result.add((action, "*"))
    if access.sends_email:
        result |= {("ses:SendEmail", SES_IDENTITY), ("ses:SendEmail", SES_CONFIGURATION_SET)}
    result |= {("sts:AssumeRole", f"role:{key}") for key in access.assumes}
    return result


def configured_sources(synth: Synth) -> Grants:
    """What the processing reads of the collections configuration's sources outside the stack: the buckets of
    their s3:// assets (`asset_buckets`; the shipped default: requester-pays Landsat)."""
    buckets = {bucket for source in synth.stack.collections.config.collections for bucket in source.asset_buckets}
    assert buckets, "the shipped default configuration names the Landsat bucket"
    return {("s3:GetObject", f"arn:{{AWS::Partition}}:s3:::{bucket}/*") for bucket in buckets}


def consumed(key: str) -> Grants:
    """A function drains the queues whose spec names it as consumer (the event source mapping's grant)."""
    return {(a, f"queue:{q}") for q, spec in QUEUES.items() if spec.consumer == key for a in CONSUME}


# --- the tests ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(FUNCTIONS))
def test_function_is_granted_exactly_its_access(synth: Synth, key: str) -> None:
    # Given a function spec / When reading its role's synthesized policies
    actual = granted(synth, role_of(synth, functions(synth)[key]))
    # Then they allow exactly what the spec declares, its queue and X-Ray tracing, nothing else
    want = expected(FUNCTIONS[key].access) | consumed(key) | {(a, "*") for a in TRACING}
    if key in ("sync_processing", "plan_run"):  # the engine reads the configured sources' documents and assets
        want |= configured_sources(synth)
    assert sorted(actual - want) == [] and sorted(want - actual) == []


def test_processing_job_is_granted_exactly_its_access(synth: Synth) -> None:
    actual = granted(synth, role_of(synth, synth.stack.processing.job_role))
    assert actual == expected(PROCESSING_ACCESS) | configured_sources(synth)


@pytest.mark.parametrize("key", sorted(RESULTS_ROLES))
def test_results_role_is_granted_exactly_its_access(synth: Synth, key: str) -> None:
    actual = granted(synth, role_of(synth, synth.stack.processing.results_roles[key]))
    assert actual == expected(RESULTS_ROLES[key])


def test_each_results_role_is_assumable_only_by_its_principal(synth: Synth) -> None:
    # Given the results roles' trust policies
    trusted = {}
    for key, role in synth.stack.processing.results_roles.items():
        (statement,) = synth.resources[role_of(synth, role)]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Effect"] == "Allow" and statement["Action"] == "sts:AssumeRole" and set(statement) == {
            "Action", "Effect", "Principal"}
        (kind, arn), = statement["Principal"].items()
        trusted[key] = (kind, arn["Fn::GetAtt"][0])
    # Then the job role alone may assume the jobs' role, the sync function's role alone the sync role
    assert trusted == {"job_results": ("AWS", role_of(synth, synth.stack.processing.job_role)),
                       "sync_results": ("AWS", role_of(synth, synth.stack.processing.sync_function))}
    # and every principal that may assume a role is one of those (its Access says so)
    assumers = set()
    for lid, resource in synth.resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Policy":
            documents, roles = [props["PolicyDocument"]], {role["Ref"] for role in props["Roles"]}
        elif resource["Type"] == "AWS::IAM::Role":
            documents, roles = [p["PolicyDocument"] for p in props.get("Policies", [])], {lid}
        else:
            continue
        if any(a.startswith("sts:") for d in documents for st in d["Statement"] for a in as_list(st["Action"])):
            assumers |= roles
    assert assumers == {lid for _, lid in trusted.values()}
    # and neither holds a results-bucket grant of its own: every object of the results bucket goes through a session
    for principal in (synth.stack.processing.job_role, synth.stack.processing.sync_function):
        assert not {r for _, r in granted(synth, role_of(synth, principal)) if r.startswith("bucket:results")}


def test_the_processing_container_learns_its_results_role(synth: Synth) -> None:
    # The Batch job and the sync function find their own role's ARN in `results_role_arn`
    from stratus.settings import ENV
    variable = ENV["results_role_arn"]
    (definition,) = [r for r in synth.resources.values() if r["Type"] == "AWS::Batch::JobDefinition"]
    environment = {e["Name"]: e["Value"] for e in definition["Properties"]["ContainerProperties"]["Environment"]}
    sync = synth.resources[synth.stack.get_logical_id(synth.stack.processing.sync_function.node.default_child)]
    roles = {key: role_of(synth, role) for key, role in synth.stack.processing.results_roles.items()}
    assert environment[variable] == {"Fn::GetAtt": [roles["job_results"], "Arn"]}
    assert sync["Properties"]["Environment"]["Variables"][variable] == {"Fn::GetAtt": [roles["sync_results"], "Arn"]}


def test_state_machine_is_granted_exactly_its_access(synth: Synth) -> None:
    actual = granted(synth, role_of(synth, synth.stack.workflow.state_machine))
    want = expected(STATE_MACHINE_ACCESS) | STATE_MACHINE_EXTRAS
    assert sorted(actual - want) == [] and sorted(want - actual) == []


def test_every_role_of_the_stack_is_checked(synth: Synth) -> None:
    # Given every IAM role the stack defines, except those CDK and API Gateway bring with them
    roles = {lid for lid, r in synth.resources.items() if r["Type"] == "AWS::IAM::Role"}
    checked = {role_of(synth, f) for f in functions(synth).values()}
    checked |= {role_of(synth, synth.stack.processing.job_role), role_of(synth, synth.stack.workflow.state_machine)}
    checked |= {role_of(synth, role) for role in synth.stack.processing.results_roles.values()}
    # and the role of CDK's SDK-call custom resources, which may only write the collections configuration and
    # start its refresh (`stratus_infra.collections`)
    sdk_calls = role_of(synth, synth.stack.collections.configuration.grant_principal)
    config_key = f"bucket:data/{catalog_layout.collections_config_key()}"
    assert {resource for _, resource in granted(synth, sdk_calls) if not resource.startswith("function:")} == \
        {config_key}
    # and the role of CDK's bucket-notification handler, which may only configure the data bucket's notifications
    # (its ingest prefix feeds the ingest queue: `stratus_infra.catalogue`)
    notifications = {lid for lid in roles if lid.startswith("BucketNotificationsHandler")}
    for lid in notifications:
        assert granted(synth, lid) == {("s3:PutBucketNotification", "bucket:data")}
    # Then every role that may touch Stratus data is one of the principals checked above
    for lid in roles - checked - {sdk_calls} - notifications:
        touched = {resource for _, resource in granted(synth, lid)}
        assert not any(r.startswith(("table:", "bucket:", "queue:", "secret:", "state-machine")) for r in touched), lid


# --- spot checks: the rules that matter most, stated without the specs ---------------------------------------------


def actions_of(synth: Synth, construct) -> set[str]:
    return {action for action, _ in granted(synth, role_of(synth, construct))}


def test_only_the_api_and_the_webhook_sender_read_the_signing_secret(synth: Synth) -> None:
    readers = {key for key, function in functions(synth).items()
               if any(r == "secret:token" for _, r in granted(synth, role_of(synth, function)))}
    assert readers == {"api", "webhooks", "stac"}  # the STAC API verifies the same bearer tokens
    assert not actions_of(synth, synth.stack.consumers.functions["status"]) & READ_SECRET
    assert not actions_of(synth, synth.stack.processing.job_role) & READ_SECRET


def test_webhook_sender_cannot_write_tables_mail_or_touch_objects(synth: Synth) -> None:
    actions = actions_of(synth, synth.stack.consumers.functions["webhooks"])
    assert not actions & TABLE_WRITES
    assert not {a for a in actions if a.startswith(("ses:", "s3:", "states:", "batch:"))}


def test_log_consumer_only_writes_logs(synth: Synth) -> None:
    grants = granted(synth, role_of(synth, synth.stack.consumers.functions["logging"]))
    assert {r for a, r in grants if a.startswith("dynamodb:")} == {"table:logs"}
    assert not {a for a, _ in grants if a in TABLE_ACTIONS[READ] - {"dynamodb:DescribeTable"}}


def test_object_writes_and_deletes_stay_in_their_prefixes(synth: Synth) -> None:
    # Given every grant to write or delete objects, of every role
    writes = {}
    for lid, resource in synth.resources.items():
        if resource["Type"] == "AWS::IAM::Role":
            for action, target in granted(synth, lid):
                if action in OBJECT_ACTIONS[WRITE] | OBJECT_ACTIONS[DELETE]:
                    writes.setdefault(target, set()).add(lid)
    # Then nothing writes the data bucket or a whole bucket: only job runs, synchronous requests, workspaces
    allowed = {f"bucket:results/{resources.JOBS_ROOT}*", f"bucket:results/{resources.SYNC_ROOT}*",
               f"bucket:files/{resources.USERS_ROOT}*",
               # the remote collections' metadata cache (the refresh) and the configuration (at deployment)
               f"bucket:data/{resources.COLLECTIONS_CACHE_ROOT}*",
               f"bucket:data/{resources.INDEX_ROOT}*",  # the catalogue index (the indexer)
               f"bucket:data/{catalog_layout.collections_config_key()}"}
    # and the portal's built files, written only by their deployment
    portal = synth.stack.get_logical_id(synth.stack.portal.bucket.node.default_child)
    portal_files = {f"{{{portal}.Arn}}", f"{{{portal}.Arn}}/*"}
    assert len({frozenset(writes.get(target, ())) for target in portal_files}) == 1
    assert all(len(writes[target]) == 1 and "BucketDeployment" in next(iter(writes[target])) for target in portal_files)
    allowed |= portal_files
    assert set(writes) <= allowed, json.dumps({k: sorted(v) for k, v in writes.items()})
    # and only the API touches the users' workspaces; the synchronous function cannot reach job results
    api = role_of(synth, synth.stack.api.function)
    assert writes[f"bucket:files/{resources.USERS_ROOT}*"] == {api}
    sync_reads = {r for a, r in granted(synth, role_of(synth, synth.stack.processing.sync_function))
                  if a.startswith("s3:")}
    assert f"bucket:results/{resources.JOBS_ROOT}*" not in sync_reads
    assert not any(r.startswith("bucket:files") for r in sync_reads)


def test_the_distributed_map_runs_only_its_own_machine_children(synth: Synth) -> None:
    # The state machine starts executions of itself alone, and describes and stops only its map's children
    grants = granted(synth, role_of(synth, synth.stack.workflow.state_machine))
    states = {(action, resource) for action, resource in grants if action.startswith("states:")}
    assert states == {("states:StartExecution", "state-machine"), ("states:DescribeMapRun", MAP_RUNS),
                      ("states:DescribeExecution", MAP_CHILDREN), ("states:StopExecution", MAP_CHILDREN)}
    # and reads the map's items from the jobs' folders only
    assert ("s3:GetObject*", f"bucket:results/{resources.JOBS_ROOT}*") in grants
    assert not {r for a, r in grants if a.startswith("s3:Put") or a.startswith("s3:Delete")}
