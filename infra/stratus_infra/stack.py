"""`StratusStack`: composes the constructs of one Stratus deployment; `build` adds it to an app."""

from __future__ import annotations

from aws_cdk import App, CfnOutput, RemovalPolicy, Stack, Tags
from aws_cdk import aws_ses as ses
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stratus.resources import TOKEN_SECRET_NAME
from stratus_infra import constants
from stratus_infra.access import Targets
from stratus_infra.api import Api, ApiProps
from stratus_infra.catalogue import Catalogue, CatalogueProps, catalogue_layer
from stratus_infra.collections import Collections, CollectionsProps
from stratus_infra.config import StratusConfig
from stratus_infra.functions import FunctionRuntime, settings_environment
from stratus_infra.identity import Identity, IdentityProps
from stratus_infra.layer import RuntimeLayer
from stratus_infra.monitoring import Monitoring, MonitoringProps
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
        # order notifications and password resets; SES mails the address a verification link on deploy
        self.email_identity = ses.EmailIdentity(self, "NotificationSender",
                                                identity=ses.Identity.email(config.notification_sender))
        email_identity_arn = self.format_arn(service="ses", resource="identity",
                                             resource_name=self.email_identity.email_identity_name)

        # private hosts user-given URLs may reach (webhooks, load_stac); set only when the operator lists some
        allowed = {"allowed_private_hosts": config.allowed_private_hosts} if config.allowed_private_hosts else {}
        runtime = FunctionRuntime(
            layer=layer.layer,
            environment=settings_environment(**self.tables.settings(), **self.storage.settings(),
                                             **self.queues.settings(),
                                             notification_sender=config.notification_sender,
                                             registration=config.registration, **allowed),
            log_level=config.log_level,
            extra_layers={"catalogue": catalogue_layer(self, "CatalogueLayer")},
        )
        # What the functions, the processing job and the state machine may touch (their `Access` in
        # `stratus.resources`), growing as the parts are created: each part is granted when it is built.
        targets = Targets(tables=self.tables.tables, buckets=self.storage.buckets, queues=self.queues.queues,
                          email_identity_arn=email_identity_arn, dead_letter_queues=self.queues.dead_letter_queues)
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
        for reader in (self.processing.job_role, self.processing.sync_function):
            self.collections.grant_sources(reader, assets=True)
        targets = targets.with_(functions={"sync_processing": self.processing.sync_function},
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
        self.identity = Identity(self, "Identity", IdentityProps(stage=config.stage,
                                                                  removal_policy=config.data_removal_policy))
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
            ),
        )
        # the API's dry run (estimates, the sync size guard, order checks) searches the configured sources' items
        self.collections.grant_sources(self.api.function)
        targets = targets.with_(secrets={"token": self.api.token_secret})
        self.catalogue = Catalogue(self, "Catalogue", CatalogueProps(
            runtime=runtime, targets=targets, rest_api=self.api.rest_api, data_bucket=self.storage.data,
            ingest_queue=self.queues["ingest"], oidc_settings=self.identity.settings()))
        self.consumers = QueueConsumers(
            self, "Consumers", QueueConsumersProps(queues=self.queues, runtime=runtime, targets=targets)
        )
        self.monitoring = Monitoring(self, "Monitoring", MonitoringProps(
            stage=config.stage, rest_api=self.api.rest_api, queues=self.queues,
            state_machine=self.workflow.state_machine, alarm_email=config.alarm_email,
            functions={"api": self.api.function, "stac": self.catalogue.function, **self.consumers.functions,
                       "prepare_job": self.workflow.prepare_job, "reaper": self.workflow.reaper,
                       "collections_refresh": self.collections.refresh,
                       "sync_processing": self.processing.sync_function}))

        self._output("DataBucketName", self.storage.data.bucket_name, "Bucket of the STAC catalog and its assets")
        self._output("ResultsBucketName", self.storage.results.bucket_name, "Bucket of job runs and results")
        self._output("UserPoolId", self.identity.user_pool.user_pool_id, "Cognito user pool (OpenID Connect)")
        self._output("OidcIssuer", self.identity.issuer, "OpenID Connect issuer")
        self._output("MachineClientId", self.identity.machine_client.user_pool_client_id,
                     "App client for the client-credentials grant")
        self._output("AlarmTopicArn", self.monitoring.topic.topic_arn, "SNS topic every alarm notifies")
        self._output("StateMachineArn", self.workflow.state_machine.state_machine_arn, "Job state machine")
        self._output("JobQueueArn", self.processing.job_queue.job_queue_arn, "Batch job queue")
        for key, queue in self.queues.queues.items():
            spec = self.queues.specs[key]
            self._output(f"{spec.logical_name}Url", queue.queue_url, f"The {key} event queue")
            self._output(f"{spec.logical_name}DlqUrl", self.queues.dead_letter_queues[key].queue_url,
                         f"Dead-letter queue of the {key} queue")

    def _output(self, name: str, value: str, description: str) -> None:
        CfnOutput(self, name, value=value, description=description, export_name=f"{self.stack_name}-{name}")


def build(app: App, config: StratusConfig) -> StratusStack:
    """Add the Stratus stack of `config` to `app`, tagged with project and stage."""
    stack = StratusStack(app, config.stack_name, config=config)
    Tags.of(stack).add("project", constants.PROJECT_TAG)
    Tags.of(stack).add("stage", config.stage)
    if config.data_removal_policy == RemovalPolicy.DESTROY:
        Tags.of(stack).add("data", "ephemeral")
    return stack
