"""Alarms that reach someone and a dashboard (`Monitoring`).

Every alarm of the stack (the DLQ alarms of `Queues` included) notifies one SNS topic, encrypted with a
customer-managed KMS key: CloudWatch cannot publish to a topic encrypted with the AWS-managed `aws/sns` key, whose
policy cannot be changed. An operator subscribes an e-mail address through `stratus:alarmEmail` (or any endpoint
later, in the console). Failed Batch jobs show as failed executions: the state machine ends in `Failed` whenever
its Batch task fails (`statemachines/batch_job.asl.json`); a job retried after an infrastructure error and then
successful is no failure. The reaper's and the status consumer's metrics are EMF log lines (`stratus.metrics`).
An optional monthly AWS budget notifies the topic at 80 % of forecast and 100 % of actual cost.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stratus import metrics
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
    :param monthly_budget_usd: Monthly cost budget notifying the topic; 0 for none. @default 0
    """

    stage: str
    rest_api: apigw.RestApi
    functions: Mapping[str, lambda_.IFunction]
    queues: Queues
    state_machine: sfn.StateMachine
    alarm_email: str = ""
    monthly_budget_usd: int = 0


class Monitoring(Construct):
    """`topic` (every alarm's action), `alarms` (name -> alarm, the DLQ alarms included) and `dashboard`."""

    def __init__(self, scope: Construct, construct_id: str, props: MonitoringProps) -> None:
        super().__init__(scope, construct_id)
        key = kms.Key(self, "AlarmTopicKey", description=f"Stratus {props.stage}: encrypts the alarm topic",
                      enable_key_rotation=True, removal_policy=RemovalPolicy.DESTROY,
                      pending_window=Duration.days(7))
        # CloudWatch encrypts the alarm messages it publishes with this key; so do SES (bounces, complaints) and
        # AWS Budgets
        for service in ("cloudwatch", "ses", "budgets"):
            key.grant(iam.ServicePrincipal(f"{service}.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
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
        self._queue_age_alarms(props.queues)
        self._reaper_alarm(props.stage)
        self._mail_alarms()
        action = cloudwatch_actions.SnsAction(self.topic)
        for alarm in self.alarms.values():
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)  # tells the receiver the problem is over

        self.dashboard = self._dashboard(props)
        self.budget = self._budget(props.stage, props.monthly_budget_usd) if props.monthly_budget_usd else None

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
        self._alarm(
            "ApiLatencyP95",
            f"The API's p95 latency stayed above {constants.API_LATENCY_P95_ALARM_MS} ms for "
            f"{constants.API_LATENCY_ALARM_PERIODS * constants.ALARM_PERIOD_MINUTES} minutes: most requests are "
            f"slow, not only synchronous processing; see the API function's duration and the tables' latency",
            api.metric_latency(period=_PERIOD, statistic="p95"), constants.API_LATENCY_P95_ALARM_MS,
            comparison=_ABOVE, evaluation_periods=constants.API_LATENCY_ALARM_PERIODS)

    def _queue_age_alarms(self, queues: Queues) -> None:
        for key, queue in sorted(queues.queues.items()):
            limit = constants.QUEUE_AGE_ALARM_S.get(key, constants.DEFAULT_QUEUE_AGE_ALARM_S)
            self._alarm(
                f"{queues.specs[key].logical_name}Age",
                f"The oldest message of the {key} queue is older than {limit} s: its consumer is failing, "
                f"throttled or too slow; see its errors, throttles and logs",
                queue.metric_approximate_age_of_oldest_message(period=_PERIOD, statistic="Maximum"), limit,
                comparison=_ABOVE, evaluation_periods=2)

    def _reaper_alarm(self, stage: str) -> None:
        self._alarm(
            "LostRunsEnded",
            "The reaper ended jobs whose run was lost (queued or running without a live execution): Batch or "
            "Step Functions dropped them; see the reaper's log ('lost run ended') and the jobs' executions",
            cloudwatch.Metric(namespace=metrics.namespace(stage), metric_name=metrics.LOST_RUNS_ENDED,
                              dimensions_map={"service": metrics.REAPER_SERVICE}, period=Duration.hours(1),
                              statistic="Sum"), 1)

    def _mail_alarms(self) -> None:
        # account-wide SES reputation: SES reviews an account above 5 % bounces or 0.1 % complaints
        for name, metric_name, limit in (("MailBounceRate", "Reputation.BounceRate", constants.MAIL_BOUNCE_RATE),
                                         ("MailComplaintRate", "Reputation.ComplaintRate",
                                          constants.MAIL_COMPLAINT_RATE)):
            self._alarm(
                name, f"The account's SES {metric_name} is above {limit:.2%}: SES may pause sending; see the "
                      f"bounces and complaints on the alarm topic and the suppression list",
                cloudwatch.Metric(namespace="AWS/SES", metric_name=metric_name, period=Duration.hours(1),
                                  statistic="Maximum"), limit, comparison=_ABOVE)

    def _budget(self, stage: str, limit_usd: int) -> budgets.CfnBudget:
        self.topic.add_to_resource_policy(iam.PolicyStatement(
            actions=["sns:Publish"], principals=[iam.ServicePrincipal("budgets.amazonaws.com")],
            resources=[self.topic.topic_arn]))
        subscriber = budgets.CfnBudget.SubscriberProperty(subscription_type="SNS", address=self.topic.topic_arn)

        def notify(kind: str, percent: int) -> budgets.CfnBudget.NotificationWithSubscribersProperty:
            return budgets.CfnBudget.NotificationWithSubscribersProperty(
                notification=budgets.CfnBudget.NotificationProperty(
                    notification_type=kind, comparison_operator="GREATER_THAN", threshold=percent,
                    threshold_type="PERCENTAGE"),
                subscribers=[subscriber])

        # the whole account's cost (filtering by the `project`/`stage` tags needs them activated as cost
        # allocation tags first: docs/operations.md)
        return budgets.CfnBudget(self, "MonthlyBudget", budget=budgets.CfnBudget.BudgetDataProperty(
            budget_name=f"stratus-{stage}-monthly", budget_type="COST", time_unit="MONTHLY",
            budget_limit=budgets.CfnBudget.SpendProperty(amount=limit_usd, unit="USD")),
            notifications_with_subscribers=[notify("FORECASTED", 80), notify("ACTUAL", 100)])

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
                                       api.metric_latency(statistic="p95", label="p95"),
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
        namespace = metrics.namespace(props.stage)

        def job_metric(name: str, label: str, statistic: str = "Sum") -> cloudwatch.Metric:
            return cloudwatch.Metric(namespace=namespace, metric_name=name, label=label, statistic=statistic,
                                     dimensions_map={"service": metrics.STATUS_SERVICE})

        dashboard.add_widgets(
            graph("Jobs by end status", [job_metric(name, status) for status, name in metrics.JOBS_ENDED.items()]),
            graph("Job duration (s)", [job_metric(metrics.JOB_DURATION, "p50", "p50"),
                                       job_metric(metrics.JOB_DURATION, "p95", "p95")]),
            # AWS publishes the account's estimated charges in us-east-1 only, with billing alerts enabled
            graph("Estimated charges (USD, month to date)", [cloudwatch.Metric(
                namespace="AWS/Billing", metric_name="EstimatedCharges", dimensions_map={"Currency": "USD"},
                region="us-east-1", statistic="Maximum", period=Duration.hours(6), label="account")]),
        )
        return dashboard


def _camel(key: str) -> str:
    return "".join(part.title() for part in key.split("_"))
