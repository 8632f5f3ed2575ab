"""``tenx-gateway``: the operator's command line (users and their tokens)."""
from __future__ import annotations

import argparse
import os
import sys

from . import errors
from .settings import InvalidSetting, Settings, from_env, startup
from .kube.client import Regions
from .accounts.users import UserStore


def _store() -> UserStore:
    settings = from_env()
    return UserStore.from_settings(settings, Regions(settings), cache_seconds=0)


def _users_add(args: argparse.Namespace) -> None:
    from .accounts.admin import check_new_user
    settings = from_env()
    regions = Regions(settings)
    check_new_user(args.name, settings, regions, adopt=args.adopt)
    token = UserStore.from_settings(settings, regions, cache_seconds=0).add(args.name)
    print(token)  # the token alone, so `TOKEN=$(tenx-gateway users add me)` works


def _users_list(args: argparse.Namespace) -> None:
    for user in _store().list():
        print(f"{user['name']}\t{user['namespace']}\t{user['created']}")


def _users_remove(args: argparse.Namespace) -> None:
    settings = from_env()
    regions = Regions(settings)
    try:
        UserStore.from_settings(settings, regions, cache_seconds=0).remove(args.name)
        print(f"removed {args.name}", file=sys.stderr)
    except errors.NotFound:
        if not args.purge:  # a purge also cleans up after a user removed earlier without one
            raise
        print(f"no user {args.name!r} in the table; purging what is left of them", file=sys.stderr)
    if args.purge:
        from .accounts.admin import purge
        report = purge(args.name, settings, regions, _archive_opener(settings))
        for line in report.lines(args.name, settings):
            print(line, file=sys.stderr)
        if report.archive_problem:
            raise errors.Unavailable("the purge is incomplete (see above)")


def _archive_opener(settings: Settings):
    """How to open the log archive from this machine, or None: a SQLite archive is a file on the gateway's
    host or volume, and opening a path where there is none would only create an empty one."""
    url = settings.archive_store_url
    if url.startswith("sqlite:///") and not os.path.exists(url[len("sqlite://"):]):
        return None
    from .store import open_store
    return lambda: open_store(url, settings.log_timezone)


def _collect(args: argparse.Namespace) -> None:
    from .collector import run, run_node
    code = run_node(args.node, args.region) if args.node else run()
    if code:
        sys.exit(code)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="tenx-gateway", description="Operate a tenx-gateway. Cluster access comes "
                                  "from KUBECONFIG (or in-cluster config) and the GATEWAY_* settings.")
    commands = top.add_subparsers(dest="command", required=True)
    users = commands.add_parser("users", help="manage API users").add_subparsers(dest="action", required=True)
    add = users.add_parser("add", help="create a user; prints its new token alone on stdout. Refused when the "
                           "user's namespace is the gateway's own or exists and was not created for this name")
    add.add_argument("name")
    add.add_argument("--adopt", action="store_true", help="give the new user the namespace (jobs, archive, host "
                     "data) an earlier user of the same name left behind")
    add.set_defaults(run=_users_add)
    users.add_parser("list", help="list users: name, namespace, created").set_defaults(run=_users_list)
    remove = users.add_parser("remove", help="delete a user (their jobs stay, unless --purge)")
    remove.add_argument("name")
    remove.add_argument("--purge", action="store_true", help="also delete the user's namespace in every region "
                        "(jobs, pods) and their archived logs and instance records; says what stays on nodes")
    remove.set_defaults(run=_users_remove)
    collect = commands.add_parser(
        "collect", help="archive the logs and instance records of the jobs' pods, until stopped: with --node, of the "
        "pods on that node, from the kubelet's log files (one per node); without, of every pod, through the "
        "apiserver (one active per cluster, chosen by a Lease)")
    collect.add_argument("--node", help="the node whose pods' logs to read, from GATEWAY_COLLECTOR_POD_LOGS_DIR "
                         "(a DaemonSet passes its spec.nodeName)")
    collect.add_argument("--region", help="the region the node belongs to (default: the first of GATEWAY_REGIONS)")
    collect.set_defaults(run=_collect)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        startup()  # a bad setting stops every command at once, in one line
        args.run(args)
    except InvalidSetting as exc:
        print(f"tenx-gateway: {exc}", file=sys.stderr)
        return 2
    except errors.GatewayError as exc:
        print(f"tenx-gateway: {exc.description}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
