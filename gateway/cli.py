"""``tenx-gateway``: the operator's command line (users and their tokens)."""
from __future__ import annotations

import argparse
import sys

from . import config, errors
from .kube import Regions
from .users import UserStore


def _store() -> UserStore:
    settings = config.from_env()
    return UserStore.from_settings(settings, Regions(settings), cache_seconds=0)


def _users_add(args: argparse.Namespace) -> None:
    print(_store().add(args.name))  # the token alone, so `TOKEN=$(tenx-gateway users add me)` works


def _users_list(args: argparse.Namespace) -> None:
    for user in _store().list():
        print(f"{user['name']}\t{user['namespace']}\t{user['created']}")


def _users_remove(args: argparse.Namespace) -> None:
    _store().remove(args.name)
    print(f"removed {args.name}", file=sys.stderr)


def _collect(args: argparse.Namespace) -> None:
    from .collector import run
    code = run()
    if code:
        sys.exit(code)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="tenx-gateway", description="Operate a tenx-gateway. Cluster access comes "
                                  "from KUBECONFIG (or in-cluster config) and the GATEWAY_* settings.")
    commands = top.add_subparsers(dest="command", required=True)
    users = commands.add_parser("users", help="manage API users").add_subparsers(dest="action", required=True)
    add = users.add_parser("add", help="create a user; prints its new token alone on stdout")
    add.add_argument("name")
    add.set_defaults(run=_users_add)
    users.add_parser("list", help="list users: name, namespace, created").set_defaults(run=_users_list)
    remove = users.add_parser("remove", help="delete a user (their jobs stay)")
    remove.add_argument("name")
    remove.set_defaults(run=_users_remove)
    commands.add_parser("collect", help="archive the logs and instance records of every job, until stopped "
                        "(one active collector per cluster, chosen by a Lease)").set_defaults(run=_collect)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except errors.GatewayError as exc:
        print(f"tenx-gateway: {exc.description}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
