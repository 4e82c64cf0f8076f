"""Settings from the environment: a number or a level an operator mistyped stops the start,
naming the variable, instead of a traceback or a value that quietly breaks the service."""

import pytest

from api.settings import ConfigError, load_config


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GRIDWORK_ACCESS_TOKEN_MINUTES", "abc"),  # a ValueError traceback before
        ("GRIDWORK_ACCESS_TOKEN_MINUTES", "-10"),  # every token born expired
        ("GRIDWORK_ACCESS_TOKEN_MINUTES", "0"),
        ("GRIDWORK_REFRESH_TOKEN_DAYS", "1.5"),
        ("GRIDWORK_MAX_UPLOAD_MB", "0"),  # every request with a body refused
        ("GRIDWORK_LOGIN_MAX_FAILURES", "-1"),
        ("GRIDWORK_TRUSTED_PROXIES", "-1"),
        ("GRIDWORK_PUSH_BATCH_SIZE", "0"),
        ("GRIDWORK_PUSH_LEASE_SECONDS", "-120"),
        ("GRIDWORK_TASK_TICK_SECONDS", "１"),  # a full-width digit int() reads
        ("GRIDWORK_STATEMENT_TIMEOUT_S", "-5"),  # every request a 500 from PostgreSQL
        ("GRIDWORK_STATEMENT_TIMEOUT_S", "nan"),
        ("GRIDWORK_PHOTO_MAX_MB", "nan"),  # no photo was ever too large
        ("GRIDWORK_PHOTO_MAX_MB", "inf"),
        ("GRIDWORK_PHOTO_MAX_MB", "0"),
        ("GRIDWORK_OVERLAP_TOLERANCE_M2", "-1"),
        ("GRIDWORK_GRID_MAX_AREA_KM2", "0"),  # every grid refused
        ("GRIDWORK_PUSH_POLL_SECONDS", "ten"),
        ("GRIDWORK_PUSH_WEB_CONCURRENCY", "0"),  # no Web Push would ever be sent
        ("GRIDWORK_PUSH_SEND_BUDGET_SECONDS", "0"),
    ],
)
def test_a_number_setting_out_of_its_range_is_refused_naming_it(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        load_config()


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("GRIDWORK_ACCESS_TOKEN_MINUTES", " 15 ", 15),
        ("GRIDWORK_STATEMENT_TIMEOUT_S", "0", 0.0),  # no limit, as documented
        ("GRIDWORK_TRUSTED_PROXIES", "0", 0),
        ("GRIDWORK_PHOTO_MAX_MB", "2.5", 2.5),
        ("GRIDWORK_OVERLAP_TOLERANCE_M2", "0", 0.0),
        ("GRIDWORK_GRID_MAX_AREA_KM2", "2.5", 2.5),
    ],
)
def test_a_number_setting_in_its_range_is_read(monkeypatch, name, value, expected):
    monkeypatch.setenv(name, value)
    config = load_config()
    key = {
        "GRIDWORK_ACCESS_TOKEN_MINUTES": "ACCESS_TOKEN_MINUTES",
        "GRIDWORK_STATEMENT_TIMEOUT_S": "STATEMENT_TIMEOUT_S",
        "GRIDWORK_TRUSTED_PROXIES": "TRUSTED_PROXIES",
        "GRIDWORK_PHOTO_MAX_MB": "PHOTO_MAX_MB",
        "GRIDWORK_OVERLAP_TOLERANCE_M2": "GRID_OVERLAP_TOLERANCE_M2",
        "GRIDWORK_GRID_MAX_AREA_KM2": "GRID_MAX_AREA_KM2",
    }[name]
    assert config[key] == expected


def test_the_log_level_is_read_in_any_case(monkeypatch):
    # `debug` was a ValueError traceback from logging at every start.
    monkeypatch.setenv("GRIDWORK_LOG_LEVEL", "debug")
    assert load_config()["LOG_LEVEL"] == "DEBUG"


def test_an_unknown_log_level_is_refused_naming_it(monkeypatch):
    monkeypatch.setenv("GRIDWORK_LOG_LEVEL", "verbose")
    with pytest.raises(ConfigError, match="GRIDWORK_LOG_LEVEL"):
        load_config()


def test_an_unknown_environment_is_refused_naming_it(monkeypatch):
    # `GRIDWORK_ENV=dev` ran as production, `Development` too: say so at the start.
    monkeypatch.setenv("GRIDWORK_ENV", "dev")
    with pytest.raises(ConfigError, match="GRIDWORK_ENV"):
        load_config()


@pytest.mark.parametrize("value", ["s3", "Local ", "locale"])
def test_an_unknown_photo_storage_is_refused_at_the_start(monkeypatch, value):
    """Read only when a photo was stored or deleted: `locale` started, then every photo
    upload answered 500 and the retention job failed every two minutes in the worker's log."""
    monkeypatch.setenv("GRIDWORK_PHOTO_STORAGE", value)
    if value.strip().lower() == "local":
        assert load_config()["PHOTO_STORAGE"] == "local"
        return
    with pytest.raises(ConfigError, match="GRIDWORK_PHOTO_STORAGE"):
        load_config()


@pytest.mark.parametrize(
    "value", ["https://app.example.org/", "app.example.org", "*", "https://a.example, https://b/x"]
)
def test_a_cors_origin_a_browser_never_sends_is_refused(monkeypatch, value):
    """A browser's Origin is scheme://host[:port]: a trailing slash, a bare host or `*`
    matched no request, and the office's web app on another host failed every call with a
    CORS error while the server said nothing."""
    monkeypatch.setenv("GRIDWORK_CORS_ORIGINS", value)
    with pytest.raises(ConfigError, match="GRIDWORK_CORS_ORIGINS"):
        load_config()


def test_cors_origins_are_read_as_a_browser_sends_them(monkeypatch):
    monkeypatch.setenv(
        "GRIDWORK_CORS_ORIGINS", " https://app.example.org, http://127.0.0.1:5173,http://[::1]:80 "
    )
    assert load_config()["CORS_ORIGINS"] == (
        "https://app.example.org,http://127.0.0.1:5173,http://[::1]:80"
    )


def test_the_push_retirement_settings_reach_the_config(monkeypatch):
    monkeypatch.setenv("GRIDWORK_PUSH_RETIRE_FAILING_DAYS", "3")
    monkeypatch.setenv("GRIDWORK_PUSH_RETIRE_MIN_FAILURES", "12")
    config = load_config()
    assert (config["PUSH_RETIRE_FAILING_DAYS"], config["PUSH_RETIRE_MIN_FAILURES"]) == (3, 12)
