"""JobSpecSchema and LogsQuerySchema: every validation rule, and the messages that name the field."""
import datetime as dt

import pytest
from marshmallow import ValidationError

from gateway.schemas import JobSpecSchema, LogsQuerySchema, job_name_errors


def errors_of(body):
    with pytest.raises(ValidationError) as caught:
        JobSpecSchema().load(body)
    return caught.value.normalized_messages()


def container(**fields):
    return {"containers": [{"image": "busybox", **fields}]}


def test_a_minimal_spec_loads_with_defaults():
    assert JobSpecSchema().load({"containers": [{"image": "busybox"}]}) == {
        "containers": [{"image": "busybox", "pull_always": None, "command": None, "args": None, "env": [],
                        "ports": [], "resources": {}, "volume_mounts": []}],
        "volumes": [], "sync_timezone": False, "parallelism": None, "completions": None, "backoff_limit": None,
        "active_deadline_seconds": None, "ttl_seconds_after_finished": None}


def test_containers_are_required_and_not_empty():
    assert "containers" in errors_of({})
    assert errors_of({"containers": []}) == {"containers": ["at least one container is required"]}


def test_image_is_required():
    assert errors_of({"containers": [{}]}) == {"containers": {0: {"image": ["Missing data for required field."]}}}


def test_unknown_fields_are_named():
    messages = errors_of({"containers": [{"image": "x", "imagee": "y"}], "extra": 1})
    assert messages["extra"] == ["Unknown field."]
    assert messages["containers"][0]["imagee"] == ["Unknown field."]


@pytest.mark.parametrize("port", [0, 65536, -1, "22", 22.5])
def test_bad_ports(port):
    assert "port" in errors_of(container(ports=[{"port": port}]))["containers"][0]["ports"][0]


def test_bad_protocol():
    messages = errors_of(container(ports=[{"port": 22, "protocol": "tcp"}]))
    assert "protocol" in messages["containers"][0]["ports"][0]


@pytest.mark.parametrize("port", [1, 65535])
def test_port_bounds(port):
    JobSpecSchema().load(container(ports=[{"port": port, "protocol": "SCTP"}]))


@pytest.mark.parametrize("quantity", ["512Mi", "1G", "125m", "0.5", "2", "1e3", ".5"])
def test_good_quantities(quantity):
    JobSpecSchema().load(container(resources={"limits": {"memory": quantity, "cpu": quantity}}))


@pytest.mark.parametrize("quantity", ["", "-1", "512 Mi", "lots", "1MiB", "1.2.3"])
def test_bad_quantities(quantity):
    messages = errors_of(container(resources={"limits": {"memory": quantity}}))
    assert "memory" in messages["containers"][0]["resources"]["limits"]


def test_mounts_must_name_declared_volumes():
    messages = errors_of(container(volumeMounts=[{"name": "nope", "mountPath": "/data"}]))
    assert messages == {"containers.0.volumeMounts": ["mounts undeclared volume(s): nope"]}


@pytest.mark.parametrize("path", ["data", "./data", "/a/../b", "/c:d"])
def test_mount_paths_are_absolute_and_plain(path):
    body = {**container(volumeMounts=[{"name": "v", "mountPath": path}]), "volumes": [{"name": "v", "type": "host"}]}
    assert "mountPath" in errors_of(body)["containers"][0]["volumeMounts"][0]


def test_mount_paths_are_unique_in_a_container():
    body = {**container(volumeMounts=[{"name": "v", "mountPath": "/d"}, {"name": "v", "mountPath": "/d"}]),
            "volumes": [{"name": "v", "type": "host"}]}
    assert errors_of(body)["containers"][0]["volumeMounts"] == ["mount paths must be unique, repeated: /d"]


@pytest.mark.parametrize("name", ["../etc", "a/b", "UPPER", "-lead", "x" * 64, ""])
def test_volume_names_are_dns_labels(name):
    assert "name" in errors_of({**container(), "volumes": [{"name": name, "type": "host"}]})["volumes"][0]


def test_only_host_volumes():
    messages = errors_of({**container(), "volumes": [{"name": "v", "type": "nfs"}]})
    assert messages["volumes"][0]["type"] == ["volume type 'nfs' is not supported; supported: host"]


def test_reserved_and_repeated_volume_names():
    messages = errors_of({**container(), "volumes": [{"name": "tenxcloud-time-zone", "type": "host"},
                                                     {"name": "a", "type": "host"}, {"name": "a", "type": "host"}]})
    assert messages["volumes"] == ["volume name 'tenxcloud-time-zone' is reserved for sync_timezone",
                                   "volume names must be unique, repeated: a"]


def test_sync_timezone_owns_etc_localtime():
    body = {**container(volumeMounts=[{"name": "v", "mountPath": "/etc/localtime"}]),
            "volumes": [{"name": "v", "type": "host"}], "sync_timezone": True}
    assert errors_of(body) == {"containers.0.volumeMounts": ["/etc/localtime is mounted by sync_timezone"]}


@pytest.mark.parametrize("field, value", [
    ("sync_timezone", "yes"), ("sync_timezone", 1), ("parallelism", -1), ("completions", 0),
    ("backoff_limit", "3"), ("active_deadline_seconds", 0), ("ttl_seconds_after_finished", -5),
    ("parallelism", 2**31),
])
def test_bad_scalars(field, value):
    assert field in errors_of({**container(), field: value})


@pytest.mark.parametrize("fields", [{"pull_always": "true"}, {"command": "echo hi"}, {"command": [1]},
                                    {"env": [{"name": "A=B"}]}, {"env": [{"value": "x"}]}, {"image": "a b"},
                                    {"image": ""}])
def test_bad_container_fields(fields):
    messages = errors_of(container(**fields))
    assert set(messages["containers"][0]) == set(fields)


@pytest.mark.parametrize("name, ok", [("job-api", True), ("a", True), ("x" * 63, True), ("x" * 64, False),
                                      ("Job", False), ("job_api", False), ("-job", False), ("job-", False),
                                      ("job.api", False)])
def test_job_names(name, ok):
    assert (job_name_errors(name) == []) is ok


def logs_query(args, default_size=1000, max_size=10000):
    return LogsQuerySchema(default_size=default_size, max_size=max_size).load(args)


def test_logs_query_defaults():
    assert logs_query({}) == {"date": None, "offset": 0, "size": 1000}


def test_logs_query_parses():
    assert logs_query({"date": "2015.12.29", "from": "10", "size": "100", "other": "x"}) == {
        "date": dt.date(2015, 12, 29), "offset": 10, "size": 100}


@pytest.mark.parametrize("args, field", [
    ({"date": "2015-12-29"}, "date"), ({"date": "2015.13.01"}, "date"), ({"date": "2015.02.30"}, "date"),
    ({"date": "yesterday"}, "date"), ({"from": "-1"}, "from"), ({"from": "1.5"}, "from"), ({"from": "x"}, "from"),
    ({"size": "-3"}, "size"), ({"size": "10001"}, "size"), ({"size": ""}, "size"),
    ({"from": str(2**53)}, "from"), ({"from": "285766972607678021632"}, "from"),  # past what a store can count
])
def test_logs_query_rejects(args, field):
    with pytest.raises(ValidationError) as caught:
        logs_query(args)
    assert field in caught.value.normalized_messages()
