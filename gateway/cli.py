"""``tenx-gateway``: the operator's command line (users and their tokens)."""
from __future__ import annotations

import argparse
import signal
import sys
import threading

from . import config, errors, jsonlog
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
    """Run one collector per region until SIGTERM or SIGINT; the Lease makes extra replicas wait as standbys."""
    from .archive import open_store
    from .archive.collector import Collector
    from .archive.lease import LeaderElector
    from .jobs import archive_namespace
    from .manifest import namespace_manifest

    jsonlog.configure()
    settings = config.from_env()
    regions = Regions(settings)
    store = open_store(settings.archive_store_url, settings.log_timezone)
    collectors = []
    for region in regions.names:
        kube = regions.get(region)
        kube.create_namespace(namespace_manifest(settings.namespace))
        elector = LeaderElector(kube, settings.namespace, "tenx-gateway-collector")
        collectors.append(Collector(
            kube, store, elector, namespace_prefix=settings.namespace_prefix,
            archive_namespace=lambda ns, r=region: archive_namespace(r, ns, settings.default_region),
            poll_seconds=settings.collector_poll_seconds, retention_days=settings.archive_retention_days,
            max_line_bytes=settings.log_max_bytes))
    threads = [threading.Thread(target=c.run, name=f"collector-{r}") for c, r in zip(collectors, regions.names)]

    def stop(signum, frame):
        for collector in collectors:
            collector.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()


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
