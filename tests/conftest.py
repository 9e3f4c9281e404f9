import os
from datetime import datetime, timezone

import pytest

from sandbox import create_app
from sandbox.core.store import MemoryStore, SQLiteStore

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


@pytest.fixture
def app(wall):
    return create_app({"SEED": 7, "JOURNAL": True}, store=MemoryStore(), system_clock=wall)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def sandbox(app):
    return app.extensions["sandbox"]
