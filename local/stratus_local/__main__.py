"""`python -m stratus_local`: start the whole system locally in the foreground (what `make run` does)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading

from stratus import resources
from stratus_local.runtime import DEFAULT_COLLECTIONS, DEMO_ADMIN_EMAIL, DEMO_USER, LocalOptions, LocalStratus


def main() -> None:
    parser = argparse.ArgumentParser(description="Run Stratus locally on an embedded AWS emulator.")
    parser.add_argument("--host", default=os.environ.get("STRATUS_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("STRATUS_PORT", "8000")))
    parser.add_argument("--moto-port", type=int, default=int(os.environ.get("STRATUS_MOTO_PORT", "0")))
    parser.add_argument("--no-demo-data", action="store_true", help="start without the demo collection")
    parser.add_argument("--collections", default=os.environ.get("STRATUS_COLLECTIONS") or str(DEFAULT_COLLECTIONS),
                        metavar="FILE", help="collections configuration (README 'Collections'); 'none': own "
                                             "collections only; default: %(default)s")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    system = LocalStratus(LocalOptions(host=args.host, port=args.port, moto_port=args.moto_port,
                                       with_demo_data=not args.no_demo_data,
                                       collections=None if args.collections == "none" else args.collections,
                                       demo_password=os.environ.get("STRATUS_DEMO_PASSWORD")))
    system.start()
    collection = (system.demo_summary or {}).get("collection_id", "(none)")
    oidc = system.provisioned.oidc
    print(
        f"""
Stratus is running (ready in {system.startup_seconds:.1f} s).
  openEO API:        {system.api_url}/openeo/1.2/
  well-known:        {system.api_url}/.well-known/openeo
  embedded AWS:      {system.endpoint_url}
  demo user:         {DEMO_USER}
  demo password:     {system.demo_password}
  demo collection:   {collection}
  collections:       {args.collections}
  order API docs:    {system.api_url}/api/v1/docs
  order admin:       {DEMO_ADMIN_EMAIL} (same password; client id {system.admin_client[0]})
  e-mails sent:      {system.endpoint_url}/_stratus/ses/messages
  oidc provider:     {resources.OIDC_PROVIDER_ID}
  oidc issuer:       {system.settings.oidc_issuer}
  oidc client id:    {oidc.machine_client_id}
  oidc client secret: {oidc.machine_client_secret}

  import openeo
  con = openeo.connect("{system.api_url}").authenticate_basic("{DEMO_USER}", "{system.demo_password}")
  # or, as a machine (OIDC client credentials):
  con = openeo.connect("{system.api_url}").authenticate_oidc_client_credentials(
      client_id="{oidc.machine_client_id}", client_secret="{oidc.machine_client_secret}")

READY {system.api_url}
Press Ctrl-C to stop.""",
        flush=True,
    )
    stopped = threading.Event()
    # Installed explicitly: a shell may start background jobs with SIGINT ignored.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    try:
        while not stopped.wait(1):
            pass
    finally:
        print("Stopping Stratus ...", flush=True)
        system.stop()


if __name__ == "__main__":
    main()
