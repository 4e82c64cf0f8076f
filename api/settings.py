"""Configuration: every setting gridwork reads; environment variables map onto it here."""

from __future__ import annotations

import logging
import math
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/gridwork"
# The checkout (api/, pyproject.toml): what a relative GRIDWORK_PHOTO_DIR is taken from.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """A setting that cannot work, named: the console says it in one line."""


# A number as an operator writes it: ASCII digits, an optional sign, fraction and exponent
# (int() and float() also read "１", "1_0", "nan" and "inf").
_WHOLE_TEXT = re.compile(r"[+-]?[0-9]+")
_DECIMAL_TEXT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _whole(minimum: int):
    """A whole number of at least `minimum`: a count, a lifetime, a limit."""

    def parse(value: str) -> int:
        text = value.strip()
        if not _WHOLE_TEXT.fullmatch(text):
            raise ValueError(f"must be a whole number, not {value!r}")
        number = int(text)
        if number < minimum:
            raise ValueError(f"must be at least {minimum}, not {number}")
        return number

    parse.__name__ = "whole"
    return parse


def _decimal(minimum: float, *, above: bool = False):
    """A finite number of at least `minimum` (above it, with `above`): seconds, sizes, areas."""

    def parse(value: str) -> float:
        text = value.strip()
        if not _DECIMAL_TEXT.fullmatch(text) or not math.isfinite(number := float(text)):
            raise ValueError(f"must be a number, not {value!r}")
        if number < minimum or (above and number == minimum):
            raise ValueError(
                f"must be {'above' if above else 'at least'} {minimum:g}, not {value!r}"
            )
        return number

    parse.__name__ = "decimal"
    return parse


def _log_level(value: str) -> str:
    level = value.strip().upper()
    if not isinstance(logging.getLevelName(level), int):
        raise ValueError(f"must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {value!r}")
    return level


ENVIRONMENTS = ("production", "development")


def _environment(value: str) -> str:
    env = value.strip().lower()
    if env not in ENVIRONMENTS:
        # `dev` ran as production, unnoticed until the data key was refused (or worse, was set).
        raise ValueError(f"must be production or development, not {value!r}")
    return env


def _photo_storage(value: str) -> str:
    kind = value.strip().lower()
    if kind != "local":  # the only one so far (api/services/photos.build_storage)
        raise ValueError(f"must be local, not {value!r}")
    return kind


# An origin as a browser sends it in `Origin`: scheme://host[:port], nothing after.
_ORIGIN = re.compile(r"https?://(\[[0-9A-Fa-f:.]+\]|[^/\s:\[\]]+)(:[0-9]+)?")


def _origins(value: str) -> str:
    origins = [o.strip() for o in value.split(",") if o.strip()]
    for origin in origins:
        if not _ORIGIN.fullmatch(origin):
            # `https://app.example.org/`, a bare host or `*` matched no browser's request.
            raise ValueError(
                f"must list origins as a browser sends them (https://host or "
                f"https://host:port, comma-separated), not {origin!r}"
            )
    return ",".join(origins)


_POSITIVE = _whole(1)
_COUNT = _whole(0)

