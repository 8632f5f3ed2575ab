"""Settings: defaults, environment, test mapping, and the start-up check that stops a process on a bad value
with one line naming the setting and what it accepts."""
from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
import textwrap
from dataclasses import fields

import pytest

from gateway.settings import check as settings_check
from gateway.settings import InvalidSetting, Settings, from_env, parse_regions

from tests.support.harness import ROOT, VENV_BIN


def test_defaults():
    settings = from_env({})
    assert settings == Settings()
    assert settings.regions == {"us": ""} and settings.default_region == "us"


def test_environment_overrides_and_types():
    settings = from_env({"GATEWAY_LOG_MAX_SIZE": "5000", "GATEWAY_AUTH_CACHE_SECONDS": "0.5",
                         "GATEWAY_LOG_TIMEZONE": "Asia/Shanghai", "GATEWAY_REGIONS": "us=ctx-a, eu=@in-cluster"})
    assert settings.log_max_size == 5000 and settings.auth_cache_seconds == 0.5
    assert settings.log_timezone == "Asia/Shanghai"
    assert settings.regions == {"us": "ctx-a", "eu": "@in-cluster"}


def test_test_mapping_wins_over_environment():
    assert from_env({"GATEWAY_LOG_MAX_SIZE": "5000"}, {"log_max_size": 7000}).log_max_size == 7000


def test_region_list_parsing():
    assert parse_regions("us") == {"us": ""}
    with pytest.raises(ValueError):
        parse_regions(" , ")
    with pytest.raises(ValueError):
        parse_regions("=ctx")


def test_every_numeric_setting_carries_its_bounds():
    """The validator reads them: a new numeric field without bounds would accept 0, -1 or nan."""
    for f in fields(Settings):
        if f.type in ("int", "float", int, float):
            assert "min" in f.metadata, f"Settings.{f.name} needs metadata={{'min': ...}}"


def rejected(environ):
    with pytest.raises(InvalidSetting) as caught:
        from_env(environ)
    message = str(caught.value)
    assert "\n" not in message
    return message


# one case per kind of setting: the one line names the variable and says what it accepts
@pytest.mark.parametrize("variable, value, accepts", [
    ("GATEWAY_LOG_TIMEZONE", "Asia/Shangai", "IANA timezone"),                     # unknown timezone
    ("GATEWAY_LOG_TIMEZONE", "../../etc/passwd", "IANA timezone"),
    ("GATEWAY_LOG_MAX_SIZE", "-5", "whole number from 1"),                          # negative size
    ("GATEWAY_AUTH_FAILURE_LIMIT", "0", "whole number from 1"),                     # zero limit
    ("GATEWAY_MAX_BODY_BYTES", "lots", "whole number"),                             # unparsable number
    ("GATEWAY_LIST_MAX_JOBS", "1.5", "whole number"),
    ("GATEWAY_AUTH_CACHE_SECONDS", "nan", "number from 0"),                         # non-finite float
    ("GATEWAY_KUBE_READ_TIMEOUT", "inf", "number from 0.1"),
    ("GATEWAY_KUBE_CONNECT_TIMEOUT", "0", "number from 0.1"),
    ("GATEWAY_LOG_MAX_BYTES", "99999999999999", "to 1073741824"),                   # over the maximum
    ("GATEWAY_ARCHIVE_URL", "mysql://db/x", "postgresql://"),                       # URL
    ("GATEWAY_METRICS_BIND", "localhost", "host:port"),                             # address
    ("GATEWAY_REGIONS", "us=a,=b", "name=value"),                                   # region list
    ("GATEWAY_REGIONS", "u/s=a", "region names"),
    ("GATEWAY_NAMESPACE", "Tenx_Gateway", "DNS-1123 label"),                        # names
    ("GATEWAY_NAMESPACE_PREFIX", "", None),
    ("GATEWAY_HOST_VOLUME_ROOT", "relative/dir", "absolute path"),                  # path
    ("GATEWAY_TENANT_QUOTA_MEMORY", "16 GB", "Kubernetes quantity"),               # quantity
])
def test_a_bad_value_is_named_with_what_it_accepts(variable, value, accepts):
    if accepts is None:  # an empty variable means the default, which is fine
        assert from_env({variable: value}) == Settings()
        return
    message = rejected({variable: value})
    assert message.startswith(f"{variable}=") and accepts in message


def test_a_default_size_above_the_maximum_is_refused():
    assert "GATEWAY_LOG_MAX_SIZE" in rejected({"GATEWAY_LOG_MAX_SIZE": "50"})


def test_a_test_mapping_is_checked_too():
    with pytest.raises(InvalidSetting, match="GATEWAY_AUTH_FAILURE_WINDOW_SECONDS"):
        from_env({}, {"auth_failure_window_seconds": math.nan})


@pytest.mark.parametrize("value, ok", [("127.0.0.1:8080", True), ("0.0.0.0:80", True), ("[::]:8080", True),
                                       ("unix:/run/gw.sock", True), ("gateway:8080", True), ("8080", False),
                                       (":8080", False), ("127.0.0.1:99999", False), ("[zz]:80", False),
                                       ("host:port", False)])
