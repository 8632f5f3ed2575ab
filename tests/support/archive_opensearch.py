"""The local OpenSearch for the log archive's tests (a pytest plugin: ``pytest_plugins``).

``deploy/local/opensearch/opensearch.sh up`` assembles it from Maven Central on first use (cached under
.local/opensearch) and starts it on loopback, or finds it running. Each test gets its own index prefix, so tests
and concurrent runs never see each other's lines; its indices and template are deleted afterwards. If OpenSearch
cannot be assembled or started the tests FAIL, never skip.
"""
from __future__ import annotations

import itertools
import os
import secrets
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "local" / "opensearch" / "opensearch.sh"
_prefixes = itertools.count()


@pytest.fixture(scope="session")
def opensearch_server() -> str:
    """The local OpenSearch's base URL (opensearch://127.0.0.1:PORT), started if it is not running."""
    done = subprocess.run(["bash", str(SCRIPT), "up"], capture_output=True, text=True, timeout=900,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        pytest.fail(f"the local OpenSearch could not be started ({SCRIPT.name} up):\n{done.stderr[-3000:]}",
                    pytrace=False)
    url = subprocess.run(["bash", str(SCRIPT), "url"], capture_output=True, text=True, check=True).stdout.strip()
    return url.split("/tenx-logs-")[0]


def opensearch_url(base: str, prefix: str, **options: str) -> str:
    """An archive URL on the local node: 0 replicas (one node), and what the caller adds."""
    query = "&".join(f"{k}={v}" for k, v in {"replicas": "0", **options}.items())
    return f"{base}/{prefix}?{query}"


def drop_prefix(base: str, prefix: str) -> None:
    from opensearchpy import OpenSearch

    host, port = base.split("://", 1)[1].rsplit(":", 1)
    client = OpenSearch(hosts=[{"host": host, "port": int(port)}])
    try:
        client.indices.delete(index=f"{prefix}*", ignore_unavailable=True, allow_no_indices=True,
                              expand_wildcards="all")
        client.indices.delete_index_template(name=f"{prefix}template", ignore=[404])
    finally:
        client.close()


@pytest.fixture
def opensearch_dsn(opensearch_server: str) -> Iterator[str]:
    """A URL whose indices have a fresh prefix, so every test starts from an empty archive. Appends refresh at once
    (refresh=true): the same visibility as the default wait_for, without waiting a refresh interval each time."""
    prefix = f"tt{os.getpid()}-{secrets.token_hex(2)}-{next(_prefixes)}-"
    yield opensearch_url(opensearch_server, prefix, refresh="true")
    drop_prefix(opensearch_server, prefix)
