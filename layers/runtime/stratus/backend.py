"""Wires the domain services to their AWS adapters for one deployment (the composition root)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING

from stratus import aws, resources
from stratus.settings import Settings

if TYPE_CHECKING:  # imported where used: a request imports only what it needs (cold start)
    from stratus.domain.web_services import WebServices
    from stratus.domain.ml_models import ModelReferences
    from stratus.domain.run_planning import LoadPlanner, RunPlanner
    from stratus.adapters.dry_run_catalog import DryRunCatalogReader
    from stratus.adapters.s3_catalog import S3CatalogReader
    from stratus.adapters.s3_collections import S3CollectionsStore
    from stratus.adapters.s3_results import S3ResultStore
    from stratus.adapters.secrets import SecretValue
    from stratus.adapters.webhooks import SqsWebhookQueue
    from stratus.adapters.workflow import StepFunctionsWorkflow
    from stratus.domain.auth import AuthService, OidcProvider
    from stratus.domain.catalog import CatalogService
    from stratus.domain.collection_refresh import CollectionRefresher
    from stratus.domain.customers import CustomerService
    from stratus.domain.estimate import CostModel
    from stratus.domain.files import FileService
    from stratus.domain.jobs import JobService
    from stratus.domain.limits import RateLimiter
    from stratus.domain.notifications import OrderNotifier
    from stratus.domain.orders import OrderService
    from stratus.domain.principal import CallerResolver
    from stratus.domain.reaper import Reaper
    from stratus.domain.runs import RunPreparation
    from stratus.domain.services import ServiceCatalog
    from stratus.domain.status import StatusService
    from stratus.domain.sync_processing import SyncProcessingService
    from stratus.domain.user_processes import UserProcessService
    from stratus.domain.webhooks import WebhookDeliverer
    from stratus.events import EventPublisher
    from stratus.outbound import OutboundGuard
    from stratus.store.jobs import DynamoJobRepository
    from stratus.store.logs import DynamoLogRepository

if TYPE_CHECKING:
    from stratus.adapters.parquet_index import ParquetIndex
    from stratus.domain.indexer import Indexer
    from stratus.domain.result_items import ResultCatalogue
    from stratus.domain.stac_api import StacCatalogue


@dataclass
class Backend:
    settings: Settings

    @classmethod
    def from_env(cls) -> "Backend":
        from stratus.store import models
        settings = Settings.from_env()
        models.configure(settings)
        return cls(settings)

    @cached_property
    def jobs_repository(self) -> DynamoJobRepository:
        from stratus.store.jobs import DynamoJobRepository
        return DynamoJobRepository()

    @cached_property
    def logs(self) -> DynamoLogRepository:
        from stratus.store.logs import DynamoLogRepository
        return DynamoLogRepository()

    @cached_property
    def signing_key(self) -> SecretValue:
        """The bearer-token key, shared by the openEO API and the order-service API (fetched on first use)."""
        from stratus.adapters.secrets import SecretValue
        return SecretValue(aws.client("secretsmanager"), self.settings.token_secret_id)

    @cached_property
    def rate_limiter(self) -> RateLimiter:
        from stratus.domain.limits import RateLimiter
        from stratus.store.limits import DynamoCounterStore
        return RateLimiter(DynamoCounterStore())

    @cached_property
    def callers(self) -> CallerResolver:
        """Who calls either API, from the credential the API layer parsed (one per request)."""
        from stratus.domain.principal import CallerResolver
        from stratus.store.accounts import DynamoAccountRepository
        return CallerResolver(DynamoAccountRepository(), self.signing_key,
                              oidc_verifiers={provider.id: provider.verifier for provider in self.oidc_providers},
                              verification_keys=self.signing_key.verification_keys)

    @cached_property
    def auth(self) -> AuthService:
        from stratus.domain.auth import AuthService
        from stratus.domain.limits import Rate
        from stratus.store.accounts import DynamoAccountRepository
        return AuthService(DynamoAccountRepository(), self.signing_key, resources.TOKEN_LIFETIME_S,
                           oidc_providers=self.oidc_providers, limiter=self.rate_limiter,
                           login_rate=Rate.of(resources.TOKEN_REQUESTS_PER_ACCOUNT),
                           lockout=Rate.of(resources.LOGIN_FAILURES_BEFORE_LOCKOUT))

    @cached_property
    def customers(self) -> CustomerService:
        """Order-service customers: registration, OAuth2 tokens, password resets, CRM."""
        from stratus.adapters.email import SesEmailSender
        from stratus.domain.customers import AccountRates, CustomerService
        from stratus.domain.limits import Rate
        from stratus.store.accounts import DynamoAccountRepository
        from stratus.store.customers import DynamoCustomerOrders
        from stratus.store.limits import DynamoPendingRegistrations
        sender, configuration_set = self.settings.notification_sender, self.settings.mail_configuration_set
        rates = AccountRates(
            registrations_per_client=Rate(self.settings.registrations_per_client_per_hour,
                                          resources.REGISTRATIONS_PER_CLIENT[1]),
            registrations_per_email=Rate.of(resources.REGISTRATIONS_PER_EMAIL),
            resets_per_client=Rate.of(resources.PASSWORD_RESETS_PER_CLIENT),
            resets_per_email=Rate.of(resources.PASSWORD_RESETS_PER_EMAIL),
            token_requests_per_account=Rate.of(resources.TOKEN_REQUESTS_PER_ACCOUNT),
            lockout=Rate.of(resources.LOGIN_FAILURES_BEFORE_LOCKOUT))
        return CustomerService(DynamoAccountRepository(), DynamoCustomerOrders(), self.signing_key,
                               resources.TOKEN_LIFETIME_S,
                               lambda: SesEmailSender(aws.client("ses"), sender, configuration_set),
                               pending=DynamoPendingRegistrations(), limiter=self.rate_limiter, rates=rates,
                               registration=self.settings.registration,
                               verify_ttl_s=resources.REGISTRATION_VERIFY_TTL_S,
                               on_account_change=lambda customer_id: self.callers.forget_account(customer_id),
                               default_scopes=resources.DEFAULT_CUSTOMER_SCOPES,
                               reset_ttl_s=resources.PASSWORD_RESET_TTL_S,
                               password_min_chars=resources.CUSTOMER_PASSWORD_MIN_CHARS,
                               password_max_chars=resources.CUSTOMER_PASSWORD_MAX_CHARS)

    @cached_property
    def oidc_providers(self) -> list[OidcProvider]:
        from stratus.adapters.oidc import CognitoAccessTokenVerifier
        from stratus.domain.auth import OidcProvider
        settings = self.settings
        if not settings.oidc_issuer:
            return []
        default_clients = []
        if settings.oidc_default_client_id:
            default_clients.append({"id": settings.oidc_default_client_id,
                                    "grant_types": resources.OIDC_PUBLIC_CLIENT_GRANTS,
                                    "redirect_urls": resources.OIDC_REDIRECT_URLS})
        return [OidcProvider(
            id=resources.OIDC_PROVIDER_ID, issuer=settings.oidc_issuer, title=resources.OIDC_PROVIDER_TITLE,
            scopes=["openid", f"{resources.OIDC_RESOURCE_SERVER}/{resources.OIDC_OPENEO_SCOPE}"],
            verifier=CognitoAccessTokenVerifier(settings.oidc_issuer, settings.oidc_client_id_list),
            default_clients=default_clients)]

    @cached_property
    def order_notifier(self) -> OrderNotifier:
        """Tells customers when their orders end (the status manager uses it; webhooks are only enqueued)."""
        from stratus.adapters.email import SesEmailSender
        from stratus.domain.notifications import OrderNotifier
        from stratus.store.order_notices import DynamoOrderEndStore
        return OrderNotifier(DynamoOrderEndStore(),
                             SesEmailSender(aws.client("ses"), self.settings.notification_sender,
                                            self.settings.mail_configuration_set),
                             webhooks=self.webhook_queue)

    @cached_property
    def outbound(self) -> OutboundGuard:
        """Checks and pins requests to URLs users give us (webhooks)."""
        from stratus.outbound import OutboundGuard
        return OutboundGuard(self.settings.outbound_allow_list)

    @cached_property
    def webhook_queue(self) -> SqsWebhookQueue:
        from stratus.adapters.webhooks import SqsWebhookQueue
        return SqsWebhookQueue(aws.client("sqs"), self.settings.webhook_queue_url)

    @cached_property
    def webhooks(self) -> WebhookDeliverer:
        """Delivers order webhooks from the webhooks queue (the webhook function uses it)."""
        from stratus.adapters.webhooks import GuardedWebhookPoster
        from stratus.domain.webhooks import WebhookDeliverer
        from stratus.outbound import Timeouts
        from stratus.store.order_notices import DynamoWebhookTargets
        timeouts = Timeouts(connect_s=resources.WEBHOOK_CONNECT_TIMEOUT_S, read_s=resources.WEBHOOK_READ_TIMEOUT_S,
                            budget_s=resources.WEBHOOK_BUDGET_S)
        return WebhookDeliverer(DynamoWebhookTargets(), GuardedWebhookPoster(self.outbound, timeouts),
                                self.signing_key, self.events,
                                max_attempts=resources.QUEUES["webhooks"].max_receive_count,
                                retry_delay_s=resources.WEBHOOK_RETRY_DELAY_S)

    @cached_property
    def cost_model(self) -> CostModel:
        """Prices estimates and finished runs alike, so a run as fast as estimated costs what was estimated."""
        from stratus.domain.estimate import CostModel
        return CostModel(resources.COST_PER_GB_PROCESSED, resources.PROCESSING_SECONDS_PER_GB,
                         resources.MIN_JOB_DURATION_S)

    @cached_property
    def workflow(self) -> StepFunctionsWorkflow:
        from stratus.adapters.workflow import StepFunctionsWorkflow
        return StepFunctionsWorkflow(aws.LazyClient("stepfunctions"), self.settings.state_machine_arn,
                                     aws.LazyClient("batch"))

    @cached_property
    def jobs(self) -> JobService:
        from stratus.domain.jobs import JobService
        return JobService(self.jobs_repository, self.workflow, catalog=self.dry_run_catalog,
                          cost_model=self.cost_model, artifacts=self.results, logs=self.logs,
                          events=self.events)

    @cached_property
    def status(self) -> StatusService:
        """Applies status events (the status consumer)."""
        from stratus.domain.status import StatusService
        return StatusService(self.jobs_repository, self.logs, artifacts=self.results, notices=self.order_notifier,
                             cost_model=self.cost_model, documents=self.results)

    @cached_property
    def run_preparation(self) -> RunPreparation:
        """PrepareJob: a job's run snapshot, frozen for the Batch job."""
        from stratus.domain.runs import RunPreparation
        return RunPreparation(self.jobs_repository, self.user_processes, self.results, models=self.model_references)

    @cached_property
    def model_references(self) -> ModelReferences:
        """What `load_ml_model` references name: models of the caller's own finished jobs."""
        from stratus.domain.ml_models import ModelReferences
        return ModelReferences(self.jobs_repository, self.results)

    @cached_property
    def run_planner(self) -> RunPlanner:
        """PlanRun without the engine: one task, one big task or a fan-out over tiles, from the run's dry run."""
        return self.run_planner_with()

    def run_planner_with(self, loads: LoadPlanner | None = None) -> RunPlanner:
        """PlanRun with the engine's own planning of the loads (`stratus_processing.run_loads`) when given."""
        from stratus.domain.fanout_plan import TaskBudget, TaskSize, TileBounds
        from stratus.domain.run_planning import RunPlanner
        settings = self.settings
        budget = TaskBudget(TaskSize(resources.PROCESSING_VCPU, resources.PROCESSING_MEMORY_MB),
                            max_load_bytes=settings.fanout_task_load_bytes or None)
        bounds = TileBounds(settings.fanout_min_tile_px, settings.fanout_max_tile_px, settings.fanout_tile_block_px)
        return RunPlanner(self.results, self.dry_run_catalog, settings.results_bucket, budget, bounds,
                          read_records=self.results.read_documents, loads=loads)

    @cached_property
    def reaper(self) -> Reaper:
        """Ends jobs whose run was lost (scheduled)."""
        from stratus.domain.reaper import Reaper
        policy = replace(resources.REAPER_POLICY, quiet_after_s=self.settings.reaper_stale_after_s)
        return Reaper(self.jobs_repository, self.workflow, self.events, policy)

    @cached_property
    def catalog_reader(self) -> S3CatalogReader:
        from stratus.adapters.s3_catalog import S3CatalogReader
        return S3CatalogReader(aws.LazyClient("s3"), self.settings.data_bucket)

    @cached_property
    def dry_run_catalog(self) -> DryRunCatalogReader:
        """What estimates, the sync size guard and order checks read: own and configured remote collections
        (their items searched at the source, bounded in time and count)."""
        from stratus.adapters.dry_run_catalog import DryRunCatalogReader, GuardedItemSearch
        searcher = GuardedItemSearch(self.settings.allowed_private_hosts, lambda: aws.client("secretsmanager"))
        return DryRunCatalogReader(self.catalog_reader, self.collections_store, searcher)

    @cached_property
    def collections_store(self) -> S3CollectionsStore:
        """The collections configuration and the cached metadata of its remote entries (read-only use)."""
        from stratus.adapters.s3_collections import S3CollectionsStore
        return S3CollectionsStore(aws.LazyClient("s3"), self.settings.data_bucket)

    @cached_property
    def catalog(self) -> CatalogService:
        from stratus.domain.catalog import CatalogService
        return CatalogService(self.catalog_reader, self.collections_store)

    @cached_property
    def collection_refresher(self) -> CollectionRefresher:
        """Fetches the configured remote collections' documents into the cache (scheduled, admin command)."""
        from stratus.adapters.s3_collections import S3CollectionsStore
        from stratus.adapters.stac_sources import GuardedSourceFetcher
        from stratus.domain.collection_refresh import CollectionRefresher
        store = S3CollectionsStore(aws.client("s3"), self.settings.data_bucket, cache_seconds=0)
        fetcher = GuardedSourceFetcher(self.settings.allowed_private_hosts, lambda: aws.client("secretsmanager"),
                                       lambda: aws.client("s3"))
        return CollectionRefresher(store, store, fetcher)

    @cached_property
    def sync_processing(self) -> SyncProcessingService:
        from stratus.adapters.lambda_processor import LambdaSyncProcessor
        from stratus.domain.sync_processing import SyncProcessingService
        processor = LambdaSyncProcessor(aws.client("lambda"), self.settings.sync_function_name)
        return SyncProcessingService(self.dry_run_catalog, self.results, processor, self.settings.presign_expiry_s,
                                     user_processes=self.user_processes, models=self.model_references)

    @cached_property
    def user_processes(self) -> UserProcessService:
        from stratus.domain.user_processes import UserProcessService
        from stratus.store.process_graphs import DynamoProcessGraphRepository
        return UserProcessService(DynamoProcessGraphRepository())

    @cached_property
    def web_services(self) -> WebServices:
        """openEO secondary web services: XYZ tiles of job results (served by the tiles function)."""
        from stratus.domain.web_services import WebServices
        from stratus.store.web_services import DynamoWebServiceRepository
        return WebServices(DynamoWebServiceRepository(), lambda: self.jobs, self.results)

    @cached_property
    def results(self) -> S3ResultStore:
        from stratus.adapters.s3_results import S3ResultStore
        return S3ResultStore(aws.LazyClient("s3"), self.settings.results_bucket)

    @cached_property
    def files(self) -> FileService:
        from stratus.adapters.s3_files import S3FileStore
        from stratus.domain.files import FileService
        from stratus.store.limits import DynamoFileQuotaLedger
        return FileService(S3FileStore(aws.client("s3"), self.settings.files_bucket),
                           quota_bytes=self.settings.files_quota_bytes,
                           max_upload_bytes=resources.FILES_MAX_UPLOAD_BYTES,
                           inline_max_bytes=resources.FILES_INLINE_DOWNLOAD_BYTES,
                           presign_expiry_s=self.settings.presign_expiry_s,
                           max_path_bytes=resources.FILES_MAX_PATH_BYTES, ledger=DynamoFileQuotaLedger())

    @cached_property
    def events(self) -> EventPublisher:
        """The status and log queues (the API sends the end of invalid orders and `POST /api/v1/logging`)."""
        from stratus.events import EventPublisher
        return EventPublisher(aws.LazyClient("sqs"), self.settings.status_queue_url, self.settings.log_queue_url)

    @cached_property
    def services(self) -> ServiceCatalog:
        """Order-service services: shipped definitions merged with the services table."""
        from stratus.domain.services import ServiceCatalog
        from stratus.store.services import DynamoServiceRepository
        return ServiceCatalog(DynamoServiceRepository(), self.settings.order_collection_id)

    @cached_property
    def orders(self) -> OrderService:
        """Order-service orders: jobs made from services, started through `jobs`."""
        from stratus.domain.limits import UsageSlots
        from stratus.domain.orders import OrderService
        from stratus.store.limits import DynamoSlotStore
        from stratus.store.orders import DynamoOrderRepository
        return OrderService(self.services, DynamoOrderRepository(), self.jobs, self.events, self.logs,
                            usage_slots=UsageSlots(DynamoSlotStore()), catalog=self.dry_run_catalog,
                            max_area_km2=resources.ORDER_MAX_AREA_KM2, check_url=self.outbound.check)

    # --- the catalogue (STAC API and indexer); DuckDB is imported only by the functions that use it ---------

    @cached_property
    def catalogue_index(self) -> "ParquetIndex":
        from stratus.adapters.parquet_index import ParquetIndex

        return ParquetIndex(aws.client("s3"), self.settings.data_bucket)

    @cached_property
    def indexer(self) -> "Indexer":
        from stratus.adapters.ingest_queue import S3IngestObjects, SqsRejects
        from stratus.domain.indexer import Indexer

        return Indexer(self.catalogue_index, S3IngestObjects(aws.client("s3"), self.settings.data_bucket),
                       SqsRejects(aws.client("sqs"), self.settings.ingest_dlq_url),
                       compact_after_files=resources.INDEX_COMPACT_AFTER_FILES)

    @cached_property
    def result_catalogue(self) -> "ResultCatalogue":
        """Finished runs' results into their owner's catalogue collection (the StatusConsumer)."""
        from stratus.adapters.ingest_queue import SqsIngestQueue
        from stratus.domain.result_items import ResultCatalogue

        return ResultCatalogue(self.jobs_repository, self.results,
                               SqsIngestQueue(aws.client("sqs"), self.settings.ingest_queue_url),
                               self.settings.results_bucket)

    @cached_property
    def stac_catalogue(self) -> "StacCatalogue":
        from stratus.adapters.ingest_queue import SqsIngestQueue
        from stratus.adapters.remote_stac import GuardedRemoteSearch
        from stratus.collections_config import OWN
        from stratus.domain.stac_api import StacCatalogue

        def remote_sources() -> dict:
            return {name: source for source in self.collections_store.config().collections
                    if source.kind != OWN for name in source.names}

        return StacCatalogue(self.catalog, self.catalogue_index,
                             SqsIngestQueue(aws.client("sqs"), self.settings.ingest_queue_url),
                             remote_sources=remote_sources, remote_search=GuardedRemoteSearch(self.outbound),
                             max_item_bytes=resources.STAC_MAX_INGEST_ITEM_BYTES,
                             harvest_max_items=resources.HARVEST_MAX_ITEMS, harvest_budget_s=resources.HARVEST_BUDGET_S)
