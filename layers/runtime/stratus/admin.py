"""Operator commands against a deployment: `python -m stratus.admin create-user NAME`.

Reads the deployment's table and secret names from the same environment variables the Lambda
functions get (see `stratus.settings.ENV`); the password is asked for, never passed as an argument,
so it stays out of shell histories and process lists.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from stratus.backend import Backend


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stratus.admin", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-user", help="create a basic-auth user")
    create.add_argument("user_id")
    create.add_argument("--name", default=None)
    args = parser.parse_args(argv)

    password = getpass.getpass(f"Password for {args.user_id}: ") if sys.stdin.isatty() else sys.stdin.readline()
    password = password.rstrip("\n")
    if len(password) < 12:
        print("refused: use a password of at least 12 characters", file=sys.stderr)
        return 2
    if not Backend.from_env().auth.create_user(args.user_id, password, name=args.name):
        print(f"refused: user {args.user_id} exists already", file=sys.stderr)
        return 1
    print(f"created user {args.user_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
