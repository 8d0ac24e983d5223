"""DynamoDB tables, defined once: the CDK app and the local runtime derive keys and indexes from these models."""

from __future__ import annotations

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, IncludeProjection, KeysOnlyProjection
from pynamodb.models import Model

from stratus.settings import Settings


class UsersByEmailIndex(GlobalSecondaryIndex):
    """Sparse: only accounts with an email (order-service customers); the password grant's user name."""

    class Meta:
        index_name = "users-by-email"
        projection = AllProjection()

    email = UnicodeAttribute(hash_key=True)


class UserModel(Model):
    """An account: an openEO user (`user_id` is the basic-auth login name), an OIDC subject, or an
    order-service customer (`user_id` is the customer's OAuth2 client id)."""

    class Meta:
        table_name = "stratus-users"

    user_id = UnicodeAttribute(hash_key=True)
    password_hash = UnicodeAttribute()
    name = UnicodeAttribute(null=True)
    email = UnicodeAttribute(null=True)  # stored lower-case
    roles = ListAttribute(of=UnicodeAttribute, default=list)
    created = UTCDateTimeAttribute()
    # order service (customers)
    active = BooleanAttribute(default=True)
    client_secret_hash = UnicodeAttribute(null=True)  # argon2, like passwords
    scopes = ListAttribute(of=UnicodeAttribute, default=list)  # e.g. "service:ndvi-composite", "admin"
    usage_limits = JSONAttribute(null=True)  # {service_id: {"limit": n, "interval_s": s}}
    password_reset_hash = UnicodeAttribute(null=True)
    password_reset_expires = UTCDateTimeAttribute(null=True)
    # generation of the account's tokens (claim `tv`): bumped on deactivation, password reset and secret
    # rotation, so every token issued before is refused
    token_version = NumberAttribute(null=True)
    users_by_email = UsersByEmailIndex()


# What a user's job, order and product lists (`GET /jobs`, `/orders`, `/products`) read from the user-jobs index:
# every attribute of a job but those only one job's own page shows (`JOB_ATTRIBUTES_NOT_LISTED`), so a list
# does not read (and pay for) every job's process graph. Checked against `JobModel` below.
USER_JOBS_LISTED_ATTRIBUTES = (
    "status", "run_id", "title", "description", "plan", "budget", "progress", "reason", "usage", "costs",
    "updated", "queued", "started", "finished", "service_id", "order", "error_code", "notified", "active",
)
JOB_ATTRIBUTES_NOT_LISTED = ("process", "job_options")


class UserJobsIndex(GlobalSecondaryIndex):
    """A user's jobs by creation time, without their process graphs (`USER_JOBS_LISTED_ATTRIBUTES`)."""

    class Meta:
        # renamed from "user-jobs" when its projection changed: DynamoDB cannot change an index's projection,
        # so CloudFormation builds this one (backfilled from the table) and deletes the old one
        index_name = "user-jobs-listed"
        projection = IncludeProjection(list(USER_JOBS_LISTED_ATTRIBUTES))

    user_id = UnicodeAttribute(hash_key=True)
    created = UTCDateTimeAttribute(range_key=True)


ACTIVE_MARK = "active"  # `JobModel.active` of a job with a run queued or running


class ActiveJobsIndex(GlobalSecondaryIndex):
    """Sparse: only jobs with a run in progress, by last update, so the reaper finds stale ones by a query."""

    class Meta:
        index_name = "active-jobs"
        projection = KeysOnlyProjection()

    active = UnicodeAttribute(hash_key=True)
    updated = UTCDateTimeAttribute(range_key=True)


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
    usage = JSONAttribute(null=True)  # openEO `usage` of the current run
    costs = NumberAttribute(null=True)  # of the current run, from its usage
    job_options = JSONAttribute(null=True)  # as given at creation: shown on the job, not used
    created = UTCDateTimeAttribute()
    updated = UTCDateTimeAttribute()
    queued = UTCDateTimeAttribute(null=True)
    started = UTCDateTimeAttribute(null=True)
    finished = UTCDateTimeAttribute(null=True)
    # order service: a job made from a published service for a customer
    service_id = UnicodeAttribute(null=True)
    order = JSONAttribute(null=True)  # the order as submitted: parameters, notification wishes
    error_code = UnicodeAttribute(null=True)  # why it failed; input errors make an order INVALID
    notified = UnicodeAttribute(null=True)  # the order status the customer was told about (sent once)
    active = UnicodeAttribute(null=True)  # ACTIVE_MARK while a run is queued or running, else absent
    user_jobs = UserJobsIndex()
    active_jobs = ActiveJobsIndex()


