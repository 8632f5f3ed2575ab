"""The user table in memory: a login never calls the apiserver, whatever the name; a background thread keeps the
table current from a watch on the Secret."""
import base64
import contextlib
import queue
import threading
import time

import orjson
import pytest

from gateway import errors
from gateway.accounts.users import UserStore, token_digest

from tests.support.harness import wait_until


def secret_of(users: dict[str, str], version: str) -> dict:
    table = {name: {"token_sha256": token_digest(token)} for name, token in users.items()}
    return {"metadata": {"name": "users", "namespace": "gw", "resourceVersion": version},
            "data": {"users.json": base64.b64encode(orjson.dumps(table)).decode()}}


class CountingKube:
    """The two calls the user table's reflector makes (a LIST of the one Secret, a WATCH), each counted with the
    thread that made it; watch events come from a queue the test fills."""

    def __init__(self, secret):
        self.secret = secret
        self.events: queue.Queue = queue.Queue()
        self.calls: list[tuple[str, int]] = []

    def get_secret(self, namespace, name):
        self.calls.append(("get_secret", threading.get_ident()))
        if self.secret is None:
            raise errors.NotFound("no secret")
        return self.secret

    def list_page(self, path, *, label_selector=None, limit=None, continue_token=None, field_selector=None):
        assert (path, field_selector) == ("/api/v1/namespaces/gw/secrets", "metadata.name=users")
        try:
            secret = self.get_secret("gw", "users")
        except errors.NotFound:
            return {"items": [], "metadata": {"resourceVersion": "1"}}
        return {"items": [secret], "metadata": {"resourceVersion": secret["metadata"]["resourceVersion"]}}

    @contextlib.contextmanager
    def watch(self, path, *, resource_version, label_selector=None, field_selector=None, timeout_seconds):
        self.calls.append(("watch", threading.get_ident()))
        yield self._events(timeout_seconds)

    def _events(self, timeout_seconds):
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            try:
                yield self.events.get(timeout=0.05)
            except queue.Empty:
                pass

    def calls_from(self, thread_id):
        return [name for name, ident in self.calls if ident == thread_id]


@pytest.fixture
def store_on():
    """A store on a fake Kube; its refresher thread is stopped after the test."""
    stores = []

    def make(kube, cache_seconds=1):
        stores.append(UserStore(lambda: kube, namespace="gw", secret_name="users", cache_seconds=cache_seconds,
                                namespace_prefix="tenx-"))
        return stores[-1]
    yield make
    for store in stores:
        store.close()


def wait_for(check, timeout=5):
    wait_until(check, timeout, 0.01, what="the condition")


def test_verify_never_calls_the_apiserver(store_on):
    kube = CountingKube(secret_of({"alice": "alice-token"}, "1"))
    store = store_on(kube)
    names = ["alice", "bob", "nobody", "alice"] * 50
    results = [store.verify(name, "alice-token") for name in names]
    assert results == [name == "alice" for name in names]
    assert kube.calls_from(threading.get_ident()) == []  # known or unknown: memory only
    assert kube.calls_from(None) == [] and {name for name, _ in kube.calls} <= {"get_secret", "watch"}


def test_a_change_arrives_through_the_watch(store_on):
    kube = CountingKube(secret_of({"alice": "alice-token"}, "1"))
    store = store_on(kube, cache_seconds=30)
    assert not store.verify("bob", "bob-token")
    kube.events.put({"type": "MODIFIED", "object": secret_of({"alice": "alice-token", "bob": "bob-token"}, "2")})
    wait_for(lambda: store.verify("bob", "bob-token"))
    kube.events.put({"type": "DELETED", "object": secret_of({}, "3")})
    wait_for(lambda: not store.verify("alice", "alice-token"))
    assert kube.calls_from(threading.get_ident()) == []


def test_the_table_is_read_again_after_each_watch(store_on):
    kube = CountingKube(secret_of({}, "1"))
    store = store_on(kube, cache_seconds=1)
    assert not store.verify("carol", "carol-token")
    kube.secret = secret_of({"carol": "carol-token"}, "2")  # changed without an event reaching the watch
    wait_for(lambda: store.verify("carol", "carol-token"), timeout=5)


def test_no_secret_yet_is_an_empty_table(store_on):
    store = store_on(CountingKube(None))
    assert not store.verify("alice", "alice-token")


def test_a_table_that_cannot_be_read_is_503(store_on, monkeypatch):
    class Down(CountingKube):
        def get_secret(self, namespace, name):
            raise errors.Unavailable("down")

    # answered once the first read failed, not after _FIRST_LOAD_SECONDS each (an unreachable cluster under load
    # would otherwise hold every login thread that long): an hour here, so only that mistake keeps them waiting
    monkeypatch.setattr("gateway.accounts.users._FIRST_LOAD_SECONDS", 3600)
    store = store_on(Down(None))
    answers = []

    def logins():
        for _ in range(5):
            with pytest.raises(errors.Unavailable):
                store.verify("alice", "alice-token")
            answers.append(503)

    caller = threading.Thread(target=logins, daemon=True)
    caller.start()
    caller.join(120)
    assert answers == [503] * 5


def test_known_and_unknown_names_do_the_same_work(store_on, monkeypatch):
    """What a login costs may not tell whether the name exists (a timing oracle for user names): a known name, an
    unknown one and a known one with a wrong token each make one digest of the token and one constant-time
    comparison of two digests of the same length. (The times are measured, not asserted, by
    tests/integration/test_reliability_auth.py.)"""
    from gateway.accounts import users
    store = store_on(CountingKube(secret_of({"alice": "alice-token"}, "1")))
    assert store.verify("alice", "alice-token")  # the table is loaded before anything is counted
    work: list[tuple] = []
    digest, compare = users.token_digest, users.hmac.compare_digest
    monkeypatch.setattr(users, "token_digest", lambda token: work.append(("digest", len(token))) or digest(token))
    monkeypatch.setattr(users, "hmac", type("Hmac", (), {"compare_digest": staticmethod(
        lambda a, b: work.append(("compare", len(a), len(b))) or compare(a, b))}))
    done = {}
    for name, token in [("alice", "alice-token"), ("nobody", "alice-token"), ("alice", "wrong-token")]:
        work.clear()
        store.verify(name, token)
        done[name, token] = list(work)
    assert list(done.values()) == [[("digest", 11), ("compare", 64, 64)]] * 3, done


def test_the_table_is_used_once_a_retry_reads_it(store_on):
    class Flaky(CountingKube):
        failures = 1

        def get_secret(self, namespace, name):
            if Flaky.failures:
                Flaky.failures -= 1
                raise errors.Unavailable("down")
            return super().get_secret(namespace, name)

    store = store_on(Flaky(secret_of({"alice": "alice-token"}, "1")))
    with pytest.raises(errors.Unavailable):
        store.verify("alice", "alice-token")

    def verified() -> bool:
        try:
            return store.verify("alice", "alice-token")
        except errors.Unavailable:  # until the refresher's retry has read the table
            return False

    wait_for(verified, timeout=5)


def test_close_stops_the_refresher(store_on):
    kube = CountingKube(secret_of({}, "1"))
    store = store_on(kube)
    store.verify("alice", "x")
    assert store.close(wait=10)
    calls = len(kube.calls)
    assert store.verify("alice", "x") is False  # still answers, from memory
    assert len(kube.calls) == calls
