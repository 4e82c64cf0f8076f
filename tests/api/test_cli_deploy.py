"""What an operator deploying gridwork meets at the console: `gridwork serve` refuses a guessable
signing key and a server without workers (the processes themselves:
tests/faults/test_serve_secrets.py); `gridwork db upgrade` needs only its own database."""

import click
import pytest

from api.cli import _one_signing_key

STRONG = "7f3a9c1e5b2d8f4a6c0e9b7d3f1a5c8e"  # as `gridwork security new-key` makes one


@pytest.fixture()
def production(monkeypatch):
    for name in (
        "GRIDWORK_SECRET_KEY",
        "GRIDWORK_SECRET_KEY_FALLBACKS",
        "GRIDWORK_JWT_SECRET",
        "GRIDWORK_JWT_SECRET_FALLBACKS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GRIDWORK_ENV", "production")
    monkeypatch.setenv("GRIDWORK_SECRET_KEY", STRONG)
    return monkeypatch


def test_a_strong_secret_key_starts(production):
    _one_signing_key()


@pytest.mark.parametrize("jwt_secret", ["secret", "j" * 31])
def test_a_weak_jwt_secret_does_not_start(production, jwt_secret):
    """GRIDWORK_JWT_SECRET signs the tokens when set: `secret` started beside a strong
    GRIDWORK_SECRET_KEY, and anyone could forge an admin's token. The message never says it."""
    production.setenv("GRIDWORK_JWT_SECRET", jwt_secret)
    with pytest.raises(click.ClickException, match="GRIDWORK_JWT_SECRET") as refused:
        _one_signing_key()
    assert jwt_secret not in refused.value.message


def test_a_strong_jwt_secret_starts(production):
    production.setenv("GRIDWORK_JWT_SECRET", "jwt-" + STRONG)
    _one_signing_key()


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("GRIDWORK_SECRET_KEY", " " * 32),
        ("GRIDWORK_SECRET_KEY", "j" * 40),
        ("GRIDWORK_JWT_SECRET", "ab" * 20),
        ("GRIDWORK_SECRET_KEY_FALLBACKS", "0" * 64),
    ],
)
def test_a_long_key_of_few_characters_does_not_start(production, name, key):
    """Its length said nothing of it: 32 spaces, or one letter 40 times, is guessed at once."""
    production.setenv(name, key)
    with pytest.raises(click.ClickException, match=name) as refused:
        _one_signing_key()
    assert "different characters" in refused.value.message


def test_a_development_run_may_use_a_short_jwt_secret(production):
    production.setenv("GRIDWORK_ENV", "development")
    production.setenv("GRIDWORK_JWT_SECRET", "dev")
    _one_signing_key()


@pytest.mark.parametrize("workers", ["0", "-1"])
def test_serve_refuses_a_server_without_workers(production, monkeypatch, workers):
    """`--workers 0` started gunicorn's master listening on the port with no worker: every
    connection hung unanswered, the process up and quiet."""
    from click.testing import CliRunner
    from gunicorn.app.base import BaseApplication

    from api.cli import main

    started = []
    monkeypatch.setattr(BaseApplication, "run", lambda self: started.append(self))
    result = CliRunner().invoke(main, ["serve", "--port", "1", "--workers", workers])
    assert result.exit_code == 2, result.output
    assert "--workers" in result.output
    assert started == []


def test_db_upgrade_of_an_existing_database_does_not_reach_for_the_postgres_database(
    database_url, monkeypatch
):
    """`gridwork db upgrade` connected to the server's `postgres` database first, to see
    whether its own existed: behind a pgbouncer that serves only gridwork's database, or a
    server whose pg_hba lets the account into its database alone, the upgrade of a database
    that was there all along failed with "cannot reach the database"."""
    import sqlalchemy
    from sqlalchemy.engine import make_url

    from api import cli

    reached = []
    real = sqlalchemy.create_engine

    def create_engine(url, *args, **kwargs):
        reached.append(make_url(url).database)
        return real(url, *args, **kwargs)

    monkeypatch.setattr(sqlalchemy, "create_engine", create_engine)
    assert cli.ensure_database(database_url) is False
    assert reached and "postgres" not in reached


@pytest.mark.parametrize("data_key", [None, "not-base64-of-32-bytes"])
def test_serve_without_a_usable_data_key_stops_before_gunicorn_starts(
    production, monkeypatch, data_key
):
    """Each gunicorn worker found the data key missing or broken as it loaded the app, after
    the master had bound the port: a traceback per worker, then "Worker failed to boot". It is
    now one line, before anything listens."""
    from click.testing import CliRunner
    from gunicorn.app.base import BaseApplication

    from api.cli import main

    if data_key is None:
        monkeypatch.delenv("GRIDWORK_DATA_KEY", raising=False)
    else:
        monkeypatch.setenv("GRIDWORK_DATA_KEY", data_key)
    started = []
    monkeypatch.setattr(BaseApplication, "run", lambda self: started.append(self))
    result = CliRunner().invoke(main, ["serve", "--port", "1"])
    assert started == []
    assert result.exit_code == 1 and "GRIDWORK_DATA_KEY" in result.output
    assert "Traceback" not in result.output


def test_serve_opens_no_gunicorn_control_socket(production, monkeypatch):
    """gunicorn (25.1 and later) opens a control socket at one path per user by default,
    $XDG_RUNTIME_DIR/gunicorn.ctl or ~/.gunicorn/gunicorn.ctl, removing whatever is there:
    a second server on the machine (another district, a demo beside the tests) took the
    first one's socket, and the first to stop removed the other's."""
    from click.testing import CliRunner
    from gunicorn.app.base import BaseApplication

    from api.cli import main

    production.setenv("GRIDWORK_ENV", "development")
    started = []
    monkeypatch.setattr(BaseApplication, "run", lambda self: started.append(self))
    result = CliRunner().invoke(main, ["serve", "--port", "1"])
    assert result.exit_code == 0, result.output
    [server] = started
    assert server.cfg.control_socket_disable is True