# Environment variable -> (config key, parser). Only names listed here are read; a value the
# parser refuses stops the start with a ConfigError naming the variable.
_ENV: dict[str, tuple[str, Any]] = {
    "DATABASE_URL": ("DATABASE_URL", str),
    "GRIDWORK_SECRET_KEY": ("SECRET_KEY", str),
    "GRIDWORK_SECRET_KEY_FALLBACKS": ("SECRET_KEY_FALLBACKS", str),
    "GRIDWORK_JWT_SECRET": ("JWT_SECRET_KEY", str),
    "GRIDWORK_JWT_SECRET_FALLBACKS": ("JWT_SECRET_KEY_FALLBACKS", str),
    "GRIDWORK_ACCESS_TOKEN_MINUTES": ("ACCESS_TOKEN_MINUTES", _POSITIVE),
    "GRIDWORK_REFRESH_TOKEN_DAYS": ("REFRESH_TOKEN_DAYS", _POSITIVE),
    "GRIDWORK_MAX_UPLOAD_MB": ("MAX_UPLOAD_MB", _POSITIVE),
    "GRIDWORK_STATEMENT_TIMEOUT_S": ("STATEMENT_TIMEOUT_S", _decimal(0)),
    "GRIDWORK_OVERLAP_TOLERANCE_M2": ("GRID_OVERLAP_TOLERANCE_M2", _decimal(0)),
    "GRIDWORK_GRID_MAX_AREA_KM2": ("GRID_MAX_AREA_KM2", _decimal(0, above=True)),
    "GRIDWORK_LOG_LEVEL": ("LOG_LEVEL", _log_level),
    "GRIDWORK_BASEMAP_URL": ("BASEMAP_URL", str),
    "GRIDWORK_WEB_DIST": ("WEB_DIST", str),
    "GRIDWORK_ENV": ("GRIDWORK_ENV", _environment),
    "GRIDWORK_DATA_KEY": ("DATA_KEY", str),
    "GRIDWORK_OLD_DATA_KEYS": ("OLD_DATA_KEYS", str),
    "GRIDWORK_CORS_ORIGINS": ("CORS_ORIGINS", _origins),
    "GRIDWORK_TRUSTED_PROXIES": ("TRUSTED_PROXIES", _COUNT),
    "GRIDWORK_LOGIN_MAX_FAILURES": ("LOGIN_MAX_FAILURES", _POSITIVE),
    "GRIDWORK_LOGIN_MAX_FAILURES_PER_IP": ("LOGIN_MAX_FAILURES_PER_IP", _POSITIVE),
    "GRIDWORK_LOGIN_WINDOW_MINUTES": ("LOGIN_WINDOW_MINUTES", _POSITIVE),
    # Push (read by push.build_channels under these same names) and the push worker.
    "GRIDWORK_PUSH_BACKEND": ("GRIDWORK_PUSH_BACKEND", str),
    "GRIDWORK_FCM_CREDENTIALS": ("GRIDWORK_FCM_CREDENTIALS", str),
    "GOOGLE_APPLICATION_CREDENTIALS": ("GOOGLE_APPLICATION_CREDENTIALS", str),
    "GRIDWORK_FCM_URL": ("GRIDWORK_FCM_URL", str),
    "GRIDWORK_VAPID_PRIVATE_KEY": ("GRIDWORK_VAPID_PRIVATE_KEY", str),
    "GRIDWORK_VAPID_PUBLIC_KEY": ("GRIDWORK_VAPID_PUBLIC_KEY", str),
    "GRIDWORK_VAPID_SUBJECT": ("GRIDWORK_VAPID_SUBJECT", str),
    "GRIDWORK_PUSH_ALLOW_PRIVATE_ENDPOINTS": ("GRIDWORK_PUSH_ALLOW_PRIVATE_ENDPOINTS", str),
    "GRIDWORK_PUSH_BATCH_SIZE": ("PUSH_BATCH_SIZE", _POSITIVE),
    "GRIDWORK_PUSH_LEASE_SECONDS": ("PUSH_LEASE_SECONDS", _POSITIVE),
    "GRIDWORK_PUSH_MAX_ATTEMPTS": ("PUSH_MAX_ATTEMPTS", _POSITIVE),
    "GRIDWORK_PUSH_MAX_LOST_ROUNDS": ("PUSH_MAX_LOST_ROUNDS", _POSITIVE),
    "GRIDWORK_PUSH_POLL_SECONDS": ("PUSH_POLL_SECONDS", _decimal(0)),
    "GRIDWORK_PUSH_WEB_CONCURRENCY": ("PUSH_WEB_CONCURRENCY", _POSITIVE),
    "GRIDWORK_PUSH_SEND_BUDGET_SECONDS": ("PUSH_SEND_BUDGET_SECONDS", _POSITIVE),
    "GRIDWORK_PUSH_RETIRE_FAILING_DAYS": ("PUSH_RETIRE_FAILING_DAYS", _POSITIVE),
    "GRIDWORK_PUSH_RETIRE_MIN_FAILURES": ("PUSH_RETIRE_MIN_FAILURES", _POSITIVE),
    "GRIDWORK_TASK_TICK_SECONDS": ("TASK_TICK_SECONDS", _POSITIVE),
    "GRIDWORK_AUDIT_MERGE_SECONDS": ("AUDIT_MERGE_SECONDS", _POSITIVE),
    "GRIDWORK_RETAIN_VISIT_TRACKS_DAYS": ("RETAIN_VISIT_TRACKS_DAYS", _POSITIVE),
    "GRIDWORK_RETAIN_PHOTOS_DAYS": ("RETAIN_PHOTOS_DAYS", _POSITIVE),
    "GRIDWORK_RETAIN_READ_NOTIFICATIONS_DAYS": ("RETAIN_READ_NOTIFICATIONS_DAYS", _POSITIVE),
    "GRIDWORK_RETAIN_NOTIFICATIONS_DAYS": ("RETAIN_NOTIFICATIONS_DAYS", _POSITIVE),
    "GRIDWORK_RETAIN_DELIVERIES_DAYS": ("RETAIN_DELIVERIES_DAYS", _POSITIVE),
    "GRIDWORK_RETAIN_COMPLAINANTS_DAYS": ("RETAIN_COMPLAINANTS_DAYS", _POSITIVE),
    "GRIDWORK_RETAIN_REMOVED_HOUSEHOLDS_DAYS": ("RETAIN_REMOVED_HOUSEHOLDS_DAYS", _POSITIVE),
    "GRIDWORK_RETENTION_BATCH": ("RETENTION_BATCH", _POSITIVE),
    "GRIDWORK_RETENTION_SECONDS": ("RETENTION_SECONDS", _POSITIVE),
    "GRIDWORK_PHOTO_STORAGE": ("PHOTO_STORAGE", _photo_storage),
    "GRIDWORK_PHOTO_DIR": ("PHOTO_DIR", str),
    "GRIDWORK_PHOTO_MAX_MB": ("PHOTO_MAX_MB", _decimal(0, above=True)),
    "GRIDWORK_TASK_EXPORT_MAX_ROWS": ("TASK_EXPORT_MAX_ROWS", _POSITIVE),
}


