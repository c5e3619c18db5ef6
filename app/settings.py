"""Typed, validated service settings read once from setup.cfg and APP_ vars.

Values come, lowest priority first, from the ``[app]`` section of the
project's ``setup.cfg``, then from an optional extra config file (``api.py
--config``), then from environment variables named ``APP_<SETTING>``.
Every value is parsed to its declared type and checked against its bounds;
a bad or missing value raises :class:`SettingsError` naming the setting.
Nothing else in the project reads ``os.environ``.
"""

import configparser
import dataclasses
import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "setup.cfg"
SECTION = "app"
ENV_PREFIX = "APP_"
MAX_COUNT = 2 ** 63 - 1

_KINDS = {int: "an integer", float: "a number", bool: "true or false",
          Path: "a path", str: "a string"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SettingsError(ValueError):
    """A setting is missing, unknown, of the wrong type or out of bounds."""


def _setting(doc, low=None, high=None, choices=None):
    """Declare a settings field with its documentation and bounds."""
    return dataclasses.field(metadata={
        "doc": doc, "low": low, "high": high, "choices": choices})


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every tunable of the service, with its type and allowed range."""

    host: str = _setting("Address the HTTP server binds to.")
    port: int = _setting("TCP port; 0 picks a free one.", 0, 65535)
    threads: int = _setting("Worker threads of the cheroot server.", 1, 256)
    keep_alive_connections: int = _setting(
        "Idle keep-alive connections the server keeps open at most.",
        0, 100000)
    listen_backlog: int = _setting(
        "Connections the kernel queues before the server accepts them.",
        1, 65535)
    request_timeout: float = _setting(
        "Seconds a connection may stay idle or slow before it is closed.",
        0.1, 3600)
    shutdown_timeout: float = _setting(
        "Seconds in-flight requests get to finish on SIGTERM.", 0, 300)
    max_header_bytes: int = _setting(
        "Largest request line plus headers the server reads.", 1024, 2 ** 24)
    max_body_bytes: int = _setting(
        "Largest JSON or text body accepted by the word routes.",
        1, 2 ** 31)
    store: str = _setting(
        "Word store backend.", choices=("sqlite", "redis"))
    sqlite_path: Path = _setting(
        "SQLite database file; its folder is created if missing.")
    sqlite_busy_timeout_ms: int = _setting(
        "Milliseconds SQLite waits for a lock before failing.", 0, 600000)
    redis_url: str = _setting("Redis server used when store = redis.")
    redis_key_prefix: str = _setting(
        "Prefix of every Redis key, so one Redis can hold several stores.")
    redis_timeout: float = _setting(
        "Seconds to connect to Redis or wait for its answer.", 0.01, 600)
    default_count: int = _setting(
        "Count given to a word created without one.", 0, MAX_COUNT)
    list_limit_default: int = _setting(
        "Page size of GET /words when no limit is given.", 1, 100000)
    list_limit_max: int = _setting(
        "Largest page size GET /words accepts.", 1, 100000)
    model_repository: Path = _setting(
        "Folder of <version>/ sub-folders, each holding model.json.")
    default_model_version: int = _setting(
        "Version served by /predict/model; 0 means the highest.",
        0, 2 ** 31)
    interpreters: int = _setting(
        "Most interpreters per model version, created as requests overlap; "
        "0 means one per CPU.", 0, 256)
    inference_wait_timeout: float = _setting(
        "Seconds a request waits for a free interpreter before a 503.",
        0.01, 3600)
    batching_max_size: int = _setting(
        "Dynamic batching: most images stacked into one invoke; 1 is off.",
        1, 1024)
    batching_timeout_micros: int = _setting(
        "Dynamic batching: microseconds a batch waits to fill up.",
        0, 10 ** 7)
    batching_threads: int = _setting(
        "Dynamic batching: threads running batches.", 1, 64)
    interpreter_threads: int = _setting(
        "Threads each TFLite interpreter uses inside one invoke.", 1, 64)
    idle_interpreter_threads: int = _setting(
        "Threads of the extra interpreter that serves a request arriving "
        "while no other is running; 0 means one per CPU, and a value not "
        "above interpreter_threads means no such interpreter.", 0, 64)
    max_upload_bytes: int = _setting(
        "Largest body accepted by the prediction routes.", 1, 2 ** 31)
    max_image_bytes: int = _setting(
        "Largest single encoded image (upload, base64 or URL).",
        1, 2 ** 31)
    max_image_pixels: int = _setting(
        "Largest width x height decoded (decompression-bomb guard).",
        1, 2 ** 31)
    max_batch_size: int = _setting(
        "Most images in one prediction request.", 1, 1024)
    default_top_k: int = _setting(
        "Classes returned per image when top_k is not given.", 1, 100000)
    fetch_enabled: bool = _setting(
        "Accept {\"url\": ...} instances; false refuses every URL.")
    fetch_allow_private: bool = _setting(
        "Allow image URLs that resolve to non-public addresses.")
    fetch_connect_timeout: float = _setting(
        "Seconds to connect to an image URL.", 0.01, 120)
    fetch_read_timeout: float = _setting(
        "Seconds to wait for data from an image URL.", 0.01, 600)
    fetch_total_timeout: float = _setting(
        "Seconds one image URL may take in all, redirects included.",
        0.01, 3600)
    fetch_max_redirects: int = _setting(
        "Redirects followed for an image URL, each re-checked.", 0, 20)

    def __post_init__(self):
        """Check the bounds that involve more than one setting."""
        if self.list_limit_default > self.list_limit_max:
            raise SettingsError(
                "list_limit_default must not exceed list_limit_max")
        if self.max_image_bytes > self.max_upload_bytes:
            raise SettingsError(
                "max_image_bytes must not exceed max_upload_bytes")


def describe():
    """Return ``(name, type name, doc)`` for every setting, in order."""
    return [(f.name, f.type.__name__, f.metadata["doc"])
            for f in dataclasses.fields(Settings)]


def load_settings(config_path=None, environ=None, overrides=None):
    """Read, parse and validate the settings; raise SettingsError if bad.

    ``config_path`` is an extra config file layered over setup.cfg,
    ``environ`` defaults to ``os.environ`` and ``overrides`` (a mapping of
    setting name to raw or typed value) wins over everything, which is how
    command-line options and tests set values.
    """
    environ = os.environ if environ is None else environ
    raw, base_dirs = _read_config(DEFAULT_CONFIG, {}, {})
    if config_path is not None:
        raw, base_dirs = _read_config(Path(config_path), raw, base_dirs)
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    for name in fields:
        key = ENV_PREFIX + name.upper()
        if key in environ:
            raw[name] = environ[key]
            base_dirs[name] = Path.cwd()
    for name, value in (overrides or {}).items():
        if name not in fields:
            raise SettingsError(f"unknown setting {name!r}")
        raw[name] = value
        base_dirs[name] = Path.cwd()
    values = {}
    for name, spec in fields.items():
        if name not in raw:
            raise SettingsError(f"setting {name!r} is missing")
        values[name] = _parse(spec, raw[name], base_dirs[name])
    return Settings(**values)


def _read_config(path, raw, base_dirs):
    """Layer the [app] section of one config file over ``raw``."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except OSError as error:
        raise SettingsError(f"cannot read config file {path}: {error}")
    except configparser.Error as error:
        raise SettingsError(f"config file {path} is malformed: {error}")
    if not parser.has_section(SECTION):
        raise SettingsError(f"config file {path} has no [{SECTION}] section")
    known = {f.name for f in dataclasses.fields(Settings)}
    raw, base_dirs = dict(raw), dict(base_dirs)
    for name, value in parser.items(SECTION):
        if name not in known:
            raise SettingsError(f"unknown setting {name!r} in {path}")
        raw[name] = value
        base_dirs[name] = path.resolve().parent
    return raw, base_dirs


def _parse(spec, value, base_dir):
    """Convert one raw value to its field's type and check its bounds."""
    name, kind, meta = spec.name, spec.type, spec.metadata
    if isinstance(value, str):
        value = value.strip()
    try:
        if kind is bool:
            value = _parse_bool(value)
        elif kind is int:
            if isinstance(value, bool) or (
                    isinstance(value, float) and not value.is_integer()):
                raise ValueError("not an integer")
            value = int(value)
        elif kind is float:
            value = float(value)
        elif kind is Path:
            if not str(value):
                raise ValueError("empty path")
            value = base_dir / Path(value).expanduser()
        elif not str(value) and meta["choices"] is None:
            raise ValueError("empty value")
    except (TypeError, ValueError) as error:
        raise SettingsError(
            f"setting {name!r} must be {_KINDS[kind]}, got {value!r} "
            f"({error})") from None
    if meta["choices"] is not None and value not in meta["choices"]:
        raise SettingsError(
            f"setting {name!r} must be one of {', '.join(meta['choices'])}, "
            f"got {value!r}")
    if meta["low"] is not None and not meta["low"] <= value <= meta["high"]:
        raise SettingsError(
            f"setting {name!r} must be between {meta['low']} and "
            f"{meta['high']}, got {value!r}")
    return value


def _parse_bool(value):
    """Accept a bool or one of the usual true/false spellings."""
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("use true or false")
