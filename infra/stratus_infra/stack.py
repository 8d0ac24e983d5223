"""`StratusStack`: composes the constructs of one Stratus deployment; `build` adds it to an app."""

from __future__ import annotations

from aws_cdk import App, AspectPriority, Aspects, CfnOutput, RemovalPolicy, Stack, Tags
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stratus import metrics
from stratus.resources import TOKEN_SECRET_NAME
from stratus_infra import constants
from stratus_infra.access import Targets
from stratus_infra.api import Api, ApiProps
from stratus_infra.catalogue import Catalogue, CatalogueProps, catalogue_layer
from stratus_infra.collections import Collections, CollectionsProps
from stratus_infra.config import StratusConfig
from stratus_infra.functions import FunctionRuntime, TracingOff, settings_environment
from stratus_infra.identity import Identity, IdentityProps
from stratus_infra.layer import RuntimeLayer
from stratus_infra.limits import Limits, LimitsProps
from stratus_infra.mail import Mail, MailProps
from stratus_infra.monitoring import Monitoring, MonitoringProps
from stratus_infra.portal import Portal, PortalProps
from stratus_infra.processing import Processing, ProcessingProps
from stratus_infra.queues import QueueConsumers, QueueConsumersProps, Queues
from stratus_infra.storage import Storage, StorageProps
from stratus_infra.tables import Tables, TablesProps
from stratus_infra.workflow import Workflow, WorkflowProps