def normalise_database_url(url: str) -> str:
    """Accept libpq-style URLs (postgres://, postgresql://) and pin the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def key_list(keys: str | Iterable[str] | None) -> list[str]:
    """Keys given comma-separated (an environment variable) or as a list: trimmed, empty
    entries dropped."""
    if keys is None:
        return []
    if isinstance(keys, str):
        keys = keys.split(",")
    return [key.strip() for key in keys if key.strip()]


def _check_database_url(url: str) -> str:
    if not url.startswith("postgresql+psycopg://"):
        scheme = url.partition("://")[0] if "://" in url else url[:20]  # never a password
        raise ConfigError(
            "DATABASE_URL must be a PostgreSQL URL (postgresql://user@host:port/database), "
            f"not {scheme!r}"
        )
    return url


class Config:
    """Defaults; `load_config` overlays the environment and an explicit test mapping."""

    DATABASE_URL = DEFAULT_DATABASE_URL
    SECRET_KEY: str | None = None
    # Previous signing keys, most recent first (Flask's SECRET_KEY_FALLBACKS): what was signed
    # with them (tokens, calendar feed URLs, kept idempotency keys) still verifies; nothing new
    # is signed with them. A key rotation (docs/security.md) lists the old key here for a while.
    SECRET_KEY_FALLBACKS: list[str] = []
    # The tokens' signing key, SECRET_KEY unless set; its fallbacks are SECRET_KEY's then.
    JWT_SECRET_KEY: str | None = None
    JWT_SECRET_KEY_FALLBACKS: list[str] = []
    ACCESS_TOKEN_MINUTES = 60
    REFRESH_TOKEN_DAYS = 30
    MAX_UPLOAD_MB = 20
    # How long one SQL statement of a request may run (lock waits included) before PostgreSQL
    # cancels it and the request answers 503; 0: no limit. The console's commands (a city
    # seed, a report check) run without one (api/cli._app). Below gunicorn's timeout (120 s),
    # so a stuck request gives back its connection before its worker is killed.
    STATEMENT_TIMEOUT_S = 30.0
    GRID_OVERLAP_TOLERANCE_M2 = 1.0
    # The most one grid's boundary may cover, km². A grid is ~300 households, a few streets
    # (the demo's largest is 0.7 km²); a grid drawn over a province kept, by the overlap
    # check, every other community's grid out of it.
    GRID_MAX_AREA_KM2 = 20.0
    LOG_LEVEL = "INFO"
    # The map's optional raster basemap, an XYZ URL template ({z}/{x}/{y}); none by default.
    BASEMAP_URL: str | None = None
    # The Web Push VAPID public key (base64url) the workers' app subscribes with.
    # Where the built web assets are (default: web/dist of this checkout).
    WEB_DIST: str | None = None
    # "production" (default) or "development": only a development deployment (or a test suite,
    # TESTING) may run without DATA_KEY, on the development key that is in the source.
    GRIDWORK_ENV = "production"
    # base64 of 32 bytes; encrypts sensitive columns (phones, notes). Required in production.
    DATA_KEY: str | None = None
    # Previous data keys, comma-separated, still read while `gridwork security encrypt` rotates.
    OLD_DATA_KEYS: str | None = None
    # Refuse to start on a database holding data sealed by a key not configured above
    # (api/keyguard.py). Not an environment setting: only `gridwork security check-key`, which
    # reports that instead, turns it off.
    DATA_KEY_CHECK = True
    # Comma-separated origins allowed to call the API from a browser (none by default).
    CORS_ORIGINS = ""
    # How many proxies (a load balancer, a TLS terminator) stand in front of the API and append
    # the client's address to X-Forwarded-For (and its scheme to X-Forwarded-Proto): the
    # address the sign-in throttle, audit entries and sessions record is then the client's.
    # 0: the header is ignored, as any client could write it.
    TRUSTED_PROXIES = 0
    LOGIN_MAX_FAILURES = 5
    LOGIN_MAX_FAILURES_PER_IP = 30
    LOGIN_WINDOW_MINUTES = 15
    # Push: "fcm" (FCM + Web Push, each off without its credentials), "log" or "off".
    GRIDWORK_PUSH_BACKEND = "fcm"
    GRIDWORK_FCM_CREDENTIALS: str | None = None
    GOOGLE_APPLICATION_CREDENTIALS: str | None = None
    GRIDWORK_FCM_URL: str | None = None  # replaces https://fcm.googleapis.com
    GRIDWORK_VAPID_PRIVATE_KEY: str | None = None
    GRIDWORK_VAPID_PUBLIC_KEY: str | None = None  # handed to the web app to subscribe
    GRIDWORK_VAPID_SUBJECT: str | None = None
    # "true": Web Push may send to loopback and private addresses (a push service on 127.0.0.1
    # in tests). Unset: endpoints that resolve there are refused, as subscriptions are user input.
    GRIDWORK_PUSH_ALLOW_PRIVATE_ENDPOINTS: str | None = None
    PUSH_BATCH_SIZE = 500  # deliveries claimed per round
    PUSH_LEASE_SECONDS = 120  # a claim not marked by then is retried (worker died mid-batch)
    # A push answered "retry" is retried for its message's day to live, then dead as expired
    # (still in the inbox); these bound the rest: claims in all, and rounds that died between
    # send and mark (a crash loop would re-send the batch at every lease).
    PUSH_MAX_ATTEMPTS = 200
    PUSH_MAX_LOST_ROUNDS = 3
    PUSH_POLL_SECONDS = 1.0  # idle wait between rounds
    # Web Push sends one request per message (20 s at most): a round has this many in flight at
    # once, so an endpoint that hangs (any user may register up to 10, on any host) holds one
    # slot, not every push behind it; and it hands out no new one after the budget (the rest
    # are handed back, due at once), so a round full of such hosts still ends and claims again.
    PUSH_WEB_CONCURRENCY = 16
    PUSH_SEND_BUDGET_SECONDS = 30
    # A device whose sends have failed (timeouts, connections refused, 5xx) with none going
    # for this many days, at least this many times in a row, is retired (deactivated, listed
    # to its owner as retired), while pushes still reach other devices of its platform.
    PUSH_RETIRE_FAILING_DAYS = 7
    PUSH_RETIRE_MIN_FAILURES = 10
    TASK_TICK_SECONDS = 60  # how often the push worker runs the task deadline tick
    # How often it merges the audit index's pending list (migration 0032): a few MB each time
    # even if map tiles wrote ~20 MB of entries a minute (a guess at a busy city's peak).
    AUDIT_MERGE_SECONDS = 10
    # Retention (api/services/retention.py, docs/security.md): after how many days a visit's
    # precise track is coarsened to ~100 m (and its follow-up task's point), a photo deleted,
    # a read notification deleted, an unread one, a finished push delivery, a closed task's
    # complainant erased (counted from the close: the hotline's callback and any appeal of
    # the handling are over by then); how many rows of each a run touches at most, and how
    # often the push worker runs it.
    RETAIN_VISIT_TRACKS_DAYS = 90
    RETAIN_PHOTOS_DAYS = 180
    RETAIN_READ_NOTIFICATIONS_DAYS = 90
    RETAIN_NOTIFICATIONS_DAYS = 365
    RETAIN_DELIVERIES_DAYS = 30
    RETAIN_COMPLAINANTS_DAYS = 180
    # A household out of the register: its phone and care tags, from its removal (an undo of a
    # mistaken removal, a family back after a season away, within half a year).
    RETAIN_REMOVED_HOUSEHOLDS_DAYS = 180
    RETENTION_BATCH = 2000
    RETENTION_SECONDS = 120
    # Visit photos: the storage backend ("local": files under PHOTO_DIR) and the size limit.
    PHOTO_STORAGE = "local"
    PHOTO_DIR = "var/photos"
    PHOTO_MAX_MB = 10.0
    # The most tasks a ledger file holds (GET /tasks/export): a week of a 3,000-grid city is
    # ~9,000; more is a 422 asking for a narrower file.
    TASK_EXPORT_MAX_ROWS = 20_000

    API_TITLE = "gridwork"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api/v1"
    OPENAPI_JSON_PATH = "openapi.json"
    OPENAPI_SWAGGER_UI_PATH = "docs"
    OPENAPI_SWAGGER_UI_URL = "/api/v1/docs/assets/"
    API_SPEC_OPTIONS = {
        "info": {
            "description": (
                "gridwork: grids, households, rosters, visits and tasks for community grid "
                "workers. Errors are RFC 9457 problem details (application/problem+json)."
            )
        },
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            }
        },
        "security": [{"bearerAuth": []}],
    }
    JSON_SORT_KEYS = False


def load_config(test_config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Build the app's configuration: class defaults, then the environment, then `test_config`."""
    cfg = {k: getattr(Config, k) for k in dir(Config) if k.isupper()}
    for env_name, (key, parse) in _ENV.items():
        if env_name in os.environ and os.environ[env_name] != "":
            try:
                cfg[key] = parse(os.environ[env_name])
            except ValueError as exc:
                raise ConfigError(f"{env_name} {exc}") from None
    if test_config:
        cfg.update(test_config)
    cfg["DATABASE_URL"] = _check_database_url(normalise_database_url(cfg["DATABASE_URL"]))
    # Without configured secrets every process start invalidates tokens: fine for a demo,
    # never silently shared between deployments.
    cfg["SECRET_KEY"] = cfg["SECRET_KEY"] or secrets.token_hex(32)
    cfg["SECRET_KEY_FALLBACKS"] = key_list(cfg["SECRET_KEY_FALLBACKS"])
    cfg["JWT_SECRET_KEY_FALLBACKS"] = key_list(cfg["JWT_SECRET_KEY_FALLBACKS"])
    if not cfg["JWT_SECRET_KEY"]:
        if cfg["JWT_SECRET_KEY_FALLBACKS"]:
            raise ConfigError(
                "GRIDWORK_JWT_SECRET_FALLBACKS is set without GRIDWORK_JWT_SECRET: tokens are "
                "signed with GRIDWORK_SECRET_KEY, whose old keys go in "
                "GRIDWORK_SECRET_KEY_FALLBACKS."
            )
        cfg["JWT_SECRET_KEY"] = cfg["SECRET_KEY"]
        cfg["JWT_SECRET_KEY_FALLBACKS"] = list(cfg["SECRET_KEY_FALLBACKS"])
    cfg["JWT_ACCESS_TOKEN_EXPIRES"] = timedelta(minutes=cfg["ACCESS_TOKEN_MINUTES"])
    cfg["JWT_REFRESH_TOKEN_EXPIRES"] = timedelta(days=cfg["REFRESH_TOKEN_DAYS"])
    cfg["MAX_CONTENT_LENGTH"] = cfg["MAX_UPLOAD_MB"] * 1024 * 1024
    cfg["PHOTO_DIR"] = photo_dir(cfg["PHOTO_DIR"])
    return cfg


