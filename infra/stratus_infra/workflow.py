"""The job state machine (`statemachines/batch_job.asl.json`) and its PrepareJob Lambda function."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_batch as batch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stratus.resources import FUNCTIONS, REAPER_SCHEDULE_MINUTES, STATE_MACHINE_FILE, STATE_MACHINE_SUBSTITUTIONS
from stratus_infra import constants
from stratus_infra.functions import FunctionRuntime, StratusFunction, settings_environment

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def asl_placeholders(definition_file: Path) -> set[str]:
    """The `${Name}` substitutions an ASL file uses."""
    return set(_PLACEHOLDER.findall(definition_file.read_text()))


@dataclass(frozen=True)
class WorkflowProps:
    """Props of `Workflow`.

    :param runtime: Layer, environment and logging of the PrepareJob function.
    :param jobs_table: Read by PrepareJob (the job's process graph and current run).
    :param process_graphs_table: Read by PrepareJob (the user-defined processes the graph calls).
    :param results_bucket: PrepareJob writes the run's process graph snapshot here.
    :param status_queue: The state machine sends queued/finished/error status events here.
    :param job_queue: Batch queue the processing job is submitted to.
    :param job_definition: Batch job definition of the processing container.
    :param definition_file: The ASL file. @default `<repo>/statemachines/batch_job.asl.json`
    :param log_level: What the state machine logs to CloudWatch. @default ERROR
    :param log_retention: Retention of the state machine's log group. @default one month
    """

    runtime: FunctionRuntime
    jobs_table: dynamodb.ITable
    process_graphs_table: dynamodb.ITable
    results_bucket: s3.IBucket
    status_queue: sqs.IQueue
    job_queue: batch.IJobQueue
    job_definition: batch.IJobDefinition
    definition_file: Path = field(default_factory=lambda: constants.REPO_ROOT / STATE_MACHINE_FILE)
    log_level: sfn.LogLevel = sfn.LogLevel.ERROR
    log_retention: logs.RetentionDays = constants.DEFAULT_LOG_RETENTION


class Workflow(Construct):
    """`state_machine` (standard, traced, logged), `prepare_job` (its first task's function) and `reaper`
    (the scheduled function that ends lost runs)."""

    def __init__(self, scope: Construct, construct_id: str, props: WorkflowProps) -> None:
        super().__init__(scope, construct_id)
        used = asl_placeholders(props.definition_file)
        if used != set(STATE_MACHINE_SUBSTITUTIONS):
            raise ValueError(f"{props.definition_file.name} uses substitutions {sorted(used)}, but "
                             f"STATE_MACHINE_SUBSTITUTIONS is {sorted(STATE_MACHINE_SUBSTITUTIONS)}")

        self.prepare_job = StratusFunction(
            self, FUNCTIONS["prepare_job"].logical_name, spec=FUNCTIONS["prepare_job"], runtime=props.runtime
        )
        props.jobs_table.grant_read_data(self.prepare_job)
        props.process_graphs_table.grant_read_data(self.prepare_job)
        props.results_bucket.grant_write(self.prepare_job)

        substitutions = {
            "PrepareJobFunctionArn": self.prepare_job.function_arn,
            "StatusQueueUrl": props.status_queue.queue_url,
            "JobQueueArn": props.job_queue.job_queue_arn,
            "JobDefinitionArn": props.job_definition.job_definition_arn,
        }
        log_group = logs.LogGroup(
            self, "StateMachineLogs", retention=props.log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_file(str(props.definition_file)),
            definition_substitutions={name: substitutions[name] for name in STATE_MACHINE_SUBSTITUTIONS},
            state_machine_type=sfn.StateMachineType.STANDARD,  # `.sync` integrations need STANDARD
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=props.log_level, include_execution_data=True),
        )

        # The ASL comes from a file, so CDK cannot infer the task permissions: grant them here.
        self.prepare_job.grant_invoke(self.state_machine)
        props.status_queue.grant_send_messages(self.state_machine)
        props.job_definition.grant_submit_job(self.state_machine, props.job_queue)
        stack = Stack.of(self)
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(  # `.sync` polls the job and stops it when the execution is stopped
                actions=["batch:TerminateJob"],
                resources=[stack.format_arn(service="batch", resource="job", resource_name="*")],
            )
        )
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(  # DescribeJobs supports no resource-level permissions (AWS requires "*")
                actions=["batch:DescribeJobs"], resources=["*"]
            )
        )
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(  # the managed rule through which Step Functions learns that a Batch job ended
                actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                resources=[
                    stack.format_arn(service="events", resource="rule", resource_name=constants.BATCH_SYNC_EVENT_RULE)
                ],
            )
        )

        self.reaper = self._reaper(props)

    def _reaper(self, props: WorkflowProps) -> StratusFunction:
        """JobReaper on a schedule: ends jobs whose run was lost (`stratus.domain.reaper`), through the status
        queue; it reads the jobs' active index, asks this state machine and Batch about runs, and stops a run
        that never found capacity."""
        reaper = StratusFunction(self, FUNCTIONS["reaper"].logical_name, spec=FUNCTIONS["reaper"],
                                 runtime=props.runtime,
                                 environment=settings_environment(state_machine_arn=self.state_machine.state_machine_arn))
        props.jobs_table.grant_read_data(reaper)
        props.status_queue.grant_send_messages(reaper)
        self.state_machine.grant(reaper, "states:DescribeStateMachine")
        self.state_machine.grant_execution(reaper, "states:DescribeExecution", "states:GetExecutionHistory",
                                         "states:StopExecution")
        stack = Stack.of(self)
        reaper.add_to_role_policy(iam.PolicyStatement(
            actions=["batch:TerminateJob"], resources=[stack.format_arn(service="batch", resource="job", resource_name="*")]))
        reaper.add_to_role_policy(iam.PolicyStatement(actions=["batch:ListJobs"], resources=["*"]))  # no resource scope
        events.Rule(self, "ReaperSchedule", description="Ends Stratus jobs whose run was lost",
                    schedule=events.Schedule.rate(Duration.minutes(REAPER_SCHEDULE_MINUTES)),
                    targets=[targets.LambdaFunction(reaper, retry_attempts=0)])
        return reaper
