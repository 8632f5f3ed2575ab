"""What ``tenx-gateway users add`` and ``users remove --purge`` do around the user table: a name owns its namespace.

A new name is refused when its namespace (in any region) is the gateway's own, or exists and was not created for
that name; a namespace left by an earlier user of the same name (removed without ``--purge``) is refused unless the
operator adopts it. A purge deletes the user's namespaces and archived logs and says what stays on the nodes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import errors
from ..settings import Settings
from ..kube.client import Regions
from ..names import is_username, namespace_for
from ..jobs.tenancy import Tenant, owner_problem

_PURGE_WAIT_SECONDS = 120.0  # how long a purge waits for the namespaces' pods to go before it empties the archive


def check_new_user(username: str, settings: Settings, regions: Regions, *, adopt: bool) -> None:
    """Raise Conflict, saying why, if ``username``'s namespace in some region is not free for them."""
    if not is_username(username):
        return  # UserStore.add says what a user name may be
    namespace = namespace_for(username, settings.namespace_prefix)
    if namespace == settings.namespace:
        raise errors.Conflict(f"user name {username!r} maps to namespace {namespace}, the gateway's own; "
                              "pick another name")
    for region in regions.names:
        found = _namespace(regions, region, namespace)
        if found is None:
            continue
        where = f"namespace {namespace} (region {region})"
        problem = owner_problem(found, username)
        if problem:
            raise errors.Conflict(f"{problem} (region {region}); pick another user name")
        if (found.get("status") or {}).get("phase") == "Terminating":
            raise errors.Conflict(f"{where} is still being deleted; try again once it is gone")
        if not adopt:
            raise errors.Conflict(f"{where} exists from an earlier user {username!r}, with their jobs; "
                                  f"`users remove {username} --purge` deletes it, or add with --adopt to give it "
                                  "to the new user")


def _namespace(regions: Regions, region: str, name: str) -> dict[str, Any] | None:
    try:
        return regions.get(region).get_namespace(name)
    except errors.NotFound:
        return None


@dataclass
class PurgeReport:
    deleted_namespaces: list[str] = field(default_factory=list)  # "region/namespace"
    left_alone: list[str] = field(default_factory=list)  # namespaces not the user's: why
    archive_rows: int = 0
    archive_problem: str | None = None
    nodes: set[str] = field(default_factory=set)

    def lines(self, username: str, settings: Settings) -> list[str]:
        out = [f"deleted namespace {n}" for n in self.deleted_namespaces]
        out += [f"left alone: {why}" for why in self.left_alone]
        out.append(self.archive_problem or f"deleted {self.archive_rows} archived log lines and instance records")
        root = f"{settings.host_volume_root.rstrip('/')}/{username}/"
        if self.nodes:
            out.append(f"still on nodes {', '.join(sorted(self.nodes))} (and on any other node that ran earlier "
                       f"pods of {username}): host volumes under {root}; delete them there")
        else:
            out.append(f"still on any node that ran pods of {username}: host volumes under {root}; delete them there")
        return out


def purge(username: str, settings: Settings, regions: Regions, open_store: Callable[[], Any] | None,
          *, wait_seconds: float = _PURGE_WAIT_SECONDS) -> PurgeReport:
    """Delete ``username``'s namespace in every region (only one created for them), wait for it to go (so the
    collector archives no more of its pods), then their archive rows. ``open_store`` is None when the archive is
    not reachable from here (``archive_problem`` then says so)."""
    report = PurgeReport()
    namespace = namespace_for(username, settings.namespace_prefix)
    doomed = []
    for region in regions.names:
        found = _namespace(regions, region, namespace)
        if found is None:
            continue
        problem = owner_problem(found, username) if namespace != settings.namespace else "the gateway's own"
        if problem:
            report.left_alone.append(f"{namespace} (region {region}): {problem}")
            continue
        kube = regions.get(region)
        for pod in kube.list_pods(namespace, "").get("items", []):
            node = (pod.get("spec") or {}).get("nodeName")
            if node:
                report.nodes.add(node)
        kube.delete_namespace(namespace)
        report.deleted_namespaces.append(f"{region}/{namespace}")
        doomed.append(region)
    deadline = time.monotonic() + wait_seconds
    while doomed and time.monotonic() < deadline:
        doomed = [region for region in doomed if _namespace(regions, region, namespace) is not None]
        if doomed:
            time.sleep(0.5)
    if open_store is None:
        report.archive_problem = ("the log archive is not reachable from here: its rows stay (point "
                                  "GATEWAY_ARCHIVE_URL or GATEWAY_DATA_DIR at it and run the purge again)")
        return report
    store = open_store()
    try:
        for region in regions.names:
            report.archive_rows += store.delete_namespace(Tenant.of(username, region, settings).archive)
    finally:
        store.close()
    return report
