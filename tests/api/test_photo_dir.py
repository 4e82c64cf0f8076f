"""Where visit photos live: GRIDWORK_PHOTO_DIR (default `var/photos`) means one directory for
every process of a deployment, whatever directory each was started from. The API stores the
photos and the push worker deletes them (retention): relative to each one's working
directory, the two disagreed, and the worker's retention found none to delete."""

from pathlib import Path

import pytest

from api import settings
from api.settings import ConfigError, load_config

ROOT = Path(settings.__file__).resolve().parent.parent  # the checkout: api/, pyproject.toml


@pytest.fixture()
def default_dir(monkeypatch):
    monkeypatch.delenv("GRIDWORK_PHOTO_DIR", raising=False)


def test_the_default_is_under_the_project_root_from_any_directory(
    default_dir, monkeypatch, tmp_path
):
    (tmp_path / "api-side").mkdir()
    (tmp_path / "worker-side").mkdir()
    monkeypatch.chdir(tmp_path / "api-side")
    api_sees = load_config()["PHOTO_DIR"]
    monkeypatch.chdir(tmp_path / "worker-side")
    worker_sees = load_config()["PHOTO_DIR"]
    assert api_sees == worker_sees == str(ROOT / "var" / "photos")


def test_a_relative_photo_dir_is_taken_from_the_project_root(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GRIDWORK_PHOTO_DIR", "data/photos")
    assert load_config()["PHOTO_DIR"] == str(ROOT / "data" / "photos")


def test_an_absolute_photo_dir_is_kept(monkeypatch, tmp_path):
    monkeypatch.setenv("GRIDWORK_PHOTO_DIR", str(tmp_path / "photos"))
    assert load_config()["PHOTO_DIR"] == str(tmp_path / "photos")


def test_photos_kept_under_another_working_directory_stop_the_start_naming_both(
    default_dir, monkeypatch, tmp_path
):
    """A deployment started from elsewhere kept its photos under that directory's
    `var/photos`: the start says where they are and what to set, rather than serving (and
    retaining) an empty directory; nothing is moved."""
    (tmp_path / "var" / "photos").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="GRIDWORK_PHOTO_DIR") as refused:
        load_config()
    message = str(refused.value)
    assert str(tmp_path / "var" / "photos") in message
    assert str(ROOT / "var" / "photos") in message


def test_a_relative_photo_dir_outside_a_checkout_is_refused(monkeypatch, tmp_path):
    """Installed as a package, the project root would be site-packages."""
    monkeypatch.setattr(settings, "PROJECT_ROOT", tmp_path / "site-packages")
    monkeypatch.setenv("GRIDWORK_PHOTO_DIR", "var/photos")
    with pytest.raises(ConfigError, match="absolute"):
        load_config()


def test_serve_says_where_the_photos_are(monkeypatch):
    from click.testing import CliRunner
    from gunicorn.app.base import BaseApplication

    from api.cli import main

    monkeypatch.setenv("GRIDWORK_ENV", "development")
    monkeypatch.delenv("GRIDWORK_PHOTO_DIR", raising=False)
    monkeypatch.setattr(BaseApplication, "run", lambda self: None)
    result = CliRunner().invoke(main, ["serve", "--port", "1"])
    assert result.exit_code == 0, result.output
    assert f"visit photos: {ROOT / 'var' / 'photos'}" in result.output
