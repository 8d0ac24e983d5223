"""Orders of the order-service API (`/api/v1/services/{service}/orders`, `/api/v1/orders`,
`/api/v1/products`, `/api/v1/logging`).

An order IS a batch job: a row of the jobs table owned by the customer, with the service's process
graph (the order's parameter values bound into it), `service_id` and the order as submitted in
`order`. It runs through `JobService.start_job` (Step Functions -> Batch) like any openEO job and
shows up in the customer's openEO `GET /jobs`; the order status is derived from the job status:

    created -> RECEIVED, queued -> QUEUED, running -> RUNNING, finished -> SUCCESS,
    error -> FAILED, or INVALID when the job's `error_code` is an input error, canceled -> CANCELLED

(the mapping lives in `stratus.domain.lifecycle`)

Placing an order, in this order: the caller's scope for the service (403 ScopeMissing), the service
exists and is published (404), the request and its parameter values against the service's schemas
(400 InvalidRequest), an earlier order with the same `Idempotency-Key` (the same order again, or 409
IdempotencyConflict for a different request), the usage limit (429 UsageLimitExceeded), then the job.

Input that can never succeed (bad geometry, too large an area, no data for the area and dates) is
still accepted as an order, but its job is not started: a status event moves it to `error` with an
input `error_code` through the status queue, so the status consumer records its end (and notifies)
like every other end, and the order reads INVALID.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from stratus.domain.estimate import DryRunCatalog, estimate_graph
from stratus.domain.jobs import Job
from stratus.domain.lifecycle import (
    AREA_TOO_LARGE,
    GEOMETRY_INVALID,
    NO_DATA_AVAILABLE,
    ORDER_STATUSES_WITH_REASON,
    JobStatus,
    order_status,
)
from stratus.domain.limits import LimitReached, UsageSlots
from stratus.domain.logs import LogEntry, entry_from_event, levels_at_least
from stratus.domain.order_inputs import (
    area_km2,
    bbox_of,
    bind_parameters,
    check_parameters,
    geojson_parameters,
    geometry_problems,
    parse_date,
    parse_datetime,
)
from stratus.domain.principal import LOGGING_SCOPE, Principal
from stratus.domain.services import Service, ServiceCatalog
from stratus import events as event_types  # its models load on first use
from stratus.events import LogLevel, isoformat_z, utcnow
from stratus.order_errors import (
    IdempotencyConflictException,
    InvalidRequestException,
    OrderNotFoundException,
    ScopeMissingException,
    UsageLimitExceededException,
)
from stratus.outbound import OutboundRefused

if TYPE_CHECKING:  # the pydantic event models load when an event is made (`stratus.events`)
    from stratus.events import LogEvent, StatusEvent

ORDER_BODY_FIELDS = ("parameters", "notify", "title")
NOTIFY_FIELDS = ("email", "webhook_url")
MAX_TITLE_CHARS = 200
MAX_WEBHOOK_URL_CHARS = 2048
MAX_IDEMPOTENCY_KEY_CHARS = 255
MAX_LOG_MESSAGE_CHARS = 4000
MAX_LOG_DATA_BYTES = 64 * 1024  # an SQS message holds 256 KB; the entry is stored in one DynamoDB item
MAX_COMPONENT_CHARS = 100
LOG_LEVELS = ("INFO", "WARNING", "ERROR")  # what POST /logging accepts
MAX_REASON_CHARS = 2000


@dataclass
class Order:
    """A job made from a service for a customer, with the order as submitted (its document)."""

    job: Job  # its process is the service's graph with the parameters bound
    service_id: str
    parameters: dict[str, Any]
    notify: dict[str, Any]
    request_hash: str
    idempotency_key: str | None = None

    @property
    def order_id(self) -> str:
        return self.job.job_id

    @property
    def order_status(self) -> str:
        return order_status(self.job.status, self.job.error_code)

    def document(self) -> dict[str, Any]:
        """What the jobs table's `order` attribute holds: the order as submitted. The status consumer
        reads `notify` from it when the order ends."""
        return {"parameters": self.parameters, "notify": self.notify, "request_hash": self.request_hash,
                "idempotency_key": self.idempotency_key}

    @classmethod
    def from_document(cls, job: Job, service_id: str, document: Mapping[str, Any] | None) -> "Order":
        document = document or {}
        return cls(job=job, service_id=service_id, parameters=document.get("parameters") or {},
                   notify=document.get("notify") or {}, request_hash=document.get("request_hash") or "",
                   idempotency_key=document.get("idempotency_key"))


class OrderRepository(Protocol):
    def add(self, order: Order) -> bool:
        """Stores a new order (a job row) unless its id exists; False then."""
        ...

    def get(self, order_id: str) -> Order | None:
        """The order, or None when there is no job with this id or the job is not an order."""
        ...

    def list_for_user(self, user_id: str, limit: int, after: str | None,
                      status: JobStatus | None = None) -> tuple[list[Order], str | None]:
        """Newest first."""
        ...

    def list_all(self, limit: int, after: str | None,
                 status: JobStatus | None = None) -> tuple[list[Order], str | None]: ...

    def created_since(self, user_id: str, service_id: str, since: datetime) -> list[datetime]:
        """Creation times of the user's orders of a service created at or after `since`."""
        ...

    def usage_limits(self, user_id: str) -> dict[str, Any]:
        """The customer's own usage limits per service (`UserModel.usage_limits`)."""
        ...


