import pytest

from gateway.names import container_names, is_dns1123_label, is_pod_name, is_username, namespace_for


@pytest.mark.parametrize("username, namespace", [
    ("alice", "tenx-alice"),
    ("nkwanglei8lrp", "tenx-nkwanglei8lrp"),
    ("a-b", "tenx-a-b"),
])
def test_plain_user_names_map_readably(username, namespace):
    assert namespace_for(username) == namespace


@pytest.mark.parametrize("username", ["Alice", "a.b", "a_b", "x" * 64, "bob-0123abcd", "-", "9"])
def test_every_user_name_gives_a_valid_namespace(username):
    assert is_dns1123_label(namespace_for(username))


def test_names_that_would_collide_stay_apart():
    names = ["Alice", "alice", "a.b", "a_b", "a-b", "x" * 64, "x" * 63 + "y", "bob-0123abcd"]
    assert len({namespace_for(n) for n in names}) == len(names)


def test_a_name_cannot_pose_as_a_hashed_namespace():
    hashed = namespace_for("Alice")
    impostor = hashed[len("tenx-"):]
    assert namespace_for(impostor) != hashed


def test_prefix_is_configurable():
    assert namespace_for("alice", prefix="jobs-") == "jobs-alice"


@pytest.mark.parametrize("name, ok", [("alice", True), ("A.b_c-9", True), (".", False), ("..", False),
                                      ("-x", False), ("a/b", False), ("", False), ("x" * 65, False)])
def test_user_names(name, ok):
    assert is_username(name) is ok


def test_container_names():
    assert container_names("job", 1) == ["job"]
    assert container_names("job", 3) == ["job", "job-1", "job-2"]
    assert all(len(name) == 63 for name in container_names("y" * 63, 12)[1:])


@pytest.mark.parametrize("job_name", ["x" * 61 + "-1", "x" * 60 + "-1", "a-1", "x" * 62 + "1", "x" * 58 + "-c1-1"])
@pytest.mark.parametrize("count", [2, 3, 12])
def test_container_names_never_repeat_and_are_labels(job_name, count):
    names = container_names(job_name, count)
    assert len(set(names)) == count
    assert all(is_dns1123_label(name) for name in names)


@pytest.mark.parametrize("value", ["abc\n", "abc\r\n", "\nabc"])
def test_a_trailing_newline_is_not_part_of_a_valid_name(value):
    assert not is_dns1123_label(value)
    assert not is_pod_name(value)
    assert not is_username(value)


@pytest.mark.parametrize("name, ok", [("job-api-x7k2p", True), ("a.b-c", True), ("x" * 253, True),
                                      ("x" * 254, False), (".", False), ("..", False), ("a/b", False),
                                      ("A", False), ("a..b", False), (".a", False), ("a.", False), ("", False),
                                      ("%2e%2e", False)])
def test_pod_names(name, ok):
    assert is_pod_name(name) is ok
