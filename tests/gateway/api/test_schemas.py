"""JobSpecSchema and LogsQuerySchema: every validation rule, and the messages that name the field."""
import datetime as dt
import time

import pytest
from marshmallow import ValidationError

from gateway.api.schemas import JobLimits, JobSpecSchema, LogsQuerySchema, job_name_errors
from gateway.timefmt import NS


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


@pytest.mark.parametrize("fields", [{"env": [{"name": "A\n"}]}, {"resources": {"limits": {"memory": "1Mi\n"}}},
                                    {"resources": {"limits": {"cpu": "1\n"}}}, {"image": "busybox\n"}])
def test_a_trailing_newline_is_refused(fields):
    assert errors_of(container(**fields))


def test_a_volume_name_with_a_trailing_newline_is_refused():
    assert "name" in errors_of({**container(), "volumes": [{"name": "v\n", "type": "host"}]})["volumes"][0]


@pytest.mark.parametrize("name", ["abc\n", "abc\n\n"])
def test_a_job_name_with_a_trailing_newline_is_refused(name):
    assert job_name_errors(name)


@pytest.mark.parametrize("fields", [{"command": ["echo", "\ud800"]}, {"args": ["\udfff"]},
                                    {"env": [{"name": "A", "value": "x\ud800y"}]}, {"image": "busy\udc00box"}])
def test_lone_surrogates_are_refused(fields):
    messages = errors_of(container(**fields))
    assert "lone surrogate" in str(messages)


def test_null_means_absent_for_every_optional_field():
    body = {"containers": [{"image": "busybox", "pull_always": None, "command": None, "args": None, "env": None,
                            "ports": None, "resources": None, "volumeMounts": None}],
            "volumes": None, "sync_timezone": None, "parallelism": None, "completions": None, "backoff_limit": None,
            "active_deadline_seconds": None, "ttl_seconds_after_finished": None}
    assert JobSpecSchema().load(body) == JobSpecSchema().load({"containers": [{"image": "busybox"}]})


def test_null_inside_optional_objects_means_absent():
    container_with_nulls = {"image": "b", "resources": {"limits": {"cpu": None, "memory": "1Mi"}},
                            "env": [{"name": "A", "value": None}], "ports": [{"port": 22, "protocol": None}],
                            "volumeMounts": [{"name": "v", "mountPath": "/d", "readOnly": None}]}
    loaded = JobSpecSchema().load({"containers": [container_with_nulls], "volumes": [{"name": "v", "type": "host"}]})
    container_ = loaded["containers"][0]
    assert container_["resources"] == {"limits": {"memory": "1Mi"}}
    assert container_["env"] == [{"name": "A", "value": ""}]
    assert container_["ports"] == [{"port": 22, "protocol": "TCP"}]
    assert container_["volume_mounts"] == [{"name": "v", "mount_path": "/d", "read_only": False}]


@pytest.mark.parametrize("body, field", [({"containers": None}, "containers"),
                                         ({"containers": [{"image": None}]}, "containers"),
                                         ({"containers": [None]}, "containers")])
def test_null_for_a_required_field_is_still_refused(body, field):
    assert field in errors_of(body)


LIMITS = JobLimits(parallelism=10, completions=100, containers=3, command_items=4, env_vars=2, container_bytes=64)


def limited_errors(body):
    with pytest.raises(ValidationError) as caught:
        JobSpecSchema(limits=LIMITS).load(body)
    return caught.value.normalized_messages()


@pytest.mark.parametrize("field, value, setting", [("parallelism", 1_000_000, "GATEWAY_JOB_MAX_PARALLELISM"),
                                                   ("completions", 1_000_000, "GATEWAY_JOB_MAX_COMPLETIONS"),
                                                   ("parallelism", 11, "GATEWAY_JOB_MAX_PARALLELISM")])
def test_over_a_job_cap_names_the_field_and_the_cap(field, value, setting):
    messages = limited_errors({**container(), field: value})
    assert messages[field] == [f"must be at most {getattr(LIMITS, field)} ({setting})"]


def test_at_the_caps_is_fine():
    JobSpecSchema(limits=LIMITS).load({"containers": [{"image": "a", "command": ["1", "2", "3", "4"],
                                                       "env": [{"name": "A"}, {"name": "B"}]}] * 3,
                                       "parallelism": 10, "completions": 100})


def test_too_many_containers():
    assert limited_errors({"containers": [{"image": "a"}] * 4}) == {
        "containers": ["there may be at most 3 (GATEWAY_JOB_MAX_CONTAINERS)"]}


