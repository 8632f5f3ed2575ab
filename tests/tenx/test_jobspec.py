"""tenx.jobspec: job.json from run's flags (golden dicts)."""
import pytest

from tenx.errors import UsageError
from tenx.jobspec import RunFlags, build, parse_port, parse_volume, read_spec


def test_image_and_command_make_one_container():
    assert build(RunFlags(image="busybox", command=("sh", "-c", "echo hi"))) == {
        "containers": [{"image": "busybox", "command": ["sh", "-c", "echo hi"]}]}


def test_every_flag():
    flags = RunFlags(image="busybox", command=("echo", "x"), env=("A=1", "B=two=2", "C="), memory="512Mi", cpu="500m",
                     volumes=("data:/data", "cache:/cache:ro"), ports=("8080", "53/udp"), pull_always=True,
                     sync_timezone=True, job={"parallelism": 2, "completions": 4, "backoff_limit": 0,
                                              "active_deadline_seconds": 60, "ttl_seconds_after_finished": None})
    assert build(flags) == {
        "containers": [{
            "image": "busybox", "command": ["echo", "x"], "pull_always": True,
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "two=2"}, {"name": "C", "value": ""}],
            "resources": {"limits": {"memory": "512Mi", "cpu": "500m"}},
            "ports": [{"port": 8080}, {"port": 53, "protocol": "UDP"}],
            "volumeMounts": [{"name": "data", "mountPath": "/data"},
                             {"name": "cache", "mountPath": "/cache", "readOnly": True}]}],
        "volumes": [{"name": "data", "type": "host"}, {"name": "cache", "type": "host"}],
        "sync_timezone": True, "parallelism": 2, "completions": 4, "backoff_limit": 0,
        "active_deadline_seconds": 60}


def test_flags_change_a_file_without_mutating_it():
    base = {"containers": [{"image": "perl", "command": ["echo", "test-cmd"], "env": [{"name": "KEY", "value": "v"},
                                                                                     {"name": "KEEP", "value": "k"}],
                            "resources": {"limits": {"memory": "1Gi", "cpu": "1"}}},
                           {"image": "sidecar"}],
            "volumes": [{"name": "data", "type": "host"}], "sync_timezone": True}
    snapshot = repr(base)
    spec = build(RunFlags(env=("KEY=new",), memory="2Gi", volumes=("data:/d",), sync_timezone=False,
                          job={"parallelism": 3}), base)
    assert spec == {"containers": [{"image": "perl", "command": ["echo", "test-cmd"],
                                    "env": [{"name": "KEEP", "value": "k"}, {"name": "KEY", "value": "new"}],
                                    "resources": {"limits": {"memory": "2Gi", "cpu": "1"}},
                                    "volumeMounts": [{"name": "data", "mountPath": "/d"}]},
                                   {"image": "sidecar"}],
                    "volumes": [{"name": "data", "type": "host"}], "sync_timezone": False, "parallelism": 3}
    assert repr(base) == snapshot


@pytest.mark.parametrize("flags, message", [
    (RunFlags(), "give -f job.json, or --image"),
    (RunFlags(image="b", env=("NOEQUALS",)), "expected KEY=VALUE"),
    (RunFlags(image="b", env=("=v",)), "expected KEY=VALUE"),
    (RunFlags(image="b", volumes=("/data",)), "expected NAME:/path"),
    (RunFlags(image="b", volumes=("d:/x:rx",)), "expected NAME:/path"),
    (RunFlags(image="b", volumes=("Data:/x",)), "lower-case"),
    (RunFlags(image="b", ports=("http",)), "expected PORT"),
])
def test_bad_flags_are_usage_errors(flags, message):
    with pytest.raises(UsageError, match=message):
        build(flags)


def test_bad_files():
    with pytest.raises(UsageError, match="job.json: not valid JSON"):
        read_spec("{", "job.json")
    with pytest.raises(UsageError, match="must be a JSON object"):
        read_spec("[]", "job.json")
    with pytest.raises(UsageError, match="containers must be a list"):
        build(RunFlags(), {"containers": "x"})


def test_parsers():
    assert parse_volume("v:/a:rw") == ({"name": "v", "type": "host"}, {"name": "v", "mountPath": "/a"})
    assert parse_port("80/tcp") == {"port": 80, "protocol": "TCP"}
