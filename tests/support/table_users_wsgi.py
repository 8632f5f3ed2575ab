"""The gateway's WSGI app with its users in a table (alice, token "alice-token") instead of the users Secret: what
gunicorn serves in tests whose apiserver is a stand-in that holds no Secret."""
from gateway import create_app

from .fake_users import TableUsers

app = create_app()
app.extensions["tenx"].users = TableUsers({"alice": "alice-token"})
