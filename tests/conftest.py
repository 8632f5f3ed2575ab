"""Unit-test fixtures: the app without a cluster (flaskr-style ``app`` and ``client``)."""
import pytest

from gateway import create_app

from tests.support.fake_users import TableUsers


@pytest.fixture
def app():
    # no watch cache: its thread would retry the unreachable region for the rest of the test process
    app = create_app({"regions": {"us": "no-such-context"}, "watch_cache": False})
    app.extensions["tenx"].users = TableUsers({"alice": "alice-token"})
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def alice():
    return {"username": "alice", "Authorization": "token alice-token"}
