"""Fixtures of the collector's unit tests."""
import pytest

from gateway.store import open_store


@pytest.fixture
def store(tmp_path):
    """A SQLite archive of the test's own."""
    store = open_store(f"sqlite:///{tmp_path}/archive.db")
    yield store
    store.close()
