"""LeaderElector against an in-memory Lease with the apiserver's optimistic concurrency: who leads, when a
contender may take over, and the fencing token each new leader gets."""
import pytest

from gateway.collector.lease import LeaderElector
from gateway.timefmt import parse_rfc3339

from tests.support.clock import Clock
from tests.support.fake_kube import FakeKube


def lease(kube):
    """The one Lease the electors contend for, as stored."""
    return kube.leases[("ns", "collector")]


@pytest.fixture
def kube():
    return FakeKube()


@pytest.fixture
def clock():
    return Clock()


def elector(kube, clock, identity, floor=0):
    return LeaderElector(kube, "ns", "collector", duration=15, identity=identity, monotonic=clock,
                         fence_floor=lambda: floor)


def test_the_first_contender_creates_the_lease_and_leads(kube, clock):
    a = elector(kube, clock, "a")
    assert a.try_lead()
    assert a.token == 1 and a.leading
    spec = lease(kube)["spec"]
    assert spec["holderIdentity"] == "a" and spec["leaseTransitions"] == 1 and spec["leaseDurationSeconds"] == 15
    assert parse_rfc3339(spec["renewTime"]) is not None and parse_rfc3339(spec["acquireTime"]) is not None


def test_a_new_lease_starts_above_the_stores_highest_token(kube, clock):
    a = elector(kube, clock, "a", floor=41)
    assert a.try_lead() and a.token == 42


def test_renewal_keeps_the_token_and_the_acquire_time(kube, clock):
    a = elector(kube, clock, "a")
    a.try_lead()
    acquired = lease(kube)["spec"]["acquireTime"]
    clock.now += 3
    assert a.try_lead() and a.token == 1
    assert lease(kube)["spec"]["acquireTime"] == acquired


def test_a_contender_waits_a_full_duration_after_it_last_saw_a_change(kube, clock):
    a, b = elector(kube, clock, "a"), elector(kube, clock, "b")
    a.try_lead()
    assert not b.try_lead()
    clock.now += 10
    assert not b.try_lead()  # the record has not changed, but 15 s have not passed since b first saw it
    clock.now += 6
    assert b.try_lead()
    assert b.token == 2 and lease(kube)["spec"]["holderIdentity"] == "b"
    assert not a.leading  # a's own trust in its renewal ran out after 10 s without one


def test_a_renewing_leader_is_never_displaced(kube, clock):
    a, b = elector(kube, clock, "a"), elector(kube, clock, "b")
    for _ in range(10):
        assert a.try_lead()
        assert not b.try_lead()
        clock.now += 3
    assert a.token == 1


def test_a_deposed_leader_that_wakes_up_gets_no_token(kube, clock):
    a, b = elector(kube, clock, "a"), elector(kube, clock, "b")
    a.try_lead()
    b.try_lead()
    clock.now += 16
    assert b.try_lead() and b.token == 2
    assert not a.valid(1)
    assert not a.try_lead()  # it sees b's fresh record and waits
    assert a.token is None


def test_release_lets_a_successor_in_at_once(kube, clock):
    a, b = elector(kube, clock, "a"), elector(kube, clock, "b")
    a.try_lead()
    a.release()
    assert lease(kube)["spec"]["holderIdentity"] is None
    assert b.try_lead() and b.token == 2