def photo_dir(value: str) -> str:
    """PHOTO_DIR as an absolute path, the same for every process of a deployment.

    A relative one (the default `var/photos`) was taken from each process's working
    directory: an API and a push worker (whose retention deletes photos) started from two
    directories used two photo directories. It is taken from the project root, where
    scripts/demo.sh and the README's commands run. Photos already kept under the working
    directory's `value` (a deployment started elsewhere) stop the start, naming both paths,
    rather than being left behind unseen; nothing is moved."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return str(path)
    if not (PROJECT_ROOT / "pyproject.toml").is_file():
        raise ConfigError(
            f"GRIDWORK_PHOTO_DIR={value} is relative and gridwork is not run from its "
            "checkout: set it to an absolute path (where the photos are, or are to be)."
        )
    resolved = PROJECT_ROOT / path
    here = (Path.cwd() / path).resolve()
    if here != resolved.resolve() and here.is_dir():
        raise ConfigError(
            f"GRIDWORK_PHOTO_DIR={value} is relative: it means {resolved} (from the project "
            f"root), but {here} exists (from the working directory, where photos were kept "
            f"before): set GRIDWORK_PHOTO_DIR to the absolute path of the one that holds the "
            f"photos, e.g. GRIDWORK_PHOTO_DIR={here}."
        )
    return str(resolved)
