"""The app on fake regions (tests/support/fake_kube.py) with alice as its one user, for the unit tests of the views;
and its readiness probe on given regions, with an archive whose collector heartbeats a test chooses."""
from __future__ import annotations

from gateway import create_app
from gateway.api.readiness import Readiness

from .fake_kube import FakeRegions
from .fake_users import TableUsers


def app_client(kube, tmp_path, **config):
    """A test client of the app on ``kube`` (a fake region) with one user, alice. No watch cache: its thread would
    retry the unreachable region, every 30 s, for the rest of the test process."""
    app = create_app({"regions": {"us": "no-such-context"}, "data_dir": str(tmp_path), "watch_cache": False,
                      **config})
    gateway = app.extensions["tenx"]
    gateway.users = TableUsers({"alice": "alice-token"})
    gateway.regions = FakeRegions(us=kube)
    return app.test_client()


class FakeArchive:
    """The LazyStore's place: ``get()`` gives a store whose collector heartbeats are ``beats``."""

    def __init__(self, beats=None, fails=False):
        self.beats, self.fails = beats or {}, fails

    def get(self):
        if self.fails:
            raise OSError("disk gone")
        return self

    def heartbeats(self):
        return self.beats


def use(app, regions, timeout=0.3, archive=None):
    """Readiness over ``regions`` (``FakeRegions``) with ``timeout`` per probe, and ``archive``'s heartbeats."""
    app.extensions["tenx.readiness"] = Readiness(regions, timeout)
    app.extensions["tenx"].archive = archive or FakeArchive()
