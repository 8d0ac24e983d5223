"""The job state machine (`statemachines/batch_job.asl.json`) and its PrepareJob Lambda function."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stratus.resources import (
    FUNCTIONS,
    REAPER_SCHEDULE_MINUTES,
    STATE_MACHINE_ACCESS,
    STATE_MACHINE_FILE,
    STATE_MACHINE_SUBSTITUTIONS,
    state_machine_definition,
)
from stratus_infra import access, constants
from stratus_infra.functions import FunctionRuntime, StratusFunction

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def asl_placeholders(definition_file: Path) -> set[str]:
    """The `${Name}` substitutions an ASL file uses."""
    return set(_PLACEHOLDER.findall(definition_file.read_text()))


@dataclass(frozen=True)
class WorkflowProps:
    """Props of `Workflow`.

    :param runtime: Layer, environment and logging of the PrepareJob and JobReaper functions.
    :param targets: What the functions and the state machine touch (`FUNCTIONS[...].access`,
        `STATE_MACHINE_ACCESS`); must hold the status queue, the Batch job queue and job definition, and the
        PlanRun function (`Processing.plan_function`).
    :param definition_file: The ASL file. @default `<repo>/statemachines/batch_job.asl.json`
    :param log_level: What the state machine logs to CloudWatch. @default ERROR
    :param log_retention: Retention of the state machine's log group. @default one month
    """

    runtime: FunctionRuntime
    targets: access.Targets
    definition_file: Path = field(default_factory=lambda: constants.REPO_ROOT / STATE_MACHINE_FILE)
    log_level: sfn.LogLevel = sfn.LogLevel.ERROR
    log_retention: logs.RetentionDays = constants.DEFAULT_LOG_RETENTION


class Workflow(Construct):
    """`state_machine` (standard, traced, logged), `prepare_job` and `plan_run` (its Lambda tasks) and `reaper`
    (the scheduled function that ends lost runs)."""

    def __init__(self, scope: Construct, construct_id: str, props: WorkflowProps) -> None:
        super().__init__(scope, construct_id)
        used = asl_placeholders(props.definition_file)
        if used != set(STATE_MACHINE_SUBSTITUTIONS):
            raise ValueError(f"{props.definition_file.name} uses substitutions {sorted(used)}, but "
                             f"STATE_MACHINE_SUBSTITUTIONS is {sorted(STATE_MACHINE_SUBSTITUTIONS)}")

        self.prepare_job = StratusFunction(
            self, FUNCTIONS["prepare_job"].logical_name, spec=FUNCTIONS["prepare_job"], runtime=props.runtime,
            targets=props.targets,
        )
        # PlanRun runs on the processing image (`Processing.plan_function`): it plans the loads with the engine
        self.plan_run = access.required("the PlanRun function", props.targets.functions.get("plan_run"))
        targets = props.targets.with_(functions={"prepare_job": self.prepare_job})

        substitutions = {
            "PrepareJobFunctionArn": self.prepare_job.function_arn,
            "PlanRunFunctionArn": self.plan_run.function_arn,
            "StageName": access.required("the stage's name", targets.stage),
            "StatusQueueUrl": targets.queues["status"].queue_url,
            "JobQueueArn": access.required("the Batch job queue", targets.job_queue).job_queue_arn,
            "JobDefinitionArn": access.required("the Batch job definition", targets.job_definition)
            .job_definition_arn,
        }
        log_group = logs.LogGroup(
            self, "StateMachineLogs", retention=props.log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_string(state_machine_definition(props.definition_file.read_text())),
            definition_substitutions={name: substitutions[name] for name in STATE_MACHINE_SUBSTITUTIONS},
            state_machine_type=sfn.StateMachineType.STANDARD,  # `.sync` integrations need STANDARD
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=props.log_level, include_execution_data=True),
        )

        # The ASL comes from a file, so CDK cannot infer the task permissions: they are declared in
        # STATE_MACHINE_ACCESS. Besides, `.sync` needs the managed rule through which Step Functions learns that
        # a Batch job ended: part of the integration, not something the workflow touches.
        # What names the machine itself (its Distributed Map starts, describes and stops its own child executions)
        # goes in a policy of its own: in the role's default policy it would make the machine depend on itself.
        own = targets.with_(state_machine=self.state_machine)
        access.grant(self.state_machine, dataclasses.replace(STATE_MACHINE_ACCESS, state_machine=(), map_runs=()),
                     own)
        iam.Policy(self, "DistributedMapPolicy", roles=[self.state_machine.role], statements=[
            iam.PolicyStatement(actions=list(STATE_MACHINE_ACCESS.state_machine),
                                resources=[self.state_machine.state_machine_arn]),
            *access.map_run_statements(STATE_MACHINE_ACCESS.map_runs, own)])
        iam.Grant.add_to_principal(
            grantee=self.state_machine,
            actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
            resource_arns=[Stack.of(self).format_arn(service="events", resource="rule",
                                                     resource_name=constants.BATCH_SYNC_EVENT_RULE)],
        )

        self.reaper = self._reaper(props.runtime, targets.with_(state_machine=self.state_machine))

    def _reaper(self, runtime: FunctionRuntime, targets: access.Targets) -> StratusFunction:
        """JobReaper on a schedule: ends jobs whose run was lost (`stratus.domain.reaper`)."""
        reaper = StratusFunction(self, FUNCTIONS["reaper"].logical_name, spec=FUNCTIONS["reaper"], runtime=runtime,
                                 targets=targets)
        events.Rule(self, "ReaperSchedule", description="Ends Stratus jobs whose run was lost",
                    schedule=events.Schedule.rate(Duration.minutes(REAPER_SCHEDULE_MINUTES)),
                    targets=[events_targets.LambdaFunction(reaper, retry_attempts=0)])
        return reaper
