"""Typed, validated service settings, read once at start and passed in.

Every setting has its type, bounds, default and meaning declared below.
Values are layered, lowest priority first: those defaults, the ``[app]``
section of the project's ``setup.cfg`` (which shows them to people), an
optional extra config file (``api.py --config``), environment variables
named ``APP_<SETTING>``, then command-line options. Every value is parsed
to its declared type and checked against its bounds; a bad value raises
:class:`SettingsError` naming the setting and where the value came from.
Nothing else in the project reads ``os.environ``.
"""

import configparser
import dataclasses
import ipaddress
import logging
import os
import re
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "setup.cfg"
SECTION = "app"
ENV_PREFIX = "APP_"
# A word count is a signed 64-bit integer (app.words.store.MAX_COUNT);
# settings sit below the word domain, so the bound is written out here.
_MAX_COUNT = 2 ** 63 - 1
_AUTO = "auto"

_KINDS = {int: "an integer", float: "a number", bool: "true or false",
          Path: "a path", str: "a string"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

log = logging.getLogger(__name__)


class SettingsError(ValueError):
    """A setting is unknown, of the wrong type or out of bounds."""


def _setting(default, doc, low=None, high=None, choices=None, auto=False,
             optional=False, check=None):
    """Declare a settings field: its default as written, doc and bounds.

    ``auto`` lets the value ``auto`` stand for the number of CPUs (times
    ``auto`` when it is a number above 1);
    ``optional`` lets an empty value stand for "none" (None); ``check``
    names a rule of ``_CHECKS`` a text value must follow.
    """
    return dataclasses.field(default=None, metadata={
        "default": default, "doc": doc, "low": low, "high": high,
        "choices": choices, "auto": auto, "optional": optional,
        "check": check})


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every tunable of the service, with its type and allowed range."""

    host: str = _setting("127.0.0.1", "Address the HTTP server binds to.")
    port: int = _setting(8080, "TCP port; 0 picks a free one.", 0, 65535)
    # Two per CPU, not more: worker threads contend for the GIL, and on
    # two cores 4 of them answered GET /words/<word> at 8 connections 12 %
    # faster than 8 did, with as many predictions per second.
    threads: int = _setting(
        "auto", "Worker threads of the cheroot server; auto means two per "
        "CPU.", 1, 256, auto=2)
    keep_alive_connections: int = _setting(
        256, "Idle keep-alive connections the server keeps open at most.",
        0, 100000)
    listen_backlog: int = _setting(
        128, "Connections the kernel queues before the server accepts them.",
        1, 65535)
    request_timeout: float = _setting(
        10, "Seconds a connection may stay idle or slow before it is closed.",
        0.1, 3600)
    shutdown_timeout: float = _setting(
        10, "Seconds in-flight requests get to finish on SIGTERM.", 0, 300)
    drain_seconds: float = _setting(
        5, "Seconds between SIGTERM and closing the port, during which "
        "readiness answers 503 (so balancers stop sending) while every "
        "request is still served.", 0, 300)
    max_header_bytes: int = _setting(
        65536, "Largest request line plus headers the server reads.",
        1024, 2 ** 24)
    header_timeout: float = _setting(
        5, "Seconds from a request's first byte until its headers must "
        "have arrived; a slower request gets 408.", 0.1, 3600)
    min_body_rate: int = _setting(
        1024, "Bytes per second a request body must keep arriving at; one "
        "that falls body_grace seconds behind gets 408; 0 turns it off.",
        0, 2 ** 31)
    body_grace: float = _setting(
        10, "Seconds a request body may fall behind min_body_rate, at its "
        "start or later.", 0.1, 3600)
    max_buffered_bytes: int = _setting(
        67108864, "Most request-body bytes held in memory for requests still "
        "arriving (others wait); never less than the largest body a route "
        "accepts.", 1048576, 2 ** 40)
    max_body_bytes: int = _setting(
        1048576, "Largest JSON or text body accepted by the word routes.",
        1, 2 ** 31)
    store: str = _setting(
        "sqlite", "Word store backend.", choices=("sqlite", "redis"))
    sqlite_path: Path = _setting(
        "data/words.sqlite3",
        "SQLite database file; its folder is created if missing.")
    sqlite_busy_timeout_ms: int = _setting(
        5000, "Milliseconds SQLite waits for a lock before failing.",
        0, 600000)
    redis_url: str = _setting(
        "redis://127.0.0.1:6379/0", "Redis server used when store = redis.")
    redis_key_prefix: str = _setting(
        "wordcount:",
        "Prefix of every Redis key, so one Redis can hold several stores.")
    redis_timeout: float = _setting(
        5, "Seconds to connect to Redis or wait for its answer.", 0.01, 600)
    default_count: int = _setting(
        0, "Count given to a word created without one.", 0, _MAX_COUNT)
    list_limit_default: int = _setting(
        50, "Page size of GET /words when no limit is given.", 1, 100000)
    list_limit_max: int = _setting(
        1000, "Largest page size GET /words accepts.", 1, 100000)
    model_repository: Path = _setting(
        "model", "Folder of <version>/ sub-folders, each holding model.json.")
    default_model_version: int = _setting(
        0, "Version served by /predict/model; 0 means the highest "
        "available one.", 0, 2 ** 31)
    model_poll_seconds: float = _setting(
        2, "Seconds between looks at model_repository for new, changed or "
        "removed versions and serving.json; 0 loads once at start.",
        0, 3600)
    interpreters: int = _setting(
        _AUTO, "Most single-thread interpreters per model version, created "
        "as requests overlap; auto means one per CPU.", 1, 256, auto=True)
    inference_wait_timeout: float = _setting(
        30, "Seconds a request waits for a free interpreter before a 503.",
        0.01, 3600)
    batching_max_size: int = _setting(
        1, "Dynamic batching: most images stacked into one invoke; 1 is off.",
        1, 1024)
    batching_timeout_micros: int = _setting(
        2000, "Dynamic batching: microseconds a batch waits to fill up.",
        0, 10 ** 7)
    batching_threads: int = _setting(
        2, "Dynamic batching: threads running batches.", 1, 64)
    interpreter_threads: int = _setting(
        1, "Threads each pooled interpreter uses inside one invoke.", 1, 64)
    lone_request_threads: int = _setting(
        _AUTO, "Threads of one more interpreter per version that serves a "
        "request arriving while no other runs (lower latency when idle); "
        "0 turns it off, auto means one per CPU.", 0, 64, auto=True)
    max_upload_bytes: int = _setting(
        33554432, "Largest body accepted by the prediction routes.",
        1, 2 ** 31)
    max_image_bytes: int = _setting(
        10485760, "Largest single encoded image (upload, base64 or URL).",
        1, 2 ** 31)
    max_image_pixels: int = _setting(
        40000000, "Largest width x height decoded (decompression-bomb "
        "guard).", 1, 2 ** 31)
    max_jpeg_scans: int = _setting(
        32, "Most scans a JPEG may have (libjpeg writes 10 for a colour "
        "progressive JPEG); more is refused before decoding.", 1, 1000)
    decode_timeout: float = _setting(
        1.5, "CPU seconds one image may take to decode and convert; more "
        "is refused (413 image_too_complex).", 0.05, 60)
    webp_max_pixels: int = _setting(
        16777216, "Largest width x height decoded for WebP, which decodes "
        "in one uninterruptible call.", 1, 2 ** 31)
    bmp_max_pixels: int = _setting(
        10000000, "Largest width x height decoded for BMP (run-length BMPs "
        "decode slowly).", 1, 2 ** 31)
    decode_memory_budget: int = _setting(
        536870912, "Bytes that images being decoded at once may hold; a "
        "decode beyond it waits (keep it at 350 MiB or more).",
        67108864, 2 ** 40)
    decode_wait_timeout: float = _setting(
        5, "Seconds a decode waits for room in decode_memory_budget "
        "before a 503 decode_busy.", 0, 600)
    malloc_arenas: int = _setting(
        0, "glibc malloc arenas (0: glibc's own, 8 per core; auto: one per "
        "CPU); fewer keep less freed memory resident but contend under "
        "load.", 0, 1024, auto=True)
    max_batch_size: int = _setting(
        16, "Most images in one prediction request.", 1, 1024)
    default_top_k: int = _setting(
        5, "Classes returned per image when top_k is not given.", 1, 100000)
    fetch_enabled: bool = _setting(
        True, "Accept {\"url\": ...} instances; false refuses every URL.")
    fetch_allow_private: bool = _setting(
        False, "Allow image URLs that resolve to non-public addresses.")
    fetch_connect_timeout: float = _setting(
        3, "Seconds to connect to an image URL.", 0.01, 120)
    fetch_read_timeout: float = _setting(
        10, "Seconds to wait for data from an image URL.", 0.01, 600)
    fetch_total_timeout: float = _setting(
        15, "Seconds all image URLs of one request may take together, "
        "redirects included.", 0.01, 3600)
    fetch_max_redirects: int = _setting(
        3, "Redirects followed for an image URL, each re-checked.", 0, 20)
    prediction_log: Path = _setting(
        "", "JSON-lines file recording sampled predictions (no image "
        "bytes); empty turns it off.", optional=True)
    prediction_log_sample: float = _setting(
        1.0, "Share of predictions recorded in prediction_log.", 0, 1)
    prediction_log_max_bytes: int = _setting(
        10485760, "Size at which prediction_log is rotated.", 1024, 2 ** 40)
    prediction_log_backups: int = _setting(
        5, "Rotated prediction_log files kept.", 0, 1000)
    prediction_log_queue: int = _setting(
        1000, "Lines waiting for the writer at most; beyond, lines are "
        "dropped and counted rather than slow a request.", 1, 10 ** 6)
    log_format: str = _setting(
        "json", "Log lines as JSON (for collectors) or text (for a "
        "terminal); the access log goes to stdout, the rest to stderr.",
        choices=("json", "text"))
    api_keys_file: Path = _setting(
        "", "File of API keys (<name> <sha256> <scopes> per line); empty "
        "leaves every route open.", optional=True)
    metrics_public: bool = _setting(
        True, "Serve /metrics without a key; false requires the admin "
        "scope.")
    docs_public: bool = _setting(
        True, "Serve /docs and /openapi.json without a key; false requires "
        "the admin scope.")
    cors_origins: str = _setting(
        "", "Browser origins allowed to call the API, comma-separated, or "
        "*; empty turns CORS off.", optional=True, check="origins")
    rate_limit: str = _setting(
        "", "<requests>/<seconds> per API key, or per client address "
        "without one; empty turns it off.", optional=True, check="rate")
    trusted_proxies: str = _setting(
        "", "Networks (CIDR, comma-separated) whose X-Forwarded-For is "
        "believed when naming the client.", optional=True,
        check="networks")

    def __post_init__(self):
        """Check the bounds that involve more than one setting."""
        if self.list_limit_default > self.list_limit_max:
            raise SettingsError(
                "list_limit_default must not exceed list_limit_max")
        if self.max_image_bytes > self.max_upload_bytes:
            raise SettingsError(
                "max_image_bytes must not exceed max_upload_bytes")


_FIELDS = {spec.name: spec for spec in dataclasses.fields(Settings)}


def describe():
    """Return ``(name, type name, default, doc)`` for every setting."""
    return [(spec.name, spec.type.__name__, str(spec.metadata["default"]),
             spec.metadata["doc"]) for spec in _FIELDS.values()]


def defaults():
    """Return the settings as they are with no config file at all."""
    return load_settings(environ={}, config_files=())


def load_settings(config_path=None, environ=None, overrides=None,
                  override_sources=None, config_files=(DEFAULT_CONFIG,)):
    """Read, parse and validate the settings; raise SettingsError if bad.

    ``config_path`` is an extra config file layered over ``config_files``
    (setup.cfg), ``environ`` defaults to ``os.environ`` and ``overrides``
    (a mapping of setting name to raw or typed value) wins over
    everything, which is how command-line options and tests set values;
    ``override_sources`` names where each override came from (a flag).
    An ``APP_`` variable that names no setting is logged as a warning.
    """
    environ = os.environ if environ is None else environ
    layers = {name: (spec.metadata["default"], PROJECT_ROOT, "default")
              for name, spec in _FIELDS.items()}
    # setup.cfg only shows the defaults, so a copy of the app without it
    # (a container, a function bundle) still starts; a file asked for by
    # name must exist.
    for path in config_files:
        if path.exists():
            layers.update(_read_config(path))
    if config_path is not None:
        layers.update(_read_config(Path(config_path)))
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX):].lower()
        if name in _FIELDS:
            layers[name] = (value, Path.cwd(), key)
        else:
            log.warning("ignoring %s: no such setting%s", key,
                        _did_you_mean(name, ENV_PREFIX))
    for name, value in (overrides or {}).items():
        if name not in _FIELDS:
            raise SettingsError(f"unknown setting {name!r}"
                                f"{_did_you_mean(name)}")
        source = (override_sources or {}).get(name, "overrides")
        layers[name] = (value, Path.cwd(), source)
    values = {name: _parse(_FIELDS[name], *layer)
              for name, layer in layers.items()}
    return Settings(**values)


def _did_you_mean(name, prefix=""):
    """Return ``; did you mean X?`` for the closest setting, or nothing."""
    # Only a mistyped setting needs it: not imported at every start.
    import difflib
    close = difflib.get_close_matches(name, _FIELDS, n=1)
    if not close:
        return ""
    suggestion = prefix + close[0].upper() if prefix else close[0]
    return f"; did you mean {suggestion}?"


def _read_config(path):
    """Return ``{name: (raw, base dir, source)}`` of one file's [app]."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except OSError as error:
        raise SettingsError(
            f"cannot read config file {path}: {error.strerror}") from None
    except configparser.Error as error:
        raise SettingsError(
            f"config file {path} is malformed: {error.message}") from None
    if not parser.has_section(SECTION):
        raise SettingsError(f"config file {path} has no [{SECTION}] section")
    layer = {}
    for name, value in parser.items(SECTION):
        if name not in _FIELDS:
            raise SettingsError(f"unknown setting {name!r} in {path}"
                                f"{_did_you_mean(name)}")
        layer[name] = (value, path.resolve().parent, str(path))
    return layer


def _parse(spec, value, base_dir, source):
    """Convert one raw value to its field's type and check its bounds."""
    name, kind, meta = spec.name, spec.type, spec.metadata
    where = f" (from {source})"
    if isinstance(value, str):
        value = value.strip()
    try:
        if meta["auto"] and value == _AUTO:
            value = (os.cpu_count() or 1) * int(meta["auto"])
        if meta["optional"] and value in ("", None):
            return None
        value = _convert(kind, value, base_dir, meta["choices"] is not None)
    except (TypeError, ValueError):
        raise SettingsError(
            f"setting {name!r} must be {_KINDS[kind]}"
            f"{' or auto' if meta['auto'] else ''}, got {value!r}{where}"
        ) from None
    if value is None:
        return value
    if meta["check"] is not None:
        problem = _CHECKS[meta["check"]](value)
        if problem:
            raise SettingsError(f"setting {name!r}: {problem}, got "
                                f"{value!r}{where}")
    if meta["choices"] is not None and value not in meta["choices"]:
        raise SettingsError(
            f"setting {name!r} must be one of {', '.join(meta['choices'])}, "
            f"got {value!r}{where}")
    if meta["low"] is not None and not meta["low"] <= value <= meta["high"]:
        raise SettingsError(
            f"setting {name!r} must be between {meta['low']} and "
            f"{meta['high']}, got {value!r}{where}")
    return value


def _convert(kind, value, base_dir, has_choices):
    """Return value as ``kind``; raise ValueError if it is not one."""
    if kind is bool:
        return _parse_bool(value)
    if kind is int:
        if isinstance(value, bool) or (
                isinstance(value, float) and not value.is_integer()):
            raise ValueError("not an integer")
        if isinstance(value, str) and not (
                value.isascii() and value.lstrip("+-").isdigit()):
            raise ValueError("not an integer")
        return int(value)
    if kind is float:
        return float(value)
    if kind is Path:
        if not str(value):
            raise ValueError("empty path")
        return base_dir / Path(value).expanduser()
    if not str(value) and not has_choices:
        raise ValueError("empty value")
    return value


def _check_rate(text):
    """Return what is wrong with a ``<requests>/<seconds>`` rate, if any."""
    requests, _, seconds = text.partition("/")
    if not (requests.isascii() and requests.isdigit() and seconds.isascii()
            and seconds.isdigit() and int(requests) and int(seconds)):
        return "a rate is <requests>/<seconds>, both positive integers"
    return ""


def _check_networks(text):
    """Return what is wrong with a comma-separated list of networks."""
    for network in text.split(","):
        try:
            ipaddress.ip_network(network.strip())
        except ValueError as error:
            return f"{network.strip()!r} is not a network ({error})"
    return ""


def _check_origins(text):
    """Return what is wrong with a list of browser origins, if anything."""
    for origin in text.split(","):
        origin = origin.strip()
        if origin != "*" and not re.fullmatch(
                r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?", origin):
            return (f"{origin!r} is not an origin (scheme://host[:port], "
                    "no path) or *")
    return ""


_CHECKS = {"rate": _check_rate, "networks": _check_networks,
           "origins": _check_origins}


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
