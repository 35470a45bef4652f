"""The keyless development mode (AIPROXY_ALLOW_UNAUTHENTICATED) serves loopback clients only, per
request, whatever server or bind runs the app (the start-up bind check can be bypassed, e.g. by
``bin/serve -c other.conf``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import make_settings


@pytest.fixture
def open_client(app_factory: Callable[..., Any]) -> Any:
    return app_factory(make_settings(aiproxy_api_key="", aiproxy_allow_unauthenticated=True)).test_client()


@pytest.mark.parametrize("peer", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_loopback_peers_are_served(open_client: Any, peer: str) -> None:
    assert open_client.get("/v1/models", environ_base={"REMOTE_ADDR": peer}).status_code == 200


@pytest.mark.parametrize("peer", ["10.1.2.3", "192.0.2.7", "2001:db8::1", "::ffff:10.0.0.1", "", "not-an-ip"])
def test_other_peers_get_401_without_the_route_running(open_client: Any, peer: str) -> None:
    r = open_client.post(
        "/chat",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
        environ_base={"REMOTE_ADDR": peer},
    )
    assert r.status_code == 401 and r.json["kind"] == "unauthorized", r.json
    assert "loopback clients only" in r.json["error"]
    assert open_client.get("/", environ_base={"REMOTE_ADDR": peer}).status_code == 200  # health stays open
