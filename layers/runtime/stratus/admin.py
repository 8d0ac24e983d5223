"""Operator commands against a deployment: create openEO users and order-service customers.

`python -m stratus.admin create-user NAME` makes an openEO basic-auth user;
`python -m stratus.admin create-customer EMAIL [--admin] [--scope SCOPE ...]` an order-service
customer (printing its client id and client secret, shown only once);
`python -m stratus.admin refresh-collections [NAME ...]` fetches the configured remote collections' metadata
into the cache `/collections` reads (all, or those named by id or alias) and says what each source answered.

Reads the deployment's table and secret names from the same environment variables the Lambda
functions get (see `stratus.settings.ENV`); the password is asked for, never passed as an argument,
so it stays out of shell histories and process lists.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from stratus import resources
from stratus.backend import Backend
from stratus.domain.principal import ADMIN_SCOPE
from stratus.order_errors import OrderServiceException


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stratus.admin", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-user", help="create a basic-auth user")
    create.add_argument("user_id")
    create.add_argument("--name", default=None)
    customer = commands.add_parser("create-customer", help="create an order-service customer (OAuth2 client)")
    customer.add_argument("email")
    customer.add_argument("--name", default=None, help="defaults to the e-mail address")
    customer.add_argument("--admin", action="store_true", help="with the admin scope (CRM, scope grants, all services)")
    customer.add_argument("--scope", action="append", default=None, metavar="SCOPE",
                          help="a scope to grant, e.g. service:ndvi-composite (repeatable); "
                               "default: the scopes a registering customer gets")
    refresh = commands.add_parser("refresh-collections",
                                  help="fetch the configured remote collections' metadata now")
    refresh.add_argument("names", nargs="*", metavar="NAME", help="collection ids or aliases; default: all")
    index = commands.add_parser("index-collections",
                                help="queue every item of the own collections (S3 catalog) for the catalogue index")
    index.add_argument("names", nargs="*", metavar="NAME", help="own collection ids; default: all")
    args = parser.parse_args(argv)
    if args.command == "refresh-collections":
        return _refresh_collections(args.names)
    if args.command == "index-collections":
        queued = index_own_collections(Backend.from_env(), args.names)
        print(f"queued {queued} items for the catalogue index")
        return 0

    login = args.user_id if args.command == "create-user" else args.email
    password = getpass.getpass(f"Password for {login}: ") if sys.stdin.isatty() else sys.stdin.readline()
    password = password.rstrip("\n")
    if len(password) < 12:
        print("refused: use a password of at least 12 characters", file=sys.stderr)
        return 2
    if args.command == "create-customer":
        return _create_customer(args, password)
    if not Backend.from_env().auth.create_user(args.user_id, password, name=args.name):
        print(f"refused: user {args.user_id} exists already", file=sys.stderr)
        return 1
    print(f"created user {args.user_id}")
    return 0


def _create_customer(args: argparse.Namespace, password: str) -> int:
    scopes = list(resources.DEFAULT_CUSTOMER_SCOPES if args.scope is None else args.scope)
    if args.admin:
        scopes.append(ADMIN_SCOPE)
    try:
        customer, secret = Backend.from_env().customers.create_customer(args.name or args.email, args.email,
                                                                        password, scopes=scopes)
    except OrderServiceException as error:
        print(f"refused: {error.message}", file=sys.stderr)
        return 1
    print(f"created customer {customer.customer_id} ({customer.email}), scopes: {' '.join(customer.scopes)}")
    print(f"client_id: {customer.customer_id}")
    print(f"client_secret: {secret}")
    print("the client secret is shown only this once", file=sys.stderr)
    return 0


def index_own_collections(backend: Backend, names: list[str] | None = None) -> int:
    """Queues every item of the own collections in the S3 catalog for the indexer (idempotent: a re-run
    writes the same versions again, newer by acceptance time only)."""
    from stratus.adapters.ingest_queue import SqsIngestQueue
    from stratus.domain.stac_items import upsert

    from stratus import aws

    queue = SqsIngestQueue(aws.client("sqs"), backend.settings.ingest_queue_url)
    queued = 0
    for collection_id in names or backend.catalog_reader.collection_ids():
        messages = [upsert(collection_id, item)
                    for item in backend.catalog_reader.items(collection_id)]
        queue.send(messages)
        queued += len(messages)
    return queued


def _refresh_collections(names: list[str]) -> int:
    try:
        outcomes = Backend.from_env().collection_refresher.refresh(names)
    except KeyError as error:
        print(f"refused: {error.args[0]}", file=sys.stderr)
        return 2
    if not outcomes:
        print("no remote collections are configured")
    for outcome in outcomes:
        print(f"{outcome.collection_id}: {'refreshed' if outcome.refreshed else 'kept the cached document'} "
              f"({outcome.detail})")
    return 0 if all(outcome.refreshed for outcome in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
