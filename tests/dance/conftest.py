"""Fixtures for the Dance AI weight generator tests."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lib.errors import UpstreamUnavailableError
from lib.providers.base import (
    ChatDelta,
    ChatRequest,
    ChatResult,
    EmbedRequest,
    EmbedResult,
    ModelInfo,
    Provider,
    Usage,
)
from lib.providers.deadline import Deadline
from lib.providers.gateway import Gateway, ProviderFactory
from lib.settings import Settings
from tests.conftest import make_settings
from tests.support.bedrock_mock import BedrockMock
from tests.support.openai_mock import fake_vector

DATA = Path(__file__).resolve().parent.parent / "data" / "danceai"
REAL_PALETTES = DATA / "cached_palettes_map.json"
TEST_CATALOG = DATA / "catalog.json"


class FakeEmbedder:
    """A Provider that only embeds: deterministic vectors (or given ones), every call recorded."""

    def __init__(
        self,
        name: str = "fake",
        vectors: Mapping[str, list[float]] | None = None,
        dims: int = 16,
        fail_on_call: int | None = None,
    ) -> None:
        self.name = name
        self.vectors = dict(vectors or {})
        self.dims = dims
        self.fail_on_call = fail_on_call
        self.calls: list[EmbedRequest] = []

    @property
    def texts_sent(self) -> list[str]:
        return [t for c in self.calls for t in c.texts]

    def embed(self, request: EmbedRequest, deadline: Deadline) -> EmbedResult:
        self.calls.append(request)
        if self.fail_on_call is not None and len(self.calls) == self.fail_on_call:
            raise UpstreamUnavailableError("fake upstream down", provider=self.name)
        dims = request.dimensions or self.dims
        vectors = [self.vectors.get(t) or fake_vector(t, dims) for t in request.texts]
        return EmbedResult(
            request.model, self.name, vectors, Usage(sum(len(t.split()) for t in request.texts))
        )

    def chat(self, request: ChatRequest, deadline: Deadline) -> ChatResult:
        raise NotImplementedError

    def chat_stream(self, request: ChatRequest, deadline: Deadline) -> Iterator[ChatDelta]:
        raise NotImplementedError

    def list_models(self, deadline: Deadline, api_key: str | None = None) -> list[ModelInfo]:
        return []


def fake_gateway(provider: FakeEmbedder, settings: Settings | None = None) -> Gateway:
    """Every provider name served by ``provider``; no retries so failures surface at once."""
    s = settings or make_settings(max_retries=0)
    return Gateway(
        s,
        factories={
            "openai": lambda _s: provider,
            "bedrock": lambda _s: provider,
            "local": lambda _s: provider,
        },
    )


def refusing_gateway(settings: Settings | None = None) -> Gateway:
    """A gateway whose providers cannot even be built: proves nothing is sent."""

    def refuse(_s: Settings) -> Provider:
        raise AssertionError("a provider was built: something would have been sent upstream")

    factories: dict[str, ProviderFactory] = {"openai": refuse, "bedrock": refuse, "local": refuse}
    return Gateway(settings or make_settings(), factories=factories)


def fit_unit_vectors(scores: np.ndarray, tol: float = 2e-4) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors E (rows: emojis) and O (rows: outputs) with cos(E_i, O_j) within ``tol`` of scores.

    Starts from the SVD factorisation (exact but not unit-norm), pads two dimensions so the rows can
    be normalised, then refines with Adam on the squared error of the normalised products.
    """
    u, s, vt = np.linalg.svd(scores, full_matrices=False)
    n_e, n_o = scores.shape
    emb = np.hstack([u * np.sqrt(s), np.full((n_e, 1), 0.1), np.zeros((n_e, 1))])
    out = np.hstack([vt.T * np.sqrt(s), np.zeros((n_o, 1)), np.full((n_o, 1), 0.1)])
    params = [emb, out]
    m1 = [np.zeros_like(p) for p in params]
    m2 = [np.zeros_like(p) for p in params]
    lr = 0.05
    for step in range(1, 40001):
        ne = np.linalg.norm(emb, axis=1, keepdims=True)
        no = np.linalg.norm(out, axis=1, keepdims=True)
        eu, ou = emb / ne, out / no
        resid = eu @ ou.T - scores
        if np.abs(resid).max() < tol:
            return eu, ou
        ge, go = resid @ ou, resid.T @ eu
        grads = [
            (ge - eu * np.sum(ge * eu, axis=1, keepdims=True)) / ne,
            (go - ou * np.sum(go * ou, axis=1, keepdims=True)) / no,
        ]
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            m1[i] = 0.9 * m1[i] + 0.1 * g
            m2[i] = 0.999 * m2[i] + 0.001 * g * g
            p -= lr * (m1[i] / (1 - 0.9**step)) / (np.sqrt(m2[i] / (1 - 0.999**step)) + 1e-12)
        if step % 2000 == 0:
            lr /= 2
    raise AssertionError("could not fit unit vectors to the scores")


@pytest.fixture
def real_map_dir(tmp_path: Path) -> Path:
    """A folder holding (a copy of) Code.org's real palettes map only."""
    d = tmp_path / "real"
    d.mkdir()
    shutil.copy(REAL_PALETTES, d / REAL_PALETTES.name)
    return d


@pytest.fixture
def real_map_doc() -> dict[str, Any]:
    return json.loads(REAL_PALETTES.read_text(encoding="utf-8"))


@pytest.fixture
def fake() -> FakeEmbedder:
    return FakeEmbedder()


RunCli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run_cli() -> RunCli:
    """Run ``main(argv)`` with captured stdout/stderr; returns (exit code, out, err)."""
    import io

    from lib.dance.weights import main

    def run(*argv: str, gateway: Gateway | None = None) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main(list(argv), gateway=gateway, stdout=out, stderr=err)
        return code, out.getvalue(), err.getvalue()

    return run


@pytest.fixture
def bedrock_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[BedrockMock]:
    """Dummy AWS credentials and a loopback bedrock-runtime; no AWS files, no instance metadata."""
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_BEARER_TOKEN_BEDROCK"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AIPROXY_CONFIG_FILE", str(tmp_path / "no-config.txt"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-file"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-file"))
    with BedrockMock() as mock:
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", mock.endpoint_url)
        yield mock
