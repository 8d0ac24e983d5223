"""SQS queues with dead-letter queues (`Queues`) and the Lambda functions that drain them (`QueueConsumers`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stratus.resources import FUNCTIONS, QUEUES, QueueSpec
from stratus_infra import constants
from stratus_infra.access import Targets
from stratus_infra.functions import FunctionRuntime, StratusFunction


@dataclass(frozen=True)
class QueuesProps:
    """Props of `Queues`.

    :param specs: Queue key -> spec (visibility timeout, maxReceiveCount, retention).
        @default `stratus.resources.QUEUES`
    :param encryption: Server-side encryption of queues and DLQs; SQS-managed keys cost nothing. @default SQS_MANAGED
    :param dlq_alarm_threshold: A DLQ alarm fires when this many messages are visible in it. @default 1
    """

    specs: Mapping[str, QueueSpec] = field(default_factory=lambda: dict(QUEUES))
    encryption: sqs.QueueEncryption = sqs.QueueEncryption.SQS_MANAGED
    dlq_alarm_threshold: int = constants.DLQ_ALARM_THRESHOLD


class Queues(Construct):
    """`queues[key]`, `dead_letter_queues[key]` and `dlq_alarms[key]` for each queue spec."""

    def __init__(self, scope: Construct, construct_id: str, props: QueuesProps | None = None) -> None:
        super().__init__(scope, construct_id)
        props = props or QueuesProps()
        self.specs = dict(props.specs)
        self.queues: dict[str, sqs.Queue] = {}
        self.dead_letter_queues: dict[str, sqs.Queue] = {}
        self.dlq_alarms: dict[str, cloudwatch.Alarm] = {}
        for key, spec in props.specs.items():
            dlq = sqs.Queue(
                self,
                f"{spec.logical_name}Dlq",
                retention_period=Duration.days(spec.dlq_retention_days),
                encryption=props.encryption,
                enforce_ssl=True,
            )
            self.queues[key] = sqs.Queue(
                self,
                spec.logical_name,
                visibility_timeout=Duration.seconds(spec.visibility_timeout_s),
                retention_period=Duration.days(spec.retention_days),
                dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=spec.max_receive_count),
                encryption=props.encryption,
                enforce_ssl=True,
            )
            self.dead_letter_queues[key] = dlq
            self.dlq_alarms[key] = cloudwatch.Alarm(
                self,
                f"{spec.logical_name}DlqAlarm",
                alarm_description=f"Messages of the {key} queue failed {spec.max_receive_count} times and were "
                f"parked in its dead-letter queue",
                metric=dlq.metric_approximate_number_of_messages_visible(period=Duration.minutes(5)),
                threshold=props.dlq_alarm_threshold,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )

    def __getitem__(self, key: str) -> sqs.Queue:
        return self.queues[key]

    def settings(self) -> dict[str, str]:
        """`Settings` field -> queue URL, e.g. `{"status_queue_url": <url>}`."""
        return {constants.QUEUE_URL_SETTINGS[key]: queue.queue_url for key, queue in self.queues.items()}


@dataclass(frozen=True)
class QueueConsumersProps:
    """Props of `QueueConsumers`.

    :param queues: The queues to drain; each spec's `consumer` names the function (`stratus.resources.FUNCTIONS`).
    :param runtime: Layer, environment and logging shared by all functions.
    :param targets: What the consumers touch besides their queue (their specs' `access`).
    """

    queues: Queues
    runtime: FunctionRuntime
    targets: Targets


class QueueConsumers(Construct):
    """`functions[function_key]`: one Lambda per queue, fed by an SQS event source with partial batch failures."""

    def __init__(self, scope: Construct, construct_id: str, props: QueueConsumersProps) -> None:
        super().__init__(scope, construct_id)
        self.functions: dict[str, StratusFunction] = {}
        for key, spec in props.queues.specs.items():
            function_spec = FUNCTIONS[spec.consumer]
            if spec.visibility_timeout_s < function_spec.timeout_s:
                raise ValueError(f"queue {key}: visibility timeout {spec.visibility_timeout_s}s is shorter than "
                                 f"its consumer's timeout {function_spec.timeout_s}s (SQS event sources require more)")
            function = StratusFunction(self, function_spec.logical_name, spec=function_spec, runtime=props.runtime,
                                       targets=props.targets)
            function.add_event_source(
                event_sources.SqsEventSource(
                    props.queues[key],
                    batch_size=spec.batch_size,
                    max_batching_window=Duration.seconds(spec.max_batching_window_s),
                    report_batch_item_failures=True,
                )
            )
            self.functions[spec.consumer] = function
