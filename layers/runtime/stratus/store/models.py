"""DynamoDB tables, defined once: the CDK app and the local runtime derive keys and indexes from these models."""

from __future__ import annotations

from pynamodb.attributes import (
    JSONAttribute,
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from stratus.settings import Settings


class UserModel(Model):
    """An account; `user_id` is the login name for basic auth."""

    class Meta:
        table_name = "stratus-users"

    user_id = UnicodeAttribute(hash_key=True)
    password_hash = UnicodeAttribute()
    name = UnicodeAttribute(null=True)
    email = UnicodeAttribute(null=True)
    roles = ListAttribute(of=UnicodeAttribute, default=list)
    created = UTCDateTimeAttribute()


class UserJobsIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "user-jobs"
        projection = AllProjection()

    user_id = UnicodeAttribute(hash_key=True)
    created = UTCDateTimeAttribute(range_key=True)


class JobModel(Model):
    """A batch job (openEO) or order (order-service): one model for both."""

    class Meta:
        table_name = "stratus-jobs"

    job_id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute()
    status = UnicodeAttribute(default="created")
    run_id = UnicodeAttribute(null=True)  # the current run; events of older runs are ignored
    title = UnicodeAttribute(null=True)
    description = UnicodeAttribute(null=True)
    process = JSONAttribute()  # {"process_graph": {...}, ...} as submitted
    plan = UnicodeAttribute(null=True)
    budget = NumberAttribute(null=True)
    progress = NumberAttribute(null=True)
    reason = UnicodeAttribute(null=True)
    usage = JSONAttribute(null=True)
    created = UTCDateTimeAttribute()
    updated = UTCDateTimeAttribute()
    queued = UTCDateTimeAttribute(null=True)
    started = UTCDateTimeAttribute(null=True)
    finished = UTCDateTimeAttribute(null=True)
    user_jobs = UserJobsIndex()


class LogEntryModel(Model):
    """One job log entry; `log_id` sorts by time so a query returns entries in order."""

    class Meta:
        table_name = "stratus-logs"

    job_id = UnicodeAttribute(hash_key=True)
    log_id = UnicodeAttribute(range_key=True)
    level = UnicodeAttribute()
    message = UnicodeAttribute()
    time = UTCDateTimeAttribute()
    code = UnicodeAttribute(null=True)
    path = JSONAttribute(null=True)
    data = JSONAttribute(null=True)


class ProcessGraphModel(Model):
    """A user-defined process (openEO `/process_graphs`), private to its owner."""

    class Meta:
        table_name = "stratus-process-graphs"

    user_id = UnicodeAttribute(hash_key=True)
    process_graph_id = UnicodeAttribute(range_key=True)
    process = JSONAttribute()  # the full process object as stored: id, summary, parameters, process_graph...
    updated = UTCDateTimeAttribute()


TABLES: dict[str, type[Model]] = {"users": UserModel, "jobs": JobModel, "logs": LogEntryModel,
                                  "process_graphs": ProcessGraphModel}


def configure(settings: Settings) -> None:
    """Bind the models to the table names of this deployment."""
    for key, model in TABLES.items():
        name = getattr(settings, f"{key}_table")
        if model.Meta.table_name != name:
            model.Meta.table_name = name
            model._connection = None  # PynamoDB caches the table name inside the connection


def key_schema(model: type[Model]) -> dict:
    """Keys and indexes of a model in a neutral form, for CDK and for creating tables locally."""
    attrs = model.get_attributes()

    def attr(name: str | None):
        return None if name is None else {"name": name, "type": attrs[name].attr_type if name in attrs else "S"}

    indexes = []
    for index in model._indexes.values():
        index_attrs = index.Meta.attributes
        hash_name = next(n for n, a in index_attrs.items() if a.is_hash_key)
        range_name = next((n for n, a in index_attrs.items() if a.is_range_key), None)
        indexes.append(
            {
                "name": index.Meta.index_name,
                "partition_key": {"name": hash_name, "type": index_attrs[hash_name].attr_type},
                "sort_key": None if range_name is None
                else {"name": range_name, "type": index_attrs[range_name].attr_type},
            }
        )
    return {
        "partition_key": attr(model._hash_keyname),
        "sort_key": attr(model._range_keyname),
        "indexes": indexes,
    }
