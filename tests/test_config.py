import pytest

from gateway.config import Settings, from_env, parse_regions


def test_defaults():
    settings = from_env({})
    assert settings == Settings()
    assert settings.regions == {"us": ""} and settings.default_region == "us"


def test_environment_overrides_and_types():
    settings = from_env({"GATEWAY_LOG_MAX_SIZE": "50", "GATEWAY_AUTH_CACHE_SECONDS": "0.5",
                         "GATEWAY_LOG_TIMEZONE": "Asia/Shanghai", "GATEWAY_REGIONS": "us=ctx-a, eu=@in-cluster"})
    assert settings.log_max_size == 50 and settings.auth_cache_seconds == 0.5
    assert settings.log_timezone == "Asia/Shanghai"
    assert settings.regions == {"us": "ctx-a", "eu": "@in-cluster"}


def test_test_mapping_wins_over_environment():
    assert from_env({"GATEWAY_LOG_MAX_SIZE": "50"}, {"log_max_size": 7}).log_max_size == 7


def test_bad_numbers_are_named():
    with pytest.raises(ValueError, match="GATEWAY_MAX_BODY_BYTES"):
        from_env({"GATEWAY_MAX_BODY_BYTES": "lots"})


def test_region_list_parsing():
    assert parse_regions("us") == {"us": ""}
    with pytest.raises(ValueError):
        parse_regions(" , ")
    with pytest.raises(ValueError):
        parse_regions("=ctx")
