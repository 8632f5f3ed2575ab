"""users add refuses a name whose namespace is not free for it; users remove --purge deletes only the user's own."""
import pytest

from gateway import errors
from gateway.accounts.admin import check_new_user, purge
from gateway.settings import Settings
from gateway.jobs.manifest import namespace_manifest

from tests.support.fake_kube import FakeKube, FakeRegions, pod


class FakeStore:
    def __init__(self, rows):
        self.rows = rows
        self.asked = []
        self.closed = False

    def delete_namespace(self, namespace):
        self.asked.append(namespace)
        return self.rows.pop(namespace, 0)

    def close(self):
        self.closed = True


SETTINGS = Settings(regions={"us": "", "eu": "other"}, host_volume_root="/data/app")


def refusal(username, regions, adopt=False, settings=SETTINGS):
    with pytest.raises(errors.Conflict) as caught:
        check_new_user(username, settings, regions, adopt=adopt)
    return caught.value.description


def test_a_free_name_passes():
    check_new_user("alice", SETTINGS, FakeRegions(us=FakeKube({}), eu=FakeKube({})), adopt=False)


def test_the_gateways_own_namespace_is_refused_before_any_call():
    assert refusal("gateway", FakeRegions()) == ("user name 'gateway' maps to namespace tenx-gateway, the gateway's "
                                                "own; pick another name")


def test_a_namespace_not_made_by_the_gateway_is_refused_even_with_adopt():
    regions = FakeRegions(us=FakeKube({}), eu=FakeKube({"tenx-alice": {"metadata": {"name": "tenx-alice"}}}))
    assert "tenx-alice exists and is not managed by tenx-gateway (region eu)" in refusal("alice", regions, adopt=True)


def test_another_users_namespace_is_refused():
    regions = FakeRegions(us=FakeKube({"tenx-alice": namespace_manifest("tenx-alice", "Alice")}), eu=FakeKube({}))
    assert "belongs to user 'Alice'" in refusal("alice", regions, adopt=True)


def test_a_removed_users_namespace_needs_adopt():
    regions = FakeRegions(us=FakeKube({"tenx-alice": namespace_manifest("tenx-alice", "alice")}), eu=FakeKube({}))
    message = refusal("alice", regions)
    assert "namespace tenx-alice (region us) exists from an earlier user 'alice'" in message
    assert "--purge" in message and "--adopt" in message
    check_new_user("alice", SETTINGS, regions, adopt=True)


def test_a_namespace_being_deleted_is_refused_even_with_adopt():
    terminating = {**namespace_manifest("tenx-alice", "alice"), "status": {"phase": "Terminating"}}
    regions = FakeRegions(us=FakeKube({"tenx-alice": terminating}), eu=FakeKube({}))
    assert "still being deleted" in refusal("alice", regions, adopt=True)


def test_purge_deletes_the_users_namespaces_and_archive_rows_in_every_region():
    us = FakeKube({"tenx-alice": namespace_manifest("tenx-alice", "alice")})
    for name, node in [("a", "node-1"), ("b", "node-2"), ("c", "node-1")]:
        us.put(pod(name, "j", node=node))
    eu = FakeKube({"tenx-alice": namespace_manifest("tenx-alice", "alice")})
    store = FakeStore({"tenx-alice": 7, "eu:tenx-alice": 3})
    report = purge("alice", SETTINGS, FakeRegions(us=us, eu=eu), lambda: store, wait_seconds=1)
    assert us.called("delete_namespace") == ["tenx-alice"] and eu.called("delete_namespace") == ["tenx-alice"]
    assert store.asked == ["tenx-alice", "eu:tenx-alice"] and store.closed
    assert report.lines("alice", SETTINGS) == [
        "deleted namespace us/tenx-alice", "deleted namespace eu/tenx-alice",
        "deleted 10 archived log lines and instance records",
        "still on nodes node-1, node-2 (and on any other node that ran earlier pods of alice): host volumes under "
        "/data/app/alice/; delete them there"]


def test_purge_leaves_a_namespace_not_made_for_the_user_alone():
    us = FakeKube({"tenx-alice": {"metadata": {"name": "tenx-alice"}}})
    report = purge("alice", SETTINGS, FakeRegions(us=us, eu=FakeKube({})), lambda: FakeStore({}), wait_seconds=1)
    assert us.called("delete_namespace") == [] and report.deleted_namespaces == []
    assert report.left_alone == ["tenx-alice (region us): namespace tenx-alice exists and is not managed by "
                                 "tenx-gateway"]


def test_purge_never_deletes_the_gateways_own_namespace():
    own = FakeKube({"tenx-gateway": namespace_manifest("tenx-gateway", "gateway")})
    report = purge("gateway", SETTINGS, FakeRegions(us=own, eu=FakeKube({})), lambda: FakeStore({}), wait_seconds=1)
    assert own.called("delete_namespace") == [] and "the gateway's own" in report.left_alone[0]


def test_purge_says_when_the_archive_is_not_reachable():
    report = purge("alice", SETTINGS, FakeRegions(us=FakeKube({}), eu=FakeKube({})), None, wait_seconds=1)
    assert "not reachable from here" in report.archive_problem
    assert report.lines("alice", SETTINGS)[-1].startswith("still on any node that ran pods of alice")
