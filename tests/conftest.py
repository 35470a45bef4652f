"""Shared fixtures: settings, a loopback OpenAI stand-in, the in-process app and its client."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from lib.providers.gateway import Gateway
from lib.settings import Settings, load_settings
from tests.support.openai_mock import OpenAIMock

API_KEY = "test-key-1"
API_KEY_2 = "test-key-2"

# Never let a test reach real AWS or the instance-metadata endpoint.
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
for _var in ("AIPROXY_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL", "AIPROXY_ALLOW_UNAUTHENTICATED"):
    os.environ.pop(_var, None)


#: One data directory (embedded SQLite database, key cache file) for the whole test session, so tests
#: never write into the checkout's data/.
TEST_DATA_DIR = Path(tempfile.mkdtemp(prefix="aiproxy-test-data-"))
os.environ["DATA_DIR"] = str(TEST_DATA_DIR)  # also for settings built without make_settings


def make_settings(**overrides: Any) -> Settings:
    """Settings for tests: no config.txt, fast retries, the test keys, a temporary data directory."""
    values: dict[str, Any] = {
        "aiproxy_api_key": f"{API_KEY},{API_KEY_2}",
        "data_dir": TEST_DATA_DIR,
        "retry_base_delay_seconds": 0.01,
        "retry_max_delay_seconds": 0.05,
    }
    values.update(overrides)
    return load_settings(config_file="/nonexistent/config.txt", **values)


@pytest.fixture
def openai_mock() -> Iterator[OpenAIMock]:
    with OpenAIMock() as mock:
        yield mock


@pytest.fixture
def settings(openai_mock: OpenAIMock) -> Settings:
    return make_settings(openai_api_key="sk-test-configured", openai_base_url=openai_mock.base_url)


class ServerLikeClient(FlaskClient):
    """Closes each response once it is read, as a WSGI server does after sending the last byte:
    the app's per-request accounting (log line, metrics) runs on close."""

    def open(self, *args: Any, buffered: bool = True, **kwargs: Any) -> Any:
        return super().open(*args, buffered=buffered, **kwargs)


@pytest.fixture
def app_factory() -> Callable[..., Flask]:
    def build(settings: Settings, gateway: Gateway | None = None) -> Flask:
        from src.app import create_app

        app = create_app(settings, gateway)
        app.testing = True
        app.test_client_class = ServerLikeClient
        return app

    return build


@pytest.fixture
def app(settings: Settings, app_factory: Callable[..., Flask]) -> Flask:
    return app_factory(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def auth() -> dict[str, str]:
    """Headers as the Code.org web app sends them (raw key)."""
    return {"Authorization": API_KEY}


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database, once as a SQLite file and once on the real PostgreSQL test server."""
    from tests.support.databases import database

    with database(request.param, tmp_path) as url:
        yield url
