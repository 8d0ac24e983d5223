"""The one place Stratus grants IAM permissions: `grant` gives a principal exactly what its
`stratus.resources.Access` declares, and `environment` tells a function where those things are."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_batch as batch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn

from stratus.resources import BATCH_JOB_STAGE_TAG, DELETE, READ, SECRETS, WRITE, Access
from stratus_infra import constants

# Step Functions actions by the resource they apply to.
STATE_MACHINE_ACTIONS = frozenset({"states:StartExecution", "states:StartSyncExecution",
                                   "states:DescribeStateMachine", "states:ListExecutions"})
EXECUTION_ACTIONS = frozenset({"states:StopExecution", "states:DescribeExecution", "states:GetExecutionHistory"})
# On the Distributed Map's map runs (`mapRun:{machine}/{label}:{id}`) and child executions
# (`execution:{machine}/{label}:{id}`).
MAP_RUN_ACTIONS = frozenset({"states:DescribeMapRun"})
MAP_CHILD_ACTIONS = frozenset({"states:DescribeExecution", "states:StopExecution"})
# Batch actions AWS offers no resource-level permissions for.
BATCH_UNSCOPED_ACTIONS = frozenset({"batch:ListJobs", "batch:DescribeJobs"})


@dataclass(frozen=True)
class Targets:
    """What an `Access` may name, by the keys `stratus.resources` uses. The stack adds to it as it creates
    things (`with_`); an access naming something that does not exist (yet) fails the synth.

    :param tables: Table key (`stratus.store.models.TABLES`) -> table.
    :param buckets: Bucket key (`stratus.resources.BUCKETS`) -> bucket.
    :param queues: Queue key (`stratus.resources.QUEUES`) -> queue.
    :param secrets: Secret key (`stratus.resources.SECRETS`) -> secret. @default {}
    :param functions: Function key (`stratus.resources.FUNCTIONS`) -> function. @default {}
    :param state_machine: The job state machine. @default None
    :param job_queue: The Batch job queue jobs are submitted to. @default None
    :param job_definition: The Batch job definition of the processing container. @default None
    :param email_identity_arn: The SES identity e-mails are sent from. @default None
    :param email_configuration_set_arn: The SES configuration set e-mails are sent with (SES authorizes
        `SendEmail` on it too). @default None
    :param dead_letter_queues: Queue key -> its DLQ (`Access.sends_to_dlq_of`). @default {}
    :param stage: The deployment's stage: the value of every Batch job's `resources.BATCH_JOB_STAGE_TAG`, on which
        `batch:TerminateJob` and `batch:TagResource` are conditioned. @default None
    :param roles: Results role key (`stratus.resources.RESULTS_ROLES`) -> role (`Access.assumes`). @default {}
    """

    tables: Mapping[str, dynamodb.ITable]
    buckets: Mapping[str, s3.IBucket]
    queues: Mapping[str, sqs.IQueue]
    secrets: Mapping[str, secretsmanager.ISecret] = field(default_factory=dict)
    functions: Mapping[str, lambda_.IFunction] = field(default_factory=dict)
    state_machine: sfn.IStateMachine | None = None
    job_queue: batch.IJobQueue | None = None
    job_definition: batch.IJobDefinition | None = None
    email_identity_arn: str | None = None
    email_configuration_set_arn: str | None = None
    dead_letter_queues: Mapping[str, sqs.IQueue] = field(default_factory=dict)
    stage: str | None = None
    roles: Mapping[str, iam.IRole] = field(default_factory=dict)

    def with_(self, *, secrets: Mapping[str, secretsmanager.ISecret] | None = None,
              functions: Mapping[str, lambda_.IFunction] | None = None, **others: object) -> Targets:
        """A copy with more secrets/functions and the other fields given set."""
        return dataclasses.replace(self, secrets={**self.secrets, **(secrets or {})},
                                   functions={**self.functions, **(functions or {})}, **others)


def _named(kind: str, key: str, found: Mapping[str, object]):
    try:
        return found[key]
    except KeyError:
        raise KeyError(f"access names {kind} {key!r}, which the stack has not created (yet): "
                       f"known {sorted(found)}") from None


def required(kind: str, value):
    """`value`, which a grant or substitution needs; None fails the synth with what is missing."""
    if value is None:
        raise ValueError(f"access needs {kind}, which the stack has not created (yet)")
    return value


def grant(principal: iam.IGrantable, access: Access, targets: Targets) -> None:
    """Grant `principal` exactly `access`: tables and object prefixes by mode, secrets (read), queues (send),
    functions (invoke), the state machine and its executions, Batch jobs and the SES identity. `principal` is a
    construct of the stack (a function, role or state machine)."""
    for entry in access.tables:
        table = _named("table", entry.table, targets.tables)
        if entry.modes == {READ, WRITE}:
            table.grant_read_write_data(principal)
        elif entry.modes == {READ}:
            table.grant_read_data(principal)
        elif entry.modes == {WRITE}:
            table.grant_write_data(principal)
        else:
            raise ValueError(f"table {entry.table}: modes {sorted(entry.modes)} are not read and/or write")
    for entry in access.objects:
        bucket = _named("bucket", entry.bucket, targets.buckets)
        unknown = entry.modes - {READ, WRITE, DELETE}
        if unknown or not entry.modes:
            raise ValueError(f"bucket {entry.bucket}: modes {sorted(entry.modes)} are not read/write/delete")
        keys = f"{entry.prefix}*"
        if READ in entry.modes:
            bucket.grant_read(principal, keys)
        if WRITE in entry.modes:
            bucket.grant_put(principal, keys)  # put only: deleting is its own mode
        if DELETE in entry.modes:
            bucket.grant_delete(principal, keys)
    for key in access.secrets:
        _named("secret", key, targets.secrets).grant_read(principal)
    for key in access.sends_to:
        _named("queue", key, targets.queues).grant_send_messages(principal)
    for key in access.invokes:
        _named("function", key, targets.functions).grant_invoke(principal)
    for key in access.sends_to_dlq_of:
        _named("dead-letter queue", key, targets.dead_letter_queues).grant_send_messages(principal)
    for key in access.assumes:  # the role's trust names the principal too (`Processing`)
        iam.Grant.add_to_principal(grantee=principal, actions=["sts:AssumeRole"],
                                   resource_arns=[_named("role", key, targets.roles).role_arn])
    _grant_state_machine(principal, access.state_machine, targets)
    for statement in map_run_statements(access.map_runs, targets):
        principal.grant_principal.add_to_principal_policy(statement)
    _grant_batch(principal, access.batch, targets)
    if access.sends_email:
        configuration_sets = [targets.email_configuration_set_arn] if targets.email_configuration_set_arn else []
        iam.Grant.add_to_principal(grantee=principal, actions=["ses:SendEmail"],
                                   resource_arns=[required("an SES identity", targets.email_identity_arn),
                                                  *configuration_sets])


def _grant_state_machine(principal: iam.IGrantable, actions: tuple[str, ...], targets: Targets) -> None:
    if not actions:
        return
    unknown = set(actions) - STATE_MACHINE_ACTIONS - EXECUTION_ACTIONS
    if unknown:
        raise ValueError(f"unknown Step Functions actions {sorted(unknown)}")
    state_machine = required("the state machine", targets.state_machine)
    on_machine = [a for a in actions if a in STATE_MACHINE_ACTIONS]
    on_executions = [a for a in actions if a in EXECUTION_ACTIONS]
    if on_machine:
        state_machine.grant(principal, *on_machine)
    if on_executions:
        state_machine.grant_execution(principal, *on_executions)


def map_run_statements(actions: tuple[str, ...], targets: Targets) -> list[iam.PolicyStatement]:
    """What `Access.map_runs` declares, as policy statements on the job state machine's map runs and child
    executions (the ARNs are built from the machine's name, as CDK builds its executions')."""
    if not actions:
        return []
    unknown = set(actions) - MAP_RUN_ACTIONS - MAP_CHILD_ACTIONS
    if unknown:
        raise ValueError(f"unknown Distributed Map actions {sorted(unknown)}")
    state_machine = required("the state machine", targets.state_machine)
    stack = Stack.of(state_machine)
    name = stack.split_arn(state_machine.state_machine_arn, ArnFormat.COLON_RESOURCE_NAME).resource_name
    statements = []
    for resource, allowed in (("mapRun", MAP_RUN_ACTIONS), ("execution", MAP_CHILD_ACTIONS)):
        chosen = sorted(a for a in actions if a in allowed)
        if chosen:
            arn = stack.format_arn(service="states", resource=resource, resource_name=f"{name}/*",
                                   arn_format=ArnFormat.COLON_RESOURCE_NAME)
            statements.append(iam.PolicyStatement(actions=chosen, resources=[arn]))
    return statements


def _grant_batch(principal: iam.IGrantable, actions: tuple[str, ...], targets: Targets) -> None:
    rest = set(actions)
    if "batch:SubmitJob" in rest:
        rest.discard("batch:SubmitJob")
        required("the Batch job definition", targets.job_definition).grant_submit_job(
            principal, required("the Batch job queue", targets.job_queue))
    jobs = Stack.of(principal).format_arn(service="batch", resource="job", resource_name="*")  # ids are random
    for action, condition in (("batch:TerminateJob", "aws:ResourceTag"), ("batch:TagResource", "aws:RequestTag")):
        if action in rest:  # the stage's own jobs only: tagged by the state machine at SubmitJob
            rest.discard(action)
            principal.grant_principal.add_to_principal_policy(iam.PolicyStatement(
                actions=[action], resources=[jobs], conditions={"StringEquals": {
                    f"{condition}/{BATCH_JOB_STAGE_TAG}": required("the stage's name", targets.stage)}}))
    unscoped = sorted(rest & BATCH_UNSCOPED_ACTIONS)
    if unscoped:
        rest -= BATCH_UNSCOPED_ACTIONS
        iam.Grant.add_to_principal(grantee=principal, actions=unscoped, resource_arns=["*"])
    if rest:
        raise ValueError(f"no grant defined for Batch actions {sorted(rest)}")


def environment(access: Access, targets: Targets) -> dict[str, str]:
    """`Settings` field -> value for what `access` names that a function must find at run time: the ids of
    its secrets, the state machine's ARN, the names of the functions it invokes, the results role it assumes."""
    values = {SECRETS[key]: _named("secret", key, targets.secrets).secret_arn for key in access.secrets}
    if access.state_machine:
        values["state_machine_arn"] = required("the state machine", targets.state_machine).state_machine_arn
    for key in access.sends_to_dlq_of:
        values[constants.DLQ_URL_SETTINGS[key]] = _named("dead-letter queue", key,
                                                         targets.dead_letter_queues).queue_url
    if len(access.assumes) > 1:
        raise ValueError(f"one results role per principal (`results_role_arn`): {access.assumes}")
    for key in access.assumes:
        values["results_role_arn"] = _named("role", key, targets.roles).role_arn
    for key in access.invokes:
        if key in constants.FUNCTION_NAME_SETTINGS:
            values[constants.FUNCTION_NAME_SETTINGS[key]] = _named("function", key, targets.functions).function_name
    return values