class StratusStack(Stack):
    """Tables, buckets, queues + consumers, the job workflow on Batch/Fargate, and the REST API."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StratusConfig, **kwargs) -> None:
        super().__init__(scope, construct_id, description=f"Stratus openEO backend ({config.stage})", **kwargs)
        self.config = config

        self.tables = Tables(self, "Tables", TablesProps(removal_policy=config.data_removal_policy))
        self.storage = Storage(
            self,
            "Storage",
            StorageProps(removal_policy=config.data_removal_policy, results_expiry_days=config.results_expiry_days),
        )
        self.queues = Queues(self, "Queues")
        layer = RuntimeLayer(self, "RuntimeLayer")
        # order notifications, registrations, password resets and Cognito's mails: the sender's domain identity
        # (DKIM) and this stage's configuration set (bounces and complaints)
        self.mail = Mail(self, "Mail", MailProps(stage=config.stage, domain=config.mail_domain,
                                                 create_identity=config.mail_identity == "create"))

        # private hosts user-given URLs may reach (webhooks, load_stac); set only when the operator lists some
        allowed = {"allowed_private_hosts": config.allowed_private_hosts} if config.allowed_private_hosts else {}
        runtime = FunctionRuntime(
            layer=layer.layer,
            environment=settings_environment(**self.tables.settings(), **self.storage.settings(),
                                             **self.queues.settings(),
                                             notification_sender=config.notification_sender,
                                             mail_configuration_set=self.mail.configuration_set.configuration_set_name,
                                             registration=config.registration, **allowed)
            | {metrics.NAMESPACE_ENV: metrics.namespace(config.stage)},
            log_level=config.log_level,
            extra_layers={"catalogue": catalogue_layer(self, "CatalogueLayer")},
        )
        # What the functions, the processing job and the state machine may touch (their `Access` in
        # `stratus.resources`), growing as the parts are created: each part is granted when it is built.
        targets = Targets(tables=self.tables.tables, buckets=self.storage.buckets, queues=self.queues.queues,
                          email_identity_arn=self.mail.identity_arn,
                          email_configuration_set_arn=self.mail.configuration_set_arn,
                          dead_letter_queues=self.queues.dead_letter_queues, stage=config.stage)
        self.collections = Collections(self, "Collections", CollectionsProps(
            runtime=runtime, targets=targets, data_bucket=self.storage.data, config_file=config.collections_file))
        self.processing = Processing(
            self,
            "Processing",
            ProcessingProps(
                targets=targets,
                environment=settings_environment(**self.storage.settings(), **self.queues.settings(), **allowed),
                spot=config.spot,
            ),
        )
        # the processing reads the configured sources' documents and assets (load_collection)
        # (PlanRun too: the engine plans the loads, reading the assets' headers)
        for reader in (self.processing.job_role, self.processing.sync_function, self.processing.plan_function):
            self.collections.grant_sources(reader, assets=True)
        targets = targets.with_(functions={"sync_processing": self.processing.sync_function,
                                           "plan_run": self.processing.plan_function},
                                job_queue=self.processing.job_queue, job_definition=self.processing.job_definition)
        self.workflow = Workflow(
            self,
            "Workflow",
            WorkflowProps(
                runtime=runtime,
                targets=targets,
                log_level=sfn.LogLevel.ALL if config.log_level == "DEBUG" else sfn.LogLevel.ERROR,
            ),
        )
        targets = targets.with_(state_machine=self.workflow.state_machine)
        self.identity = Identity(self, "Identity", IdentityProps(
            stage=config.stage, removal_policy=config.data_removal_policy,
            email=cognito.UserPoolEmail.with_ses(
                from_email=config.notification_sender, ses_verified_domain=config.mail_domain,
                ses_region=self.region,  # the stack's own (environment-agnostic synth: a token)
                configuration_set_name=self.mail.configuration_set.configuration_set_name)))
        self.api = Api(
            self,
            "Api",
            ApiProps(
                runtime=runtime,
                targets=targets,
                export_prefix=self.stack_name,
                oidc_settings=self.identity.settings(),
                # one secret per stage, so several stages can share an account and region
                token_secret_name=f"{TOKEN_SECRET_NAME}/{config.stage}",
                token_secret_removal_policy=config.data_removal_policy,
            ),
        )
        # the API's dry run (estimates, the sync size guard, order checks) searches the configured sources' items
        self.collections.grant_sources(self.api.function)
        targets = targets.with_(secrets={"token": self.api.token_secret})
        # the customer portal (CloudFront + S3) and the XYZ tiles of job results (`/tiles/`, the processing image);
        # `-c stratus:portalBaseLayer=https://tiles.example/{z}/{x}/{y}.png` adds an online base layer
        base_layer = self.node.try_get_context("stratus:portalBaseLayer")
        self.portal = Portal(self, "Portal", PortalProps(
            rest_api=self.api.rest_api, targets=targets, access_log_bucket=self.storage.access_log_bucket,
            environment=settings_environment(**self.tables.settings(), **self.storage.settings()),
            base_layer={"url": base_layer,
                        "attribution": self.node.try_get_context("stratus:portalBaseLayerAttribution") or ""}
            if base_layer else None))
        self.catalogue = Catalogue(self, "Catalogue", CatalogueProps(
            runtime=runtime, targets=targets, rest_api=self.api.rest_api, data_bucket=self.storage.data,
            ingest_queue=self.queues["ingest"], oidc_settings=self.identity.settings()))
        self.consumers = QueueConsumers(
            self, "Consumers", QueueConsumersProps(queues=self.queues, runtime=runtime, targets=targets)
        )
        functions = {"api": self.api.function, "stac": self.catalogue.function, **self.consumers.functions,
                     "prepare_job": self.workflow.prepare_job, "plan_run": self.workflow.plan_run,
                     "reaper": self.workflow.reaper,
                     "collections_refresh": self.collections.refresh,
                     "sync_processing": self.processing.sync_function, "tiles": self.portal.tiles_function}
        self.monitoring = Monitoring(self, "Monitoring", MonitoringProps(
            stage=config.stage, rest_api=self.api.rest_api, queues=self.queues,
            state_machine=self.workflow.state_machine, alarm_email=config.alarm_email, functions=functions,
            monthly_budget_usd=config.monthly_budget_usd))
        self.mail.publish_feedback_to(self.monitoring.topic)
        self.limits = Limits(self, "Limits", LimitsProps(
            stage=config.stage, rest_api=self.api.rest_api, api_function=self.api.function, functions=functions,
            reserved_concurrency=config.reserved_concurrency, usage_plans=config.usage_plans,
            order_api_key_required=config.order_api_key_required, waf_rate_limit=config.waf_rate_limit))
        if not config.tracing:
            Aspects.of(self).add(TracingOff(), priority=AspectPriority.MUTATING)

        self._output("DataBucketName", self.storage.data.bucket_name, "Bucket of the STAC catalog and its assets")
        self._output("ResultsBucketName", self.storage.results.bucket_name, "Bucket of job runs and results")
        self._output("UserPoolId", self.identity.user_pool.user_pool_id, "Cognito user pool (OpenID Connect)")
        self._output("OidcIssuer", self.identity.issuer, "OpenID Connect issuer")
        self._output("MachineClientId", self.identity.machine_client.user_pool_client_id,
                     "App client for the client-credentials grant")
        self._output("PortalUrl", f"https://{self.portal.distribution.distribution_domain_name}/",
                     "The customer portal")
        self._output("AlarmTopicArn", self.monitoring.topic.topic_arn, "SNS topic every alarm notifies")
        self._output("TokenSecretArn", self.api.token_secret.secret_arn,
                     "Token signing key (admin CLI STRATUS_TOKEN_SECRET_ID; rotation: docs/operations.md)")
        for key, table in sorted(self.tables.tables.items()):
            self._output(f"{_camel(key)}TableName", table.table_name, f"The {key} table (admin CLI)")
        self._output("MailConfigurationSet", self.mail.configuration_set.configuration_set_name,
                     "SES configuration set of every message (suppression of bounces and complaints)")
        if self.mail.identity is not None:
            for number, record in enumerate(self.mail.identity.dkim_records, start=1):
                self._output(f"MailDkimRecord{number}", f"{record.name} CNAME {record.value}",
                             f"DKIM record {number} of {config.mail_domain}: add it to the domain's DNS")
        self._output("StateMachineArn", self.workflow.state_machine.state_machine_arn, "Job state machine")
        self._output("JobQueueArn", self.processing.job_queue.job_queue_arn, "Batch job queue")
        for key, queue in self.queues.queues.items():
            spec = self.queues.specs[key]
            self._output(f"{spec.logical_name}Url", queue.queue_url, f"The {key} event queue")
            self._output(f"{spec.logical_name}DlqUrl", self.queues.dead_letter_queues[key].queue_url,
                         f"Dead-letter queue of the {key} queue")

    def _output(self, name: str, value: str, description: str) -> None:
        CfnOutput(self, name, value=value, description=description, export_name=f"{self.stack_name}-{name}")


def _camel(key: str) -> str:
    return "".join(part.title() for part in key.replace("-", "_").split("_"))


def build(app: App, config: StratusConfig) -> StratusStack:
    """Add the Stratus stack of `config` to `app`, tagged with project and stage."""
    stack = StratusStack(app, config.stack_name, config=config)
    Tags.of(stack).add("project", constants.PROJECT_TAG)
    Tags.of(stack).add("stage", config.stage)
    if config.data_removal_policy == RemovalPolicy.DESTROY:
        Tags.of(stack).add("data", "ephemeral")
    return stack
