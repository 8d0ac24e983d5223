"""Alarms that reach someone and a dashboard (`Monitoring`).

Every alarm of the stack (the DLQ alarms of `Queues` included) notifies one SNS topic, encrypted with a
customer-managed KMS key: CloudWatch cannot publish to a topic encrypted with the AWS-managed `aws/sns` key, whose
policy cannot be changed. An operator subscribes an e-mail address through `stratus:alarmEmail` (or any endpoint
later, in the console). Failed Batch jobs show as failed executions: the state machine ends in `Failed` whenever
its Batch task fails (`statemachines/batch_job.asl.json`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stratus_infra import constants
from stratus_infra.queues import Queues

_PERIOD = Duration.minutes(constants.ALARM_PERIOD_MINUTES)
_AT_LEAST = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
_ABOVE = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD


@dataclass(frozen=True)
class MonitoringProps:
    """Props of `Monitoring`.

    :param stage: Deployment name, in the dashboard's name and the alarm e-mails' subject.
    :param rest_api: The public REST API.
    :param functions: `stratus.resources.FUNCTIONS` key -> its Lambda function.
    :param queues: The event queues with their DLQs and DLQ alarms.
    :param state_machine: The job state machine (a failed Batch job fails its execution).
    :param alarm_email: Address subscribed to the alarm topic (it confirms by a link SNS mails it); "" for none.
        @default ""
    """

    stage: str
    rest_api: apigw.RestApi
    functions: Mapping[str, lambda_.IFunction]
    queues: Queues
    state_machine: sfn.StateMachine
    alarm_email: str = ""


class Monitoring(Construct):
    """`topic` (every alarm's action), `alarms` (name -> alarm, the DLQ alarms included) and `dashboard`."""

    def __init__(self, scope: Construct, construct_id: str, props: MonitoringProps) -> None:
        super().__init__(scope, construct_id)
        key = kms.Key(self, "AlarmTopicKey", description=f"Stratus {props.stage}: encrypts the alarm topic",
                      enable_key_rotation=True, removal_policy=RemovalPolicy.DESTROY,
                      pending_window=Duration.days(7))
        # CloudWatch encrypts the alarm messages it publishes with this key
        key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        self.topic = sns.Topic(self, "AlarmTopic", display_name=f"Stratus {props.stage} alarms", master_key=key,
                               enforce_ssl=True)
        if props.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(props.alarm_email))

        self.alarms: dict[str, cloudwatch.Alarm] = {}
        for queue_key, alarm in props.queues.dlq_alarms.items():
            self.alarms[f"{props.queues.specs[queue_key].logical_name}Dlq"] = alarm
        self._api_alarms(props.rest_api)
        for function_key, function in sorted(props.functions.items()):
            self._function_alarms(function_key, function)
        self._execution_alarm(props.state_machine)
        action = cloudwatch_actions.SnsAction(self.topic)
        for alarm in self.alarms.values():
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)  # tells the receiver the problem is over

        self.dashboard = self._dashboard(props)

    def _alarm(self, name: str, description: str, metric: cloudwatch.IMetric, threshold: float, *,
               comparison: cloudwatch.ComparisonOperator = _AT_LEAST, evaluation_periods: int = 1) -> None:
        self.alarms[name] = cloudwatch.Alarm(
            self, f"{name}Alarm", alarm_description=description, metric=metric, threshold=threshold,
            comparison_operator=comparison, evaluation_periods=evaluation_periods,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING)

    def _api_alarms(self, api: apigw.RestApi) -> None:
        requests = api.metric_count(period=_PERIOD, statistic="Sum")
        errors = api.metric_server_error(period=_PERIOD, statistic="Sum")
        minimum = constants.API_5XX_ALARM_MIN_REQUESTS
        self._alarm(
            "Api5xxRate",
            f"More than {constants.API_5XX_ALARM_PERCENT}% of the API's responses were 5xx in "
            f"{constants.ALARM_PERIOD_MINUTES} minutes (with at least {minimum} requests): the API function fails "
            f"or times out; see its logs and errors",
            cloudwatch.MathExpression(
                expression=f"IF(requests >= {minimum}, 100 * errors / requests, 0)",
                using_metrics={"requests": requests, "errors": errors}, period=_PERIOD, label="5xx %"),
            constants.API_5XX_ALARM_PERCENT, comparison=_ABOVE)
        self._alarm(
            "ApiLatencyP99",
            f"The API's p99 latency stayed above {constants.API_LATENCY_P99_ALARM_MS} ms for "
            f"{constants.API_LATENCY_ALARM_PERIODS * constants.ALARM_PERIOD_MINUTES} minutes: cold starts, a slow "
            f"table or catalogue, or long synchronous requests",
            api.metric_latency(period=_PERIOD, statistic="p99"), constants.API_LATENCY_P99_ALARM_MS,
            comparison=_ABOVE, evaluation_periods=constants.API_LATENCY_ALARM_PERIODS)

    def _function_alarms(self, key: str, function: lambda_.IFunction) -> None:
        name = _camel(key)
        self._alarm(f"{name}Errors", f"The {key} function failed (an unhandled error or a timeout); see its logs",
                    function.metric_errors(period=_PERIOD, statistic="Sum"), 1)
        self._alarm(f"{name}Throttles", f"Invocations of the {key} function were throttled: the account's or its "
                    f"reserved concurrency is exhausted", function.metric_throttles(period=_PERIOD, statistic="Sum"), 1)

    def _execution_alarm(self, state_machine: sfn.StateMachine) -> None:
        window = Duration.minutes(constants.FAILED_EXECUTIONS_ALARM_MINUTES)
        threshold = constants.FAILED_EXECUTIONS_ALARM_THRESHOLD
        self._alarm(
            "FailedExecutions",
            f"{threshold} or more job executions failed or timed out in {constants.FAILED_EXECUTIONS_ALARM_MINUTES} "
            f"minutes (a failed Batch job fails its execution): more than single users' broken graphs; see the state "
            f"machine's failed executions and the Batch jobs' status reasons",
            cloudwatch.MathExpression(
                expression="FILL(failed, 0) + FILL(timedOut, 0)",
                using_metrics={"failed": state_machine.metric_failed(period=window, statistic="Sum"),
                               "timedOut": state_machine.metric_timed_out(period=window, statistic="Sum")},
                period=window, label="failed + timed out"),
            threshold)

    def _dashboard(self, props: MonitoringProps) -> cloudwatch.Dashboard:
        api, machine = props.rest_api, props.state_machine
        queues = props.queues
        width = 8  # three widgets a row (24 columns)

        def graph(title: str, metrics: list[cloudwatch.IMetric], right: list[cloudwatch.IMetric] | None = None):
            return cloudwatch.GraphWidget(title=title, left=metrics, right=right or [], width=width, height=6)

        def sums(metric_of, items):
            return [metric_of(item) for item in items]

        functions = sorted(props.functions.items())
        dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"Stratus-{props.stage}",
                                         default_interval=Duration.hours(24))
        dashboard.add_widgets(
            graph("API requests, 4xx and 5xx", [
                api.metric_count(statistic="Sum", label="requests"),
                api.metric_client_error(statistic="Sum", label="4xx"),
                api.metric_server_error(statistic="Sum", label="5xx")]),
            graph("API latency (ms)", [api.metric_latency(statistic="p50", label="p50"),
                                       api.metric_latency(statistic="p99", label="p99")]),
            graph("Job executions", [machine.metric_started(statistic="Sum", label="started"),
                                     machine.metric_succeeded(statistic="Sum", label="succeeded"),
                                     machine.metric_failed(statistic="Sum", label="failed"),
                                     machine.metric_timed_out(statistic="Sum", label="timed out")]),
        )
        dashboard.add_widgets(
            graph("Queue depth (visible messages)", sums(
                lambda item: item[1].metric_approximate_number_of_messages_visible(statistic="Maximum", label=item[0]),
                queues.queues.items())),
            graph("Age of the oldest message (s)", sums(
                lambda item: item[1].metric_approximate_age_of_oldest_message(statistic="Maximum", label=item[0]),
                queues.queues.items())),
            graph("Dead-letter queues (messages)", sums(
                lambda item: item[1].metric_approximate_number_of_messages_visible(statistic="Maximum",
                                                                                   label=item[0]),
                queues.dead_letter_queues.items())),
        )
        dashboard.add_widgets(
            graph("Lambda duration p99 (ms)", sums(
                lambda item: item[1].metric_duration(statistic="p99", label=item[0]), functions)),
            graph("Lambda errors", sums(lambda item: item[1].metric_errors(statistic="Sum", label=item[0]), functions)),
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values()), width=width, height=6),
        )
        return dashboard


def _camel(key: str) -> str:
    return "".join(part.title() for part in key.split("_"))
