"""Settings: defaults from setup.cfg, overrides, and clear failures."""

import dataclasses
import re
from pathlib import Path

import pytest

from app.settings import (
    DEFAULT_CONFIG, PROJECT_ROOT, Settings, SettingsError, describe,
    load_settings)


def test_defaults_come_from_setup_cfg():
    """Without overrides the values of setup.cfg apply."""
    settings = load_settings(environ={})
    assert settings.port == 8080
    assert settings.host == "127.0.0.1"
    assert settings.fetch_allow_private is False
    assert settings.sqlite_path == PROJECT_ROOT / "data" / "words.sqlite3"


def test_setup_cfg_sets_every_setting_and_nothing_else():
    """setup.cfg lists every setting, in declaration order."""
    text = DEFAULT_CONFIG.read_text()
    section = text.split("[app]", 1)[1].split("\n[", 1)[0]
    names = re.findall(r"^(\w+)\s*=", section, flags=re.MULTILINE)
    assert names == [field.name for field in dataclasses.fields(Settings)]


def test_environment_overrides_and_is_typed(tmp_path):
    """APP_ variables override setup.cfg and are parsed."""
    settings = load_settings(environ={
        "APP_PORT": "9000", "APP_FETCH_ALLOW_PRIVATE": "yes",
        "APP_REQUEST_TIMEOUT": "2.5", "APP_SQLITE_PATH": "rel/db.sqlite3",
        "OTHER_PORT": "1"})
    assert settings.port == 9000
    assert settings.fetch_allow_private is True
    assert settings.request_timeout == 2.5
    assert settings.sqlite_path == Path.cwd() / "rel" / "db.sqlite3"


def test_config_file_layers_over_setup_cfg_with_relative_paths(tmp_path):
    """An extra config file overrides setup.cfg; APP_ vars win."""
    extra = tmp_path / "prod.cfg"
    extra.write_text("[app]\nport = 9100\nsqlite_path = data/x.db\n")
    settings = load_settings(extra, environ={"APP_PORT": "9200"})
    assert settings.port == 9200
    assert settings.sqlite_path == tmp_path / "data" / "x.db"
    assert settings.threads == load_settings(environ={}).threads


@pytest.mark.parametrize("name,value,words", [
    ("APP_PORT", "http", "'port' must be an integer"),
    ("APP_PORT", "70000", "'port' must be between 0 and 65535"),
    ("APP_THREADS", "0", "'threads' must be between"),
    ("APP_STORE", "mongo", "'store' must be one of sqlite, redis"),
    ("APP_FETCH_ALLOW_PRIVATE", "maybe", "'fetch_allow_private'"),
    ("APP_DEFAULT_COUNT", "-1", "'default_count'"),
    ("APP_REQUEST_TIMEOUT", "soon", "'request_timeout' must be a number"),
    ("APP_HOST", " ", "'host'"),
    ("APP_LIST_LIMIT_DEFAULT", "5000", "list_limit_default must not exceed"),
])
def test_bad_values_fail_naming_the_setting(name, value, words):
    """A bad value fails with a message naming its setting."""
    with pytest.raises(SettingsError) as caught:
        load_settings(environ={name: value})
    assert words in str(caught.value)


def test_unknown_setting_in_config_file_is_refused(tmp_path):
    """A misspelt setting in a config file is an error."""
    extra = tmp_path / "typo.cfg"
    extra.write_text("[app]\nprot = 1\n")
    with pytest.raises(SettingsError, match="unknown setting 'prot'"):
        load_settings(extra, environ={})


def test_missing_config_file_is_refused(tmp_path):
    """A config file that cannot be read is an error."""
    with pytest.raises(SettingsError, match="cannot read config file"):
        load_settings(tmp_path / "absent.cfg", environ={})


def test_unknown_override_is_refused():
    """Overrides must name real settings."""
    with pytest.raises(SettingsError, match="unknown setting 'colour'"):
        load_settings(environ={}, overrides={"colour": "red"})


def test_readme_documents_every_setting():
    """The settings table of README.md names every setting."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    for name, _, _ in describe():
        assert f"| `{name}` |" in readme, name
