"""The OpenSearch archive URL -> client and store options (pure: no cluster)."""
from __future__ import annotations

import pytest

from gateway.settings.check import _archive_url
from gateway.store.opensearch import parse_url


def test_a_plain_url_takes_the_defaults():
    options = parse_url("opensearch://127.0.0.1:19200")
    assert options["prefix"] == "tenx-logs-" and options["refresh"] == "false" and options["template"] is True
    assert options["client"]["hosts"] == [{"host": "127.0.0.1", "port": 19200}]
    assert options["client"]["use_ssl"] is False and "http_auth" not in options["client"]
    assert options["settings"] == {"number_of_shards": 1, "refresh_interval": "1s"}  # replicas: the cluster's


def test_tls_credentials_ca_and_index_settings():
    options = parse_url("opensearchs://tenx:p%40ss%3Aword@search.example.com:9243/logs-?ca_certs=/etc/ca.crt"
                        "&shards=3&replicas=2&refresh=wait_for&refresh_interval=5s&template=false")
    client = options["client"]
    assert client["use_ssl"] is True and client["verify_certs"] is True and client["ca_certs"] == "/etc/ca.crt"
    assert client["http_auth"] == ("tenx", "p@ss:word")
    assert client["hosts"] == [{"host": "search.example.com", "port": 9243}]
    assert options["prefix"] == "logs-" and options["refresh"] == "wait_for" and options["template"] is False
    assert options["settings"] == {"number_of_shards": 3, "number_of_replicas": 2, "refresh_interval": "5s"}
    assert parse_url("https://h:9200/x-?verify=false")["client"]["verify_certs"] is False


@pytest.mark.parametrize("url", ["opensearch://h:9200/Logs-", "opensearch://h:9200/a*b", "opensearch://h/x?refresh=soon",
                                 "mysql://h/x"])
def test_what_it_refuses(url):
    with pytest.raises(ValueError):
        parse_url(url)


def test_the_settings_check_accepts_opensearch_urls():
    assert _archive_url("opensearch://127.0.0.1:19200/tenx-logs-?replicas=0") is None
    assert _archive_url("https://u:p@h:9200") is None
    assert "OpenSearch URL" in _archive_url("opensearch://h/UPPER-")
