"""A user table in memory, for the app where no cluster (and so no users Secret) is involved."""
from gateway.accounts.users import token_digest


class TableUsers:
    """A user table in memory, standing in for the Secret-backed store where no cluster is involved."""

    def __init__(self, users):
        self.users = users

    def verify(self, username, token):
        return self.users.get(username) == token

    def stored_digest(self, username):
        return token_digest(self.users[username]) if username in self.users else None
