import os
from datetime import datetime, timezone

import pytest

from sandbox import create_app
import uuid

from sandbox.core.store import MemoryStore, RedisStore, SQLiteStore, open_store

os.environ.setdefault("HYPOTHESIS_PROFILE", "default")

WALL = datetime(2025, 4, 23, 9, 30, tzinfo=timezone.utc)


class FakeWall:
    """An injectable wall clock for the sandbox clock's system source: tests move it by hand, nothing sleeps."""

    def __init__(self, at=WALL):
        self.at = at

    def __call__(self):
        return self.at


@pytest.fixture
def wall():
    return FakeWall()


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    if request.param == "memory":
        return MemoryStore()
    return SQLiteStore(str(tmp_path / "store.db"))


def redis_required() -> bool:
    """``SANDBOX_REQUIRE_REDIS=1`` (set by .ci/run): the Redis store suites must run, never skip."""
    return os.environ.get("SANDBOX_REQUIRE_REDIS", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(params=["memory", "sqlite", "redis"])
def any_store(request, tmp_path):
    """Every store backend; Redis when SANDBOX_TEST_REDIS names a server (CI starts one)."""
    if request.param != "redis":
        yield open_store("memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/s.db")
        return
    url = os.environ.get("SANDBOX_TEST_REDIS")
    if not url:
        why = "set SANDBOX_TEST_REDIS=redis://127.0.0.1:6379/15 to run the store suites on Redis"
        if redis_required():   # CI (.ci/run) demands the Redis suites: a skip there would hide a missing server
            pytest.fail(f"SANDBOX_REQUIRE_REDIS=1 but no Redis server: {why}", pytrace=False)
        pytest.skip(why)
    # a namespace of its own per test: parallel workers share the server and never clear each other's keys
    s = RedisStore(url, namespace=f"test-{uuid.uuid4().hex}")
    yield s
    s.clear()


@pytest.fixture
def app(wall):
    return create_app({"SEED": 7, "JOURNAL": True}, store=MemoryStore(), system_clock=wall)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def sandbox(app):
    return app.extensions["sandbox"]