def test_bind_addresses(value, ok):
    assert (settings_check.bind_problem(value) is None) is ok


@pytest.mark.parametrize("value, ok", [("127.0.0.1:9090", True), ("off", True), ("unix:/run/metrics.sock", False),
                                       ("9090", False)])
def test_the_metrics_listener_takes_host_port_or_off(value, ok):
    assert (settings_check.bind_problem(value, metrics=True) is None) is ok
    with pytest.raises(InvalidSetting) if not ok else contextlib.nullcontext():
        from_env({"GATEWAY_METRICS_BIND": value})


@pytest.mark.parametrize("variable, value", [("GATEWAY_BIND", "8080"), ("GATEWAY_WORKERS", "0"),
                                             ("GATEWAY_THREADS", "many"), ("GATEWAY_LOG_LEVEL", "loud"),
                                             ("GATEWAY_WORKER_TIMEOUT", "-1")])
def test_gunicorns_own_variables(variable, value):
    """gunicorn's settings are the gateway's, checked with the rest (gunicorn.conf.py reads them from Settings)."""
    with pytest.raises(InvalidSetting, match=variable):
        from_env({variable: value})


KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: ctx-a, context: {cluster: c, user: u}}, {name: ctx-b, context: {cluster: c, user: u}}]
current-context: ctx-a
"""


@pytest.fixture
def kubeconfig(tmp_path, monkeypatch):
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    from kubernetes.config import kube_config
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


def test_region_contexts_must_exist_in_the_kubeconfig(kubeconfig):
    settings_check.check_contexts(from_env({"GATEWAY_REGIONS": "us=ctx-a,eu=ctx-b,asia"}))
    with pytest.raises(InvalidSetting) as caught:
        settings_check.check_contexts(from_env({"GATEWAY_REGIONS": "us=ctx-a,eu=ctx-typo"}))
    assert str(caught.value) == ("GATEWAY_REGIONS='eu=ctx-typo' is not valid; it accepts contexts of the "
                                 "kubeconfig: ctx-a, ctx-b")


def test_no_kubeconfig_at_all_is_named(tmp_path, monkeypatch):
    from kubernetes.config import kube_config
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(InvalidSetting, match="GATEWAY_REGIONS=.*readable kubeconfig"):
        settings_check.check_contexts(from_env({}))


def _env(tmp_path, **variables):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    env = {key: value for key, value in os.environ.items() if not key.startswith("GATEWAY_")}
    return {**env, "KUBECONFIG": str(kubeconfig), "GATEWAY_DATA_DIR": str(tmp_path), "GATEWAY_BIND": "127.0.0.1:0",
            "GATEWAY_METRICS_BIND": "off", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"), **variables}


def _one_line(result):
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1, result.stderr[-2000:]
    return lines[0]


@pytest.mark.parametrize("variable, value", [("GATEWAY_LOG_TIMEZONE", "Mars/Olympus"),
                                             ("GATEWAY_REGIONS", "us=no-such-context"),
                                             ("GATEWAY_WORKERS", "none")])
def test_gunicorn_stops_at_once_with_one_line(tmp_path, variable, value):
    result = subprocess.run([str(VENV_BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app"],
                            cwd=ROOT, env=_env(tmp_path, **{variable: value}), capture_output=True, text=True,
                            timeout=60)
    assert _one_line(result).startswith(f"tenx-gateway: {variable}=")


def test_the_collector_stops_at_once_with_one_line(tmp_path):
    result = subprocess.run([str(VENV_BIN / "tenx-gateway"), "collect"], cwd=ROOT, capture_output=True, text=True,
                            env=_env(tmp_path, GATEWAY_AUTH_FAILURE_LIMIT="0"), timeout=60)
    assert _one_line(result) == ("tenx-gateway: GATEWAY_AUTH_FAILURE_LIMIT=0 is not valid; it accepts a whole "
                                 "number from 1 to 1000000")


def test_the_collector_checks_region_contexts(tmp_path):
    result = subprocess.run([str(VENV_BIN / "tenx-gateway"), "collect"], cwd=ROOT, capture_output=True, text=True,
                            env=_env(tmp_path, GATEWAY_REGIONS="us=ctx-typo"), timeout=60)
    assert "GATEWAY_REGIONS='us=ctx-typo'" in _one_line(result)


def test_create_app_refuses_a_bad_setting():
    from gateway import create_app
    with pytest.raises(InvalidSetting, match="GATEWAY_LOG_TIMEZONE"):
        create_app({"log_timezone": "Nowhere/Special"})


def test_the_check_script_itself_is_quiet_when_all_is_well(tmp_path):
    code = textwrap.dedent("""
        from gateway.settings import exit_if_invalid
        exit_if_invalid()
        print("fine")
    """)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(tmp_path), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "fine" and result.stderr == ""


def test_a_boolean_setting_is_read_as_one():
    from gateway.settings.parse import _coerce
    assert _coerce("x", bool, "false") is False and _coerce("x", bool, "On") is True
    with pytest.raises(InvalidSetting, match="GATEWAY_X='maybe' is not valid; it accepts true or false"):
        _coerce("x", bool, "maybe")
