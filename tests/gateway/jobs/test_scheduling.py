"""gateway.scheduling: the operator's node selector and tolerations, parsed; bad values named at startup."""
import pytest

from gateway import settings as config
from gateway.settings import InvalidSetting
from gateway.jobs.scheduling import PodScheduling, apply, parse_node_selector, parse_tolerations, pod_scheduling


def test_node_selector_pairs():
    assert parse_node_selector("tenx.io/runtime=containerd, disk=ssd") == {"tenx.io/runtime": "containerd",
                                                                            "disk": "ssd"}
    assert parse_node_selector("") == {}
    assert parse_node_selector("zone=") == {"zone": ""}  # an empty label value is a value


@pytest.mark.parametrize("text", ["novalue", "=x", "a=b=c", "bad key=x", "a=b,a=c", "-a=b", "a/b/c=d",
                                  "x=" + "v" * 64])
def test_node_selector_refuses(text):
    with pytest.raises(InvalidSetting, match="GATEWAY_POD_NODE_SELECTOR"):
        parse_node_selector(text)


def test_tolerations_compact_syntax():
    assert parse_tolerations("tenx.io/runtime=containerd:NoSchedule,gpu:NoExecute,spot=yes,dedicated") == [
        {"key": "tenx.io/runtime", "operator": "Equal", "value": "containerd", "effect": "NoSchedule"},
        {"key": "gpu", "operator": "Exists", "effect": "NoExecute"},
        {"key": "spot", "operator": "Equal", "value": "yes"},
        {"key": "dedicated", "operator": "Exists"},
    ]
    assert parse_tolerations(" ") == []


@pytest.mark.parametrize("text", ["a=b:Nope", "a:", "=v:NoSchedule", "a b", "a=b c", ":NoSchedule",
                                  "a=b:noschedule"])
def test_tolerations_refuse(text):
    with pytest.raises(InvalidSetting, match="GATEWAY_POD_TOLERATIONS"):
        parse_tolerations(text)


def test_settings_are_checked_when_read():
    with pytest.raises(InvalidSetting, match="GATEWAY_POD_TOLERATIONS='x=y:Sometimes' is not valid"):
        config.from_env({"GATEWAY_POD_TOLERATIONS": "x=y:Sometimes"})
    with pytest.raises(InvalidSetting, match="GATEWAY_POD_NODE_SELECTOR='x' is not valid"):
        config.from_env({"GATEWAY_POD_NODE_SELECTOR": "x"})
    settings = config.from_env({"GATEWAY_POD_NODE_SELECTOR": "a=b", "GATEWAY_POD_TOLERATIONS": "a=b:NoSchedule"})
    assert pod_scheduling(settings) == PodScheduling({"a": "b"}, [{"key": "a", "operator": "Equal", "value": "b",
                                                                   "effect": "NoSchedule"}])


def test_defaults_leave_the_pod_spec_alone():
    spec = {"containers": []}
    apply(spec, pod_scheduling(config.from_env({})))
    apply(spec, None)
    assert spec == {"containers": []}
