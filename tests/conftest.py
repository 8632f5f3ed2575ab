"""Unit-test fixtures: the app without a cluster (flaskr-style ``app`` and ``client``)."""
import pytest

from gateway import create_app
from gateway.users import token_digest


class TableUsers:
    """A user table in memory, standing in for the Secret-backed store where no cluster is involved."""

    def __init__(self, users):
        self.users = users

    def verify(self, username, token):
        return self.users.get(username) == token

    def stored_digest(self, username):
        return token_digest(self.users[username]) if username in self.users else None


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
