import pytest

from gateway.names import container_name, is_dns1123_label, is_username, namespace_for


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
    assert container_name("job", 0) == "job"
    assert container_name("job", 2) == "job-2"
    assert len(container_name("y" * 63, 12)) == 63
