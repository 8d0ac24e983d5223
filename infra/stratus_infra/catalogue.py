"""The catalogue (docs/catalog.md): the STAC API function behind `/stac` on the REST API, the S3 event that feeds
item JSON put under the ingest prefix of the data bucket into the ingest queue, and the layer with DuckDB & co.
The ingest queue, its DLQ and the indexer draining it come from `Queues`/`QueueConsumers` (`resources.QUEUES`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stratus.resources import FUNCTIONS, INGEST_ROOT
from stratus_infra import constants
from stratus_infra.access import Targets
from stratus_infra.functions import FunctionRuntime, StratusFunction, settings_environment
from stratus_infra.layer import RuntimeLayer, RuntimeLayerProps

STAC_PATH = "stac"  # first path segment of the STAC API on the REST API
CATALOGUE_LAYER_SOURCE = "layers/catalogue"


def catalogue_layer(scope: Construct, construct_id: str) -> lambda_.ILayerVersion:
    """DuckDB, cql2, jsonschema-rs and shapely (~180 MB unzipped; with the runtime layer ~245 MB of Lambda's 250)."""
    source = constants.REPO_ROOT / CATALOGUE_LAYER_SOURCE
    return RuntimeLayer(scope, construct_id, RuntimeLayerProps(
        source=source, constraints=source / "constraints.txt",
        description="Stratus catalogue: DuckDB, cql2, jsonschema-rs, shapely")).layer


@dataclass(frozen=True)
class CatalogueProps:
    """Props of `Catalogue`.

    :param runtime: Layers (with "catalogue"), environment and logging of the STAC API function.
    :param targets: What the STAC function touches (`FUNCTIONS["stac"].access`), the token secret included.
    :param rest_api: The REST API that gets the `/stac` routes.
    :param data_bucket: The bucket whose ingest prefix feeds the ingest queue.
    :param ingest_queue: The ingest queue (`Queues["ingest"]`).
    :param oidc_settings: `Settings` fields for OpenID Connect (`Identity.settings()`). @default {} (off)
    """

    runtime: FunctionRuntime
    targets: Targets
    rest_api: apigw.RestApi
    data_bucket: s3.IBucket
    ingest_queue: sqs.IQueue
    oidc_settings: dict[str, str] = field(default_factory=dict)


class Catalogue(Construct):
    """`function`: the STAC API, on `/stac` and `/stac/{proxy+}` of the REST API."""

    def __init__(self, scope: Construct, construct_id: str, props: CatalogueProps) -> None:
        super().__init__(scope, construct_id)
        spec = FUNCTIONS["stac"]
        self.function = StratusFunction(self, spec.logical_name, spec=spec, runtime=props.runtime,
                                        targets=props.targets,
                                        environment=settings_environment(**props.oidc_settings))
        integration = apigw.LambdaIntegration(self.function)
        root = props.rest_api.root.add_resource(STAC_PATH)
        root.add_method("ANY", integration)
        root.add_resource("{proxy+}").add_method("ANY", integration)
        props.data_bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED, s3n.SqsDestination(props.ingest_queue),
            s3.NotificationKeyFilter(prefix=INGEST_ROOT))