def test_too_many_command_items_env_vars_and_bytes():
    messages = limited_errors(container(command=["x"] * 5, args=["y"] * 5, env=[{"name": f"E{i}"} for i in range(3)]))
    assert messages["containers.0.command"] == ["may have at most 4 (GATEWAY_JOB_MAX_COMMAND_ITEMS)"]
    assert messages["containers.0.args"] == ["may have at most 4 (GATEWAY_JOB_MAX_COMMAND_ITEMS)"]
    assert messages["containers.0.env"] == ["may have at most 2 (GATEWAY_JOB_MAX_ENV_VARS)"]
    assert "containers.0" not in messages  # 16 bytes
    big = limited_errors(container(command=["x" * 65]))
    assert big == {"containers.0": ["command, args and env take 65 bytes; there may be at most 64 "
                                    "(GATEWAY_JOB_MAX_CONTAINER_BYTES)"]}


def test_no_limits_without_settings():
    JobSpecSchema().load({**container(), "parallelism": 1_000_000, "completions": 1_000_000})


def logs_query(args, default_size=1000, max_size=10000):
    return LogsQuerySchema(default_size=default_size, max_size=max_size).load(args)


def test_logs_query_defaults():
    assert logs_query({}) == {"date": None, "offset": 0, "size": 1000, "since": None, "timestamps": False}


def test_logs_query_parses():
    assert logs_query({"date": "2015.12.29", "from": "10", "size": "100", "other": "x"}) == {
        "date": dt.date(2015, 12, 29), "offset": 10, "size": 100, "since": None, "timestamps": False}


@pytest.mark.parametrize("text, ns", [
    ("2026-11-28T09:00:00Z", 1795856400 * NS),
    ("2026-11-28t09:00:00.5z", 1795856400 * NS + 500_000_000),
    ("2026-11-28T09:00:00.123456789Z", 1795856400 * NS + 123_456_789),
    ("2026-11-28T17:00:00+08:00", 1795856400 * NS),
    ("1969-12-31T23:59:59Z", -NS),
])
def test_logs_query_since_takes_an_rfc3339_time_to_the_nanosecond(text, ns):
    assert logs_query({"since": text})["since"] == ns


@pytest.mark.parametrize("text, seconds", [("10m", 600), ("1h30m", 5400), ("45s", 45), ("2h0m5s", 7205), ("0s", 0)])
def test_logs_query_since_takes_a_duration_back_from_now(text, seconds):
    before = time.time_ns()
    since = logs_query({"since": text})["since"]
    assert before - seconds * NS <= since <= time.time_ns() - seconds * NS


def test_logs_query_since_further_back_than_1970_is_every_line():
    assert logs_query({"since": "999999999h"})["since"] == 0


@pytest.mark.parametrize("text, flag", [("true", True), ("TRUE", True), ("1", True), ("false", False),
                                        ("0", False), ("", False)])
def test_logs_query_timestamps(text, flag):
    assert logs_query({"timestamps": text})["timestamps"] is flag


@pytest.mark.parametrize("args, field", [
    ({"date": "2015-12-29"}, "date"), ({"date": "2015.13.01"}, "date"), ({"date": "2015.02.30"}, "date"),
    ({"date": "yesterday"}, "date"), ({"from": "-1"}, "from"), ({"from": "1.5"}, "from"), ({"from": "x"}, "from"),
    ({"size": "-3"}, "size"), ({"size": "10001"}, "size"),
    ({"from": str(2**53)}, "from"), ({"from": "285766972607678021632"}, "from"),  # past what a store can count
    ({"since": "10"}, "since"), ({"since": "10d"}, "since"), ({"since": "m"}, "since"), ({"since": "1m30"}, "since"),
    ({"since": "\u0661\u0660m"}, "since"), ({"since": "2026-11-28"}, "since"), ({"since": "2026-11-28T09:00Z"}, "since"),
    ({"since": "2026-02-30T09:00:00Z"}, "since"), ({"since": "2026-11-28T09:00:00"}, "since"),
    ({"since": "2026-11-28T09:00:00.1234567891Z"}, "since"), ({"since": " 10m"}, "since"),
    ({"timestamps": "yes"}, "timestamps"), ({"timestamps": "2"}, "timestamps"),
])
def test_logs_query_rejects(args, field):
    with pytest.raises(ValidationError) as caught:
        logs_query(args)
    assert field in caught.value.normalized_messages()


@pytest.mark.parametrize("value", ["1_000", "\u0663", "\uff11\uff12", " 5", "5 ", "+5", "5\n", "1e3", "0x10", "--5"])
@pytest.mark.parametrize("field", ["from", "size"])
def test_from_and_size_are_ascii_whole_numbers_as_last_event_id_is(field, value):
    with pytest.raises(ValidationError) as caught:
        logs_query({field: value})
    assert field in caught.value.normalized_messages()


def test_leading_zeros_are_still_whole_numbers():
    assert logs_query({"from": "007", "size": "010"}) == {"date": None, "offset": 7, "size": 10, "since": None,
                                                           "timestamps": False}