class OrderJobs(Protocol):
    """What orders need of `JobService`."""

    def start_job(self, user_id: str, job_id: str) -> bool: ...

    def stop_job(self, user_id: str, job_id: str) -> bool: ...


class EventSink(Protocol):
    """`stratus.events.EventPublisher`: the status and log queues."""

    def status(self, event: StatusEvent) -> None: ...

    def log(self, event: LogEvent) -> None: ...


class OrderLogs(Protocol):
    def add(self, entry: LogEntry) -> None: ...

    def list(self, job_id: str, after: str | None, limit: int, levels: Sequence[str] | None = None
             ) -> list[LogEntry]: ...


@dataclass(frozen=True)
class InputProblem:
    """Why an order can never succeed."""

    error_code: str
    reason: str


# --- pure helpers -----------------------------------------------------------------------------------

def idempotent_order_id(user_id: str, idempotency_key: str) -> str:
    """The same key of the same customer always names the same order (and no other customer's)."""
    digest = hashlib.sha256(f"{user_id}\x00{idempotency_key}".encode()).hexdigest()
    return f"j-{digest[:32]}"


def request_fingerprint(service_id: str, body: Mapping[str, Any]) -> str:
    """Identifies the request an Idempotency-Key was used for (key order and whitespace don't matter)."""
    canonical = json.dumps({"service": service_id, **{k: body.get(k) for k in ORDER_BODY_FIELDS}},
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def usage_retry_after(created: Iterable[datetime], limit: int, interval_s: int, now: datetime) -> datetime | None:
    """None while fewer than `limit` orders were created in the last `interval_s` seconds (at or after
    `now - interval_s`); else when enough of them have left the interval for one more order."""
    since = now - timedelta(seconds=interval_s)
    recent = sorted(t for t in created if t >= since)
    if len(recent) < limit:
        return None
    if limit <= 0:
        return now + timedelta(seconds=interval_s)
    return recent[len(recent) - limit] + timedelta(seconds=interval_s)


def check_notify(value: Any, check_url: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """`notify`: `{"email": true|false (default true), "webhook_url": "https://..." (optional)}`.

    `check_url` (`stratus.outbound.OutboundGuard.check`) resolves the webhook's host and raises
    `OutboundRefused` unless it is a public address (or allow-listed); the refusal says no more than that,
    whether the name did not resolve or resolved to a private address."""
    if value is None:
        return {"email": True, "webhook_url": None}
    if not isinstance(value, Mapping):
        raise InvalidRequestException(reason="`notify` must be an object {email, webhook_url}")
    unknown = sorted(set(value) - set(NOTIFY_FIELDS))
    if unknown:
        raise InvalidRequestException(reason=f"unknown field(s) in `notify`: {', '.join(unknown)}")
    email = value.get("email", True)
    if not isinstance(email, bool):
        raise InvalidRequestException(reason="`notify.email` must be true or false")
    url = value.get("webhook_url")
    if url is not None:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("https", "http") or not parts.hostname \
                or len(url) > MAX_WEBHOOK_URL_CHARS or any(c.isspace() for c in url):
            raise InvalidRequestException(reason="`notify.webhook_url` must be an http(s) URL")
        if check_url is not None:
            try:
                check_url(url)
            except OutboundRefused:
                raise InvalidRequestException(reason="`notify.webhook_url`: the URL's host is not a public address") \
                    from None
    return {"email": email, "webhook_url": url}


def check_idempotency_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not 0 < len(key) <= MAX_IDEMPOTENCY_KEY_CHARS or not key.isprintable():
        raise InvalidRequestException(
            reason=f"the Idempotency-Key header must have 1 to {MAX_IDEMPOTENCY_KEY_CHARS} printable characters")
    return key


def load_nodes(process_graph: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    return [(node_id, node) for node_id, node in process_graph.items()
            if isinstance(node, Mapping) and node.get("process_id") == "load_collection"]


def check_periods(process_graph: Mapping[str, Any]) -> list[str]:
    """Each bound `load_collection` period must be dates (or date-times) with the end after the start."""
    problems = []
    for node_id, node in load_nodes(process_graph):
        extent = (node.get("arguments") or {}).get("temporal_extent")
        if not isinstance(extent, list) or len(extent) != 2:
            continue
        start, end = (_instant(value) for value in extent)
        if start is not None and end is not None and end <= start:
            problems.append(f"the period {extent[0]} to {extent[1]} is empty: the end (excluded) must be after "
                            f"the start")
    return problems


def _instant(value: Any) -> datetime | None:
    day = parse_date(value)
    if day is not None:
        return datetime(day.year, day.month, day.day)
    moment = parse_datetime(value)
    return moment.replace(tzinfo=None) if moment is not None else None


def input_problem(service: Service, parameters: Mapping[str, Any], bound_graph: Mapping[str, Any],
                  catalog: DryRunCatalog | None, max_area_km2: float) -> InputProblem | None:
    """Why the order can never succeed, or None: bad geometry, too large an area, no data."""
    names = geojson_parameters(service.parameters)
    for name in names:
        if name in parameters:
            problems = geometry_problems(parameters[name])
            if problems:
                return InputProblem(GEOMETRY_INVALID, f"The geometry of '{name}' is invalid: {'; '.join(problems)}.")
    for name in names:
        if name in parameters:
            area = area_km2(parameters[name])
            if area > max_area_km2:
                return InputProblem(AREA_TOO_LARGE, f"The area of '{name}' is {area:,.0f} km², more than the "
                                                    f"{max_area_km2:,.0f} km² an order may cover.")
    if catalog is not None:
        return no_data_problem(bound_graph, catalog)
    return None


def no_data_problem(bound_graph: Mapping[str, Any], catalog: DryRunCatalog) -> InputProblem | None:
    """A dry run over the STAC items (`estimate_graph`): a `load_collection` of a known collection
    that finds no item for its area (bounding box) and period means the order can never produce
    anything. An unknown collection is the deployment's problem, not the order's: not reported; nor is a
    collection whose source could not be searched now (no evidence of missing data)."""
    for node_id, node in load_nodes(bound_graph):
        arguments = dict(node.get("arguments") or {})
        collection_id = arguments.get("id")
        if not isinstance(collection_id, str) or catalog.collection(collection_id) is None:
            continue
        extent = arguments.get("spatial_extent")
        if isinstance(extent, Mapping) and "type" in extent:
            box = bbox_of(extent)
            if box is None:
                continue
            arguments["spatial_extent"] = {"west": box[0], "south": box[1], "east": box[2], "north": box[3],
                                           "crs": 4326}
        estimate = estimate_graph({node_id: {**node, "arguments": arguments}}, catalog.collection, catalog.items)
        if estimate.loads and estimate.loads[0].dates == 0:
            period = arguments.get("temporal_extent")
            when = f" between {period[0]} and {period[1]} (excluded)" if isinstance(period, list) and len(period) == 2 \
                else ""
            return InputProblem(NO_DATA_AVAILABLE, f"There is no data of collection '{collection_id}' for the "
                                                   f"area{when}.")
    return None


# --- the service ------------------------------------------------------------------------------------

class OrderService:
    def __init__(self, services: ServiceCatalog, orders: OrderRepository, jobs: OrderJobs, events: EventSink,
                 logs: OrderLogs, *, usage_slots: UsageSlots, catalog: DryRunCatalog | None = None,
                 max_area_km2: float, clock: Callable[[], datetime] = utcnow,
                 check_url: Callable[[str], Any] | None = None) -> None:
        self._services = services
        self._orders = orders
        self._jobs = jobs
        self._events = events
        self._logs = logs
        self._catalog = catalog
        self._max_area_km2 = max_area_km2
        self._clock = clock
        self._check_url = check_url
        self._usage_slots = usage_slots

    # --- placing --------------------------------------------------------------------------------

    def place_order(self, principal: Principal, service_id: str, body: Any,
                    idempotency_key: str | None = None) -> tuple[Order, bool]:
        """POST /services/{service}/orders. Returns the order and whether this request created it
        (False: an earlier request with the same Idempotency-Key did)."""
        service = self._services.orderable(principal, service_id)
        if not isinstance(body, Mapping):
            raise InvalidRequestException(reason="the body must be an object {parameters, notify}")
        unknown = sorted(set(body) - set(ORDER_BODY_FIELDS))
        if unknown:
            raise InvalidRequestException(reason=f"unknown field(s): {', '.join(unknown)} "
                                                 f"(an order has {', '.join(ORDER_BODY_FIELDS)})")
        parameters = body.get("parameters", {})
        problems = check_parameters(service.parameters, parameters)
        if problems:
            raise InvalidRequestException(reason="; ".join(problems))
        notify = check_notify(body.get("notify"), self._check_url)
        title = body.get("title")
        if title is not None and (not isinstance(title, str) or len(title) > MAX_TITLE_CHARS):
            raise InvalidRequestException(reason=f"`title` must be a string of at most {MAX_TITLE_CHARS} characters")
        bound = bind_parameters(service.process_graph, service.parameters, parameters)
        problems = check_periods(bound)
        if problems:
            raise InvalidRequestException(reason="; ".join(problems))

        key = check_idempotency_key(idempotency_key)
        fingerprint = request_fingerprint(service_id, body)
        if key is not None:
            order_id = idempotent_order_id(principal.user_id, key)
            earlier = self._orders.get(order_id)
            if earlier is not None:
                return self._repeat(earlier, fingerprint), False
        else:
            order_id = f"j-{uuid.uuid4().hex}"

        slot = self._check_usage(principal, service, order_id)
        problem = input_problem(service, parameters, bound, self._catalog, self._max_area_km2)
        now = self._clock()
        job = Job(job_id=order_id, user_id=principal.user_id,
                  process={"process_graph": bound, "summary": service.title},
                  title=title or service.title, description=f"Order of the service '{service_id}'.",
                  created=now, updated=now,
                  # an order that can never succeed gets its (only) run id now: the status event ending
                  # it must name the job's run
                  run_id=uuid.uuid4().hex[:12] if problem else None,
                  error_code=problem.error_code if problem else None)
        order = Order(job=job, service_id=service_id, parameters=dict(parameters), notify=notify,
                      request_hash=fingerprint, idempotency_key=key)
        if not self._orders.add(order):
            # a concurrent request with the same Idempotency-Key won
            if slot is not None:
                self._usage_slots.release(slot, order_id)
            earlier = self._orders.get(order_id)
            if earlier is None:
                raise InvalidRequestException(reason="the order id is taken; retry with another Idempotency-Key")
            return self._repeat(earlier, fingerprint), False
        self._log(order, LogLevel.INFO, f"Order received: service '{service_id}'"
                                        + (f", Idempotency-Key {key!r}" if key else "") + ".", "received")
        self._proceed(order, problem)
        return self._orders.get(order_id) or order, True

    def _repeat(self, earlier: Order, fingerprint: str) -> Order:
        """The order an Idempotency-Key made, for a retry of the same request. A retry also finishes
        what the first request may not have (its start, or the status event of an invalid order)."""
        if earlier.request_hash != fingerprint:
            raise IdempotencyConflictException()
        if earlier.job.status is JobStatus.CREATED and (earlier.job.run_id is None or earlier.job.error_code):
            problem = self._stored_problem(earlier) if earlier.job.error_code else None
            self._proceed(earlier, problem, retry=True)
            return self._orders.get(earlier.order_id) or earlier
        return earlier

    def _stored_problem(self, order: Order) -> InputProblem:
        entries = self._logs.list(order.order_id, None, 100)
        code = order.job.error_code
        reason = next((e.message for e in entries if e.code == code), None)
        return InputProblem(code or "", reason or f"The order is invalid ({code}).")

    def _proceed(self, order: Order, problem: InputProblem | None, retry: bool = False) -> None:
        if problem is None:
            self._jobs.start_job(order.job.user_id, order.order_id)
            return
        if not retry:
            self._log(order, LogLevel.ERROR, problem.reason, "invalid", code=problem.error_code)
        self._events.status(event_types.StatusEvent(
            job_id=order.order_id, run_id=order.job.run_id or "", status=JobStatus.ERROR,
            reason=problem.reason[:MAX_REASON_CHARS], error_code=problem.error_code))

    def _check_usage(self, principal: Principal, service: Service, order_id: str) -> str | None:
        """Claims a usage slot for the order (atomic: parallel orders cannot overshoot the limit); returns
        it, or None when the service is unlimited for the customer."""
        limit = self.usage_limit(principal.user_id, service)
        if not limit:
            return None
        try:
            return self._usage_slots.claim(principal.user_id, service.service_id, limit["limit"],
                                           limit["interval_s"], holder=order_id)
        except LimitReached as reached:
            retry_at = datetime.fromtimestamp(math.ceil(reached.retry_at), tz=timezone.utc)
            raise UsageLimitExceededException(
                limit=limit["limit"], service_id=service.service_id, interval_s=limit["interval_s"],
                retry_after=isoformat_z(retry_at), retry_after_s=reached.retry_after_s) from None

    def usage_limit(self, user_id: str, service: Service) -> dict[str, int] | None:
        """The customer's own limit for the service, else the service's default; None: unlimited."""
        return self.usage_limits(user_id, [service])[service.service_id]

    def usage_limits(self, user_id: str, services: list[Service]) -> dict[str, dict[str, int] | None]:
        """`usage_limit` of several services, with one read of the customer's limits."""
        own_limits = self._orders.usage_limits(user_id) or {}
        limits = {}
        for service in services:
            own = own_limits.get(service.service_id)
            if isinstance(own, Mapping) and {"limit", "interval_s"} <= set(own):
                limits[service.service_id] = {"limit": int(own["limit"]), "interval_s": int(own["interval_s"])}
            else:
                limits[service.service_id] = service.default_usage_limit
        return limits

    def _log(self, order: Order, level: LogLevel, message: str, suffix: str, code: str | None = None) -> None:
        event = event_types.LogEvent(job_id=order.order_id, level=level, message=message, time=self._clock(),
                                     code=code)
        self._logs.add(entry_from_event(event, delivery_id=f"{order.order_id}-{suffix}"))

    # --- reading and cancelling ---------------------------------------------------------------

    def get_order(self, principal: Principal, order_id: str) -> Order:
        """Another customer's order is reported as missing, not as forbidden."""
        order = self._orders.get(order_id) if order_id else None
        if order is None or not principal.may_see(order.job.user_id):
            raise OrderNotFoundException(order_id=order_id)
        return order

    def cancel_order(self, principal: Principal, order_id: str) -> Order:
        """DELETE /orders/{id}: stops the order's run (CANCELLED); an order that ended already is left
        as it is. Repeating it is harmless."""
        order = self.get_order(principal, order_id)
        if not order.job.status.is_terminal:
            self._jobs.stop_job(order.job.user_id, order.order_id)
            order = self._orders.get(order_id) or order
        return order

    def list_orders(self, principal: Principal, limit: int, after: str | None, customer_id: str | None = None,
                    status: JobStatus | None = None) -> tuple[list[Order], str | None]:
        """GET /orders: the caller's orders, newest first; admins name a customer with `customer_id`, or
        see every order without it."""
        if customer_id is not None and customer_id != principal.user_id and not principal.is_admin:
            raise ScopeMissingException(scope="admin")
        if customer_id is None and principal.is_admin:
            return self._orders.list_all(limit, after, status)
        return self._orders.list_for_user(customer_id or principal.user_id, limit, after, status)

    # --- logging --------------------------------------------------------------------------------

    def submit_log(self, principal: Principal, body: Any) -> LogEvent:
        """POST /logging: a log entry about an order from its owner, an admin or a client with the
        `logging` scope, sent to the log queue (stored by the logging consumer)."""
        if not isinstance(body, Mapping):
            raise InvalidRequestException(reason="the body must be an object {order_id, level, message}")
        allowed = {"order_id", "level", "message", "component", "data"}
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise InvalidRequestException(reason=f"unknown field(s): {', '.join(unknown)}")
        order_id, level, message = body.get("order_id"), body.get("level"), body.get("message")
        if not isinstance(order_id, str) or not order_id:
            raise InvalidRequestException(reason="`order_id` is required")
        if not isinstance(level, str) or level.upper() not in LOG_LEVELS:
            raise InvalidRequestException(reason=f"`level` must be one of {', '.join(LOG_LEVELS)}")
        if not isinstance(message, str) or not message.strip() or len(message) > MAX_LOG_MESSAGE_CHARS:
            raise InvalidRequestException(reason=f"`message` must be a non-empty string of at most "
                                                 f"{MAX_LOG_MESSAGE_CHARS} characters")
        component = body.get("component")
        if component is not None and (not isinstance(component, str) or len(component) > MAX_COMPONENT_CHARS):
            raise InvalidRequestException(reason=f"`component` must be a string of at most {MAX_COMPONENT_CHARS} "
                                                 f"characters")
        data = body.get("data")
        if data is not None and len(json.dumps(data).encode()) > MAX_LOG_DATA_BYTES:
            raise InvalidRequestException(reason=f"`data` must be at most {MAX_LOG_DATA_BYTES} bytes of JSON")
        order = self._orders.get(order_id)
        if order is None or not (principal.may_see(order.job.user_id) or LOGGING_SCOPE in principal.scopes):
            raise OrderNotFoundException(order_id=order_id)
        event = event_types.LogEvent(job_id=order_id, level=LogLevel(level.lower()), message=message,
                                     data={"component": component, "reported_by": principal.user_id,
                                           **({"data": data} if data is not None else {})})
        self._events.log(event)
        return event

    def order_logs(self, principal: Principal, order_id: str, level: str | None, offset: str | None,
                   limit: int) -> tuple[list[LogEntry], bool]:
        """GET /orders/{id}/logs: entries at or above `level`, after `offset`; and whether there may be more."""
        self.get_order(principal, order_id)
        if level is not None and level.lower() not in {lvl.value for lvl in LogLevel}:
            raise InvalidRequestException(reason="`level` must be one of DEBUG, INFO, WARNING, ERROR")
        entries = self._logs.list(order_id, offset, limit, levels_at_least(level.lower() if level else None))
        return entries, len(entries) == limit


def describe_order(order: Order, order_url: str, openeo_url: str, *, full: bool,
                   results: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An order as `/orders` shows it (`full`: with parameters, notification wishes and results)."""
    def iso(value: datetime | None) -> str | None:
        return isoformat_z(value) if value else None

    job, status = order.job, order.order_status
    url = f"{order_url}/orders/{order.order_id}"
    data: dict[str, Any] = {
        "order_id": order.order_id,
        "service": order.service_id,
        "title": job.title,
        "status": status,
        "status_reason": job.reason if status in ORDER_STATUSES_WITH_REASON else None,
        "error_code": job.error_code if job.status is JobStatus.ERROR else None,
        "created": iso(job.created),
        "updated": iso(job.updated),
        "progress": job.progress,
        "links": [
            {"rel": "self", "href": url, "type": "application/json"},
            {"rel": "service", "href": f"{order_url}/services/{order.service_id}", "type": "application/json"},
            {"rel": "logs", "href": f"{url}/logs", "type": "application/json"},
            {"rel": "job", "href": f"{openeo_url}/jobs/{order.order_id}", "type": "application/json",
             "title": "The order as an openEO batch job"},
        ],
    }
    if status == "SUCCESS":
        data["links"].append({"rel": "results", "href": f"{openeo_url}/jobs/{order.order_id}/results",
                              "type": "application/json", "title": "STAC metadata of the results"})
    if full:
        data.update(queued=iso(job.queued), started=iso(job.started), finished=iso(job.finished),
                    parameters=order.parameters, notify=order.notify)
        if results is not None:
            data["results"] = results
    return data


def result_links(stac_collection: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The download links of a results STAC Collection: {href (presigned), type, expires, title}."""
    links = []
    for name, asset in (stac_collection.get("assets") or {}).items():
        links.append({"href": asset.get("href"), "type": asset.get("type"), "expires": asset.get("expires"),
                      "title": asset.get("title") or name, "name": name, "roles": asset.get("roles") or ["data"],
                      **({"file:size": asset["file:size"]} if "file:size" in asset else {})})
    return links
