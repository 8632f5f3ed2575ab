"""One version everywhere: gateway/version.py, what setup.cfg builds, GET /version, the OpenAPI document, the
tenx_gateway_build_info metric, and tenx (released under the same number)."""
import configparser
import re
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

import gateway
import tenx
from gateway.api import metrics
from gateway import version
from gateway.version import COMMIT_VARIABLE

from tests.support.harness import ROOT


@pytest.fixture(autouse=True)
def _fresh_commit():
    version.commit.cache_clear()
    yield
    version.commit.cache_clear()


def head() -> str:
    return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_setup_cfg_reads_the_version_from_the_package():
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    assert parser["metadata"]["version"] == "attr: gateway.version.__version__"
    assert gateway.__version__ == version.__version__


def test_the_cli_is_released_under_the_same_version():
    assert tenx.__version__ == gateway.__version__


def test_get_version_names_the_version_and_the_checkouts_commit(client, monkeypatch):
    monkeypatch.delenv(COMMIT_VARIABLE, raising=False)
    response = client.get("/version")
    assert response.status_code == 200
    assert response.get_json() == {"version": gateway.__version__, "commit": head()}


def test_the_build_commit_variable_wins(client, monkeypatch):
    monkeypatch.setenv(COMMIT_VARIABLE, "0123abcd")
    version.commit.cache_clear()  # the app's creation asked already
    assert client.get("/version").get_json() == {"version": gateway.__version__, "commit": "0123abcd"}


def test_without_a_checkout_or_the_variable_the_commit_is_left_out(client, monkeypatch, tmp_path):
    monkeypatch.delenv(COMMIT_VARIABLE, raising=False)
    monkeypatch.setattr(version, "_CHECKOUT", tmp_path)  # as an installed wheel: no .git beside the package
    version.commit.cache_clear()
    assert client.get("/version").get_json() == {"version": gateway.__version__}


def test_the_openapi_document_carries_the_version(client):
    document = client.get("/openapi.json").get_json()
    assert document["info"]["version"] == gateway.__version__
    operation = document["paths"]["/version"]["get"]
    assert operation["security"] == [] and "200" in operation["responses"]


def test_build_info_metric(monkeypatch):
    monkeypatch.setenv(COMMIT_VARIABLE, "feedbeef")
    gateway.create_app({"regions": {"us": "no-such-context"}, "watch_cache": False})
    families = {f.name: f for f in text_string_to_metric_families(metrics.exposition().decode())}
    samples = {(s.labels["version"], s.labels["commit"]): s.value for s in families["tenx_gateway_build_info"].samples}
    assert samples[(gateway.__version__, "feedbeef")] == 1.0


def test_the_changelog_keeps_an_unreleased_section_and_names_each_release():
    text = (ROOT / "CHANGELOG.md").read_text()
    sections = re.findall(r"^## \[([^\]]+)\]", text, re.M)
    assert sections[0] == "Unreleased"
    if ".dev" not in gateway.__version__:  # a released version has its section
        assert gateway.__version__ in sections
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", name) for name in sections[1:])
