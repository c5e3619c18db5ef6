"""Settings: defaults from setup.cfg, overrides, and clear failures."""

import dataclasses
import logging
import os
import re
from pathlib import Path

import pytest

from app.settings import (
    DEFAULT_CONFIG, PROJECT_ROOT, Settings, SettingsError, defaults,
    describe, load_settings)


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


def test_operating_guide_documents_every_setting():
    """The settings table of docs/operating.md names every setting."""
    guide = (PROJECT_ROOT / "docs" / "operating.md").read_text()
    for name, _, _, _ in describe():
        assert f"| `{name}` |" in guide, name


def test_setup_cfg_shows_the_defaults_of_the_code():
    """setup.cfg changes nothing: it shows people the code's defaults."""
    assert load_settings(environ={}) == defaults()


def test_auto_means_one_interpreter_per_cpu():
    """The value auto stands for the CPU count; numbers are taken as is."""
    cpus = os.cpu_count() or 1
    settings = load_settings(environ={"APP_INTERPRETERS": "auto",
                                      "APP_LONE_REQUEST_THREADS": "0"})
    assert settings.interpreters == cpus
    assert settings.lone_request_threads == 0
    assert load_settings(environ={
        "APP_INTERPRETERS": "3"}).interpreters == 3
    with pytest.raises(SettingsError, match="integer or auto"):
        load_settings(environ={"APP_INTERPRETERS": "many"})


def test_unknown_app_variable_is_warned_naming_the_closest(caplog):
    """A misspelt APP_ variable is not silently ignored."""
    with caplog.at_level(logging.WARNING, logger="app.settings"):
        settings = load_settings(environ={"APP_PROT": "9000"})
    assert settings.port == 8080
    assert "APP_PROT" in caplog.text
    assert "did you mean APP_PORT?" in caplog.text


@pytest.mark.parametrize("layer,source", [
    ("env", "APP_THREADS"), ("file", "bad.cfg"), ("flag", "--threads")])
def test_errors_say_where_the_bad_value_came_from(tmp_path, layer, source):
    """The message names the variable, file or flag, and no internals."""
    config = tmp_path / "bad.cfg"
    config.write_text("[app]\nthreads = many\n")
    with pytest.raises(SettingsError) as caught:
        if layer == "env":
            load_settings(environ={"APP_THREADS": "many"})
        elif layer == "file":
            load_settings(config, environ={})
        else:
            load_settings(environ={}, overrides={"threads": "many"},
                          override_sources={"threads": "--threads"})
    message = str(caught.value)
    assert "'threads' must be an integer" in message
    assert "'many'" in message and source in message
    assert "invalid literal" not in message and "base 10" not in message
