"""DynamoDB tables, derived from the PynamoDB models (`stratus.store.models.TABLES` and `key_schema`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct
from pynamodb.models import Model

from stratus.store.models import TABLES, TTL_ATTRIBUTES, key_schema

_ATTRIBUTE_TYPES = {
    "S": dynamodb.AttributeType.STRING,
    "N": dynamodb.AttributeType.NUMBER,
    "B": dynamodb.AttributeType.BINARY,
}


def _attribute(key: dict | None) -> dynamodb.Attribute | None:
    if key is None:
        return None
    try:
        return dynamodb.Attribute(name=key["name"], type=_ATTRIBUTE_TYPES[key["type"]])
    except KeyError:
        raise ValueError(f"key attribute {key} has no DynamoDB key type (S, N or B)") from None


@dataclass(frozen=True)
class TablesProps:
    """Props of `Tables`.

    :param models: Table key (as in `Settings.<key>_table`) -> PynamoDB model whose keys and global secondary
        indexes define the table. @default `stratus.store.models.TABLES`
    :param removal_policy: What happens to the tables when the stack is deleted. RETAIN also turns on deletion
        protection. @default RETAIN
    :param point_in_time_recovery: Continuous backups (35 days). @default True
    :param encryption: Server-side encryption; the AWS-managed key costs nothing extra. @default AWS_MANAGED
    """

    models: Mapping[str, type[Model]] = field(default_factory=lambda: dict(TABLES))
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN
    point_in_time_recovery: bool = True
    encryption: dynamodb.TableEncryption = dynamodb.TableEncryption.AWS_MANAGED


class Tables(Construct):
    """One on-demand table per model; `tables[key]` is the table, `settings()` its names for `Settings`."""

    def __init__(self, scope: Construct, construct_id: str, props: TablesProps | None = None) -> None:
        super().__init__(scope, construct_id)
        props = props or TablesProps()
        self.tables: dict[str, dynamodb.Table] = {}
        for key, model in props.models.items():
            schema = key_schema(model)
            table = dynamodb.Table(
                self,
                key.title(),
                partition_key=_attribute(schema["partition_key"]),
                sort_key=_attribute(schema["sort_key"]),
                billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=props.point_in_time_recovery
                ),
                encryption=props.encryption,
                removal_policy=props.removal_policy,
                deletion_protection=props.removal_policy == RemovalPolicy.RETAIN,
                time_to_live_attribute=TTL_ATTRIBUTES.get(key),
            )
            for index in schema["indexes"]:
                table.add_global_secondary_index(
                    index_name=index["name"],
                    partition_key=_attribute(index["partition_key"]),
                    sort_key=_attribute(index["sort_key"]),
                    projection_type=dynamodb.ProjectionType(index["projection"]),
                    non_key_attributes=index["non_key_attributes"] or None,
                )
            self.tables[key] = table

    def __getitem__(self, key: str) -> dynamodb.Table:
        return self.tables[key]

    def settings(self) -> dict[str, str]:
        """`Settings` field -> table name, e.g. `{"jobs_table": <name>}`."""
        return {f"{key}_table": table.table_name for key, table in self.tables.items()}