def _check_user_jobs_projection() -> None:
    keys = {"job_id", "user_id", "created"}  # the table's and the index's keys: always projected
    listed = keys | set(USER_JOBS_LISTED_ATTRIBUTES) | set(JOB_ATTRIBUTES_NOT_LISTED)
    if listed != set(JobModel.get_attributes()):
        raise AssertionError(f"USER_JOBS_LISTED_ATTRIBUTES must name every JobModel attribute but "
                             f"{JOB_ATTRIBUTES_NOT_LISTED}: {listed ^ set(JobModel.get_attributes())}")


_check_user_jobs_projection()


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


class ServiceModel(Model):
    """A service of the order API: a published, parameterised process (a user-defined process)."""

    class Meta:
        table_name = "stratus-services"

    service_id = UnicodeAttribute(hash_key=True)
    process = JSONAttribute()  # openEO process object: id, summary, description, parameters, process_graph
    published = BooleanAttribute(default=True)  # withdrawn services stay for the orders that used them
    default_usage_limit = JSONAttribute(null=True)  # {"limit": n, "interval_s": s}
    updated = UTCDateTimeAttribute()


class LimitModel(Model):
    """Atomic limits and uniqueness claims, one small item each, keyed `<kind>#...`: usage slots of order
    limits, the files-bytes counter and per-file sizes, fixed-window rate-limit counters, the one-account-
    per-e-mail claims and pending registrations. `expires` (epoch seconds) is the table's TTL attribute;
    DynamoDB deletes expired items only eventually (within days), so conditions check it themselves."""

    class Meta:
        table_name = "stratus-limits"

    limit_key = UnicodeAttribute(hash_key=True)
    expires = NumberAttribute(null=True)
    amount = NumberAttribute(null=True)  # counters and byte sizes
    holder = UnicodeAttribute(null=True)  # who holds a slot or claim (an order id, a customer id)
    data = JSONAttribute(null=True)  # a pending registration


class UserWebServicesIndex(GlobalSecondaryIndex):
    """A user's secondary web services by creation time."""

    class Meta:
        index_name = "user-web-services"
        projection = AllProjection()

    user_id = UnicodeAttribute(hash_key=True)
    created = UTCDateTimeAttribute(range_key=True)


class WebServiceModel(Model):
    """An openEO secondary web service (`/services`): XYZ map tiles of one finished job's result."""

    class Meta:
        table_name = "stratus-web-services"

    service_id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute()
    created = UTCDateTimeAttribute()
    document = JSONAttribute()  # type, job id, title, description, enabled, public, configuration, assets
    by_user = UserWebServicesIndex()


TABLES: dict[str, type[Model]] = {"users": UserModel, "jobs": JobModel, "logs": LogEntryModel,
                                  "process_graphs": ProcessGraphModel, "services": ServiceModel,
                                  "limits": LimitModel, "web_services": WebServiceModel}
# table key -> its TTL attribute (epoch seconds); CDK and the local runtime turn TTL on for these
TTL_ATTRIBUTES: dict[str, str] = {"limits": "expires"}


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
                "projection": index.Meta.projection.projection_type,  # "ALL", "KEYS_ONLY" or "INCLUDE"
                "non_key_attributes": list(getattr(index.Meta.projection, "non_key_attributes", None) or []),
            }
        )
    return {
        "partition_key": attr(model._hash_keyname),
        "sort_key": attr(model._range_keyname),
        "indexes": indexes,
    }
