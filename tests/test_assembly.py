"""The assembly: settings become the store, the registry and the app."""

import os
import threading

import pytest

from app.assembly import build
from app.models.registry import AVAILABLE
from app.models.repository import ModelRepositoryError
from app.server import make_server, server_url
from app.words.redis_store import RedisWordStore
from app.words.sqlite_store import SqliteWordStore
from tests.conftest import Client, make_settings, redis_settings
from tests.test_predict_api import CHELSEA_JPG, upload


def serve(parts):
    """Return a started cheroot server of the parts, and its thread."""
    server = make_server(parts.wsgi, parts.settings)
    server.expiration_interval = 0.02
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    return server, thread


def test_build_wires_every_model_setting(tmp_path):
    """Default version, pool, batching and waits come from settings."""
    settings = make_settings(
        tmp_path, default_model_version=1, interpreters=3,
        interpreter_threads=1, lone_request_threads=0, batching_max_size=4,
        batching_timeout_micros=1500, batching_threads=1,
        inference_wait_timeout=7)
    parts = build(settings)
    try:
        registry = parts.registry
        assert registry.default_version == 1
        assert registry.wait_timeout == 7
        version = registry.get(1)
        assert version.state == AVAILABLE
        assert version.pool.size == 3
        assert version.pool.lone_request_threads == 0
        assert version.batcher.max_batch_size == 4
        assert version.batcher.batch_timeout == pytest.approx(0.0015)
        assert registry.wait_until_loaded(60)
        assert registry.get(2).pool.size == 3
    finally:
        parts.close()


def test_lone_request_interpreter_follows_its_setting(tmp_path):
    """A number gives that many threads, 0 none, auto one per CPU."""
    cpus = os.cpu_count() or 1
    auto_threads = cpus if cpus > 1 else 0
    for value, threads in ((2, 2), (0, 0), ("auto", auto_threads)):
        parts = build(make_settings(tmp_path, lone_request_threads=value,
                                    default_model_version=2))
        try:
            assert parts.registry.get().pool.lone_request_threads == threads
        finally:
            parts.close()


def test_build_serves_the_settings_store_and_model(tmp_path):
    """The built app answers predictions and words from its own parts."""
    settings = make_settings(tmp_path, default_model_version=1)
    parts = build(settings)
    server, thread = serve(parts)
    try:
        assert isinstance(parts.store, SqliteWordStore)
        assert parts.store.path == settings.sqlite_path
        with Client(server_url(server)) as client:
            response = upload(client, "/predict/model", CHELSEA_JPG)
            assert response.json()["model"]["version"] == 1
            assert client.post("/words", json={"word": "wired"}).ok
        assert parts.store.get("wired") == 0
    finally:
        server.stop()
        thread.join(10)
        parts.close()


def test_build_picks_redis_when_settings_say_so(tmp_path, redis_server):
    """Setting store to redis gives a Redis store on its prefix."""
    settings = redis_settings(tmp_path, redis_server)
    parts = build(settings)
    try:
        assert isinstance(parts.store, RedisWordStore)
        parts.store.create("shared", 3)
        assert parts.store.get("shared") == 3
    finally:
        parts.close()


def test_unusable_repository_fails_the_build(tmp_path):
    """A repository with no version is an error before anything serves."""
    with pytest.raises(ModelRepositoryError):
        build(make_settings(tmp_path, model_repository=tmp_path / "none"))


def open_files_under(folder):
    """Return the files under ``folder`` this process holds open."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(folder)):
            found.append(target)
    return found


def test_failed_model_load_closes_the_store_opened_beside_it(tmp_path):
    """The store opens while the model loads; a failed load closes it."""
    database = tmp_path / "words"
    with pytest.raises(ModelRepositoryError):
        build(make_settings(tmp_path, model_repository=tmp_path / "none",
                            sqlite_path=database / "words.sqlite3"))
    assert (database / "words.sqlite3").exists()
    assert open_files_under(database) == []


def test_unopenable_store_fails_the_build_and_stops_the_loader(tmp_path):
    """A store that cannot open fails the build; no model thread is left."""
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(OSError):
        build(make_settings(tmp_path,
                            sqlite_path=tmp_path / "file" / "words.sqlite3"))
    assert [thread.name for thread in threading.enumerate()
            if thread.name == "model-loader" and thread.is_alive()] == []
