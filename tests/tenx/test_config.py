"""tenx.config: the TOML written and read back, profiles, the environment's overrides, mode 0600."""
import stat
import tomllib

import pytest

from tenx import config
from tenx.errors import AuthError, UsageError


def test_dumps_is_toml_that_reads_back_with_awkward_values():
    data = {"current_profile": "work", "profiles": {
        "default": {"url": "http://127.0.0.1:8080", "user": "alice", "token": "t0k\"en\\", "region": "us"},
        "my work": {"url": "https://gw.example", "user": "Bob.B", "token": "line\nbreak\t\u00e9", "region": "eu"}}}
    text = config.dumps(data)
    assert tomllib.loads(text) == data
    assert text.startswith('current_profile = "work"\n\n[profiles.default]\nurl = "http://127.0.0.1:8080"\n')
    assert '[profiles."my work"]' in text


def test_save_makes_the_file_0600_whatever_the_umask(tmp_path):
    import os
    path = tmp_path / "tenx" / "config.toml"
    old = os.umask(0o000)
    try:
        config.save(path, {"profiles": {"default": {"token": "secret"}}})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert not config.loose_mode(path)
    path.chmod(0o644)
    assert config.loose_mode(path)
    config.save(path, config.load(path))  # rewriting tightens it again
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["config.toml"]  # no temporary left behind


def test_config_path_follows_xdg_then_home():
    assert str(config.config_path({"XDG_CONFIG_HOME": "/x"})) == "/x/tenx/config.toml"
    assert str(config.config_path({"HOME": "/home/a"})) == "/home/a/.config/tenx/config.toml"


def test_broken_file_is_a_usage_error_naming_it(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("current_profile = \n")
    with pytest.raises(UsageError, match="config.toml: not valid TOML"):
        config.load(path)
    assert config.load(tmp_path / "absent.toml") == {}


DATA = {"current_profile": "work", "profiles": {
    "default": {"url": "http://a", "user": "alice", "token": "ta", "region": "us"},
    "work": {"url": "http://b/", "user": "bob", "token": "tb"}}}


def test_profile_choice_flag_then_env_then_current_then_default():
    assert config.profile_name(DATA, "default", {"TENX_PROFILE": "x"}) == "default"
    assert config.profile_name(DATA, None, {"TENX_PROFILE": "x"}) == "x"
    assert config.profile_name(DATA, None, {}) == "work"
    assert config.profile_name({}, None, {}) == "default"


def test_credentials_environment_overrides_the_profile_and_flags_the_environment():
    creds = config.credentials(DATA, "work", {})
    assert (creds.url, creds.user, creds.token, creds.region) == ("http://b", "bob", "tb", "us")
    creds = config.credentials(DATA, "work", {"TENX_TOKEN": "te", "TENX_REGION": "eu", "TENX_USER": "carol"})
    assert (creds.user, creds.token, creds.region) == ("carol", "te", "eu")
    creds = config.credentials(DATA, "work", {"TENX_REGION": "eu"}, overrides={"region": "ap", "url": None})
    assert (creds.url, creds.region) == ("http://b", "ap")
    assert "tb" not in repr(config.credentials(DATA, "work", {}))


def test_credentials_without_a_token_say_how_to_log_in():
    with pytest.raises(AuthError, match=r"not logged in \(profile 'none'\): run `tenx login` or set TENX_URL, "
                                        r"TENX_USER, TENX_TOKEN"):
        config.credentials(DATA, "none", {})
    only_env = config.credentials({}, "default", {"TENX_URL": "http://c", "TENX_USER": "u", "TENX_TOKEN": "t"})
    assert only_env.region == "us"


def test_with_profile_adds_and_makes_current_without_touching_the_input():
    before = {"current_profile": "default", "profiles": {"default": {"user": "a"}}}
    after = config.with_profile(before, "new", {"url": "http://n", "user": "n", "token": "t", "region": None})
    assert after == {"current_profile": "new", "profiles": {"default": {"user": "a"},
                                                             "new": {"url": "http://n", "user": "n", "token": "t"}}}
    assert before == {"current_profile": "default", "profiles": {"default": {"user": "a"}}}
