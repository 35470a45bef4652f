"""The one provider registry: every shipped spec is consistent, and a provider added as one folder
plus one registry line is routed, built, listed, priced and capability-checked with no other change."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from collections.abc import Callable

import pytest
from flask import Flask

from lib.assessment.tester.estimate import cost_usd, price_for
from lib.dance.cost import price_per_million
from lib.errors import InvalidRequestError, UnknownModelError
from lib.providers import capabilities
from lib.providers.base import ChatRequest, ImagePart, JsonSchema, Message, Sampling, TextPart, Tool
from lib.providers.gateway import DEFAULT_FACTORIES, Gateway
from lib.providers.registry import PROVIDERS, REGISTRY, Registry
from lib.providers.routing import resolve_model
from lib.providers.spec import AGENT_WORDS, ALL_SAMPLING, PASS_THROUGH
from tests.conftest import API_KEY, make_settings
from tests.support import echo_provider
from tests.support.server import REPO

# One folder (tests/support/echo_provider.py stands for lib/providers/echo/) plus one line:
WITH_ECHO = Registry((*PROVIDERS, echo_provider.SPEC))

#: Model names of every shipped family, with the provider each must route to.
SAMPLES = {
    "gpt-4o": "openai",
    "gpt-4o-mini": "openai",
    "o3-mini": "openai",
    "chatgpt-4o-latest": "openai",
    "text-embedding-3-small": "openai",
    "openai.ft:gpt-4o:acme": "openai",
    "bedrock.us.anthropic.claude-sonnet-4-5-20250929-v1:0": "bedrock",
    "bedrock.anthropic.claude-3-haiku-20240307-v1:0": "bedrock",
    "bedrock.meta.llama3-1-70b-instruct-v1:0": "bedrock",
    "bedrock.us.amazon.nova-pro-v1:0": "bedrock",
    "bedrock.amazon.titan-embed-text-v2:0": "bedrock",
    "bedrock.mistral.mistral-large-2402-v1:0": "bedrock",
    "bedrock.cohere.embed-english-v3": "bedrock",
    "sagemaker.llama-3-8b-instruct": "sagemaker",
    "sagemaker.shared-gpu-endpoint.mistral-7b-ic": "sagemaker",
    "local": "local",
    "local-smollm2": "local",
    "local-minilm-l6-v2": "local",
}
TOOL = Tool("get_weather", {"type": "object", "properties": {"city": {"type": "string"}}})
PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 16


# --- the shipped specs -------------------------------------------------------------------------
def test_registry_lists_each_provider_once_and_gateway_builds_with_their_factories() -> None:
    names = [s.name for s in REGISTRY]
    assert names == ["openai", "bedrock", "sagemaker", "local"]
    assert {s.name: s.factory for s in PROVIDERS} == DEFAULT_FACTORIES
    with pytest.raises(ValueError, match="unique"):
        Registry((*PROVIDERS, PROVIDERS[0]))


@pytest.mark.parametrize(("name", "provider"), sorted(SAMPLES.items()))
def test_each_sample_is_claimed_by_exactly_one_spec(name: str, provider: str) -> None:
    claims = [s.name for s in REGISTRY if s.match(name) is not None]
    assert claims == [provider]
    route = resolve_model(name)
    assert route.spec is REGISTRY.get(provider)
    assert route.agent in AGENT_WORDS


@pytest.mark.parametrize("spec", PROVIDERS, ids=lambda s: s.name)
def test_shipped_spec_is_consistent(spec: object) -> None:
    from lib.providers.spec import ProviderSpec

    assert isinstance(spec, ProviderSpec)
    assert spec.name and spec.title and spec.hint
    for pattern in spec.routes:
        assert isinstance(pattern, re.Pattern)
        assert set(pattern.groupindex) <= {"id"}
        re.compile(pattern.pattern)  # the source compiles on its own, too
    for listed in spec.listed:
        assert spec.match(listed) is not None, listed
    patterns = [p.pattern for p in spec.prices]
    assert len(set(patterns)) == len(patterns)
    for i, price in enumerate(spec.prices):
        assert price.pattern and price.pattern == price.pattern.lower()
        assert price.input_usd >= 0 and price.output_usd >= 0
        # an earlier pattern contained in a later one would always win: the later one is dead
        assert not any(earlier in price.pattern for earlier in patterns[:i]), price.pattern
        assert spec.price(price.pattern) == price  # every entry is reachable by its own id


def test_shipped_agent_words_are_the_web_apps() -> None:
    words = {resolve_model(name).agent for name in SAMPLES}
    assert words <= AGENT_WORDS
    assert {"openai", "anthropic", "meta", "amazon", "bedrock", "sagemaker", "local"} == words


def test_openai_capabilities_pass_everything_through() -> None:
    assert resolve_model("gpt-4o").spec.capabilities("gpt-4o") is PASS_THROUGH
    assert set(Sampling(**_all_sampling()).set_fields()) == ALL_SAMPLING


def _all_sampling() -> dict[str, object]:
    return {
        "top_p": 0.5,
        "seed": 1,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.1,
        "logit_bias": {"1": 1.0},
        "user": "u",
        "logprobs": True,
        "top_logprobs": 2,
    }


def test_capabilities_come_from_each_spec() -> None:
    claude = resolve_model("bedrock.us.anthropic.claude-3-5-haiku-20241022-v1:0")
    caps = claude.spec.capabilities(claude.model_id)
    assert caps.tools and caps.forced_tool_choice and not caps.logprobs and not caps.embeddings
    titan = resolve_model("bedrock.amazon.titan-embed-text-v1")
    assert titan.spec.capabilities(titan.model_id).embeddings
    local = resolve_model("local")
    assert local.spec.capabilities("local").embeddings and not local.spec.capabilities("local").images
    assert not local.spec.capabilities("local-smollm2").embeddings


@pytest.mark.parametrize(
    ("model", "price"),
    [
        ("gpt-4o-mini", (0.15, 0.60)),
        ("gpt-4o", (2.50, 10.00)),
        ("gpt-4.1-nano", (0.10, 0.40)),
        ("o1", (15.00, 60.00)),
        ("o1-mini", (1.10, 4.40)),
        ("bedrock.us.anthropic.claude-3-5-haiku-20241022-v1:0", (0.80, 4.00)),
        ("bedrock.anthropic.claude-3-haiku-20240307-v1:0", (0.25, 1.25)),
        ("bedrock.us.anthropic.claude-sonnet-4-5-20250929-v1:0", (3.00, 15.00)),
        ("bedrock.meta.llama3-70b-instruct-v1:0", (2.65, 3.50)),
        ("bedrock.mistral.mistral-large-2402-v1:0", (4.00, 12.00)),
        ("local", (0.0, 0.0)),
        ("local-smollm2", (0.0, 0.0)),
        ("bedrock.amazon.nova-pro-v1:0", (0.80, 3.20)),
        ("claude-3-haiku", None),  # routes nowhere: no price
        ("best", None),
    ],
)
def test_rubric_tester_prices_read_the_registry(model: str, price: tuple[float, float] | None) -> None:
    assert price_for(model) == price


@pytest.mark.parametrize(
    ("model", "usd"),
    [
        ("bedrock.amazon.titan-embed-text-v1", 0.10),
        ("bedrock.amazon.titan-embed-text-v2:0", 0.02),
        ("bedrock.us.amazon.titan-embed-text-v2:0", 0.02),  # a profile costs what its model costs
        ("bedrock.amazon.titan-embed-image-v1", 0.80),
        ("bedrock.cohere.embed-multilingual-v3", 0.10),
        ("text-embedding-3-small", 0.02),
        ("text-embedding-3-large", 0.13),
        ("text-embedding-ada-002", 0.10),
        ("local", 0.0),
        ("bedrock.amazon.titan-embed-g1-text-02", None),
    ],
)
def test_dance_prices_read_the_registry(model: str, usd: float | None) -> None:
    assert price_per_million(resolve_model(model)) == usd


def test_importing_the_registry_loads_no_sdk() -> None:
    code = (
        "import sys; import lib.providers.registry, lib.providers.routing, lib.providers.gateway; "
        "import lib.providers.capabilities; "
        "heavy = ('openai', 'boto3', 'botocore', 'torch', 'llama_cpp', 'sentence_transformers'); "
        "print([n for n in heavy if n in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


# --- a provider added as one folder plus one line -----------------------------------------------
def test_added_provider_is_routed_with_its_agent_word() -> None:
    route = resolve_model("echo.small", registry=WITH_ECHO)
    assert (route.provider, route.model_id, route.agent) == ("echo", "small", "meta")
    assert resolve_model("gpt-4o", registry=WITH_ECHO).provider == "openai"  # the others unchanged
    with pytest.raises(UnknownModelError, match=r"echo\.<id> \(Echo\)"):
        resolve_model("nothing", registry=WITH_ECHO)
    with pytest.raises(UnknownModelError):
        resolve_model("echo.small")  # not in the shipped registry


def test_added_provider_is_built_by_its_factory_once_and_called() -> None:
    before = len(echo_provider.BUILT)
    gateway = Gateway(make_settings(), registry=WITH_ECHO)
    assert gateway.chat("echo.small", [Message("user", "hi")]).choices[0].text == "echo: hi"
    _route, deltas = gateway.chat_stream("echo.small", [Message("user", "yo")])
    assert "".join(d.text for d in deltas) == "echo: yo"
    assert gateway.embed("echo.embed-1", ["abc"]).vectors == [[3.0, 1.0]]
    assert len(echo_provider.BUILT) == before + 1


def test_added_provider_is_capability_checked_in_the_one_place() -> None:
    gateway = Gateway(make_settings(), registry=WITH_ECHO)
    hi = [Message("user", "hi")]
    seeded = gateway.chat("echo.small", hi, sampling=Sampling(seed=3))
    assert seeded.choices[0].text == "echo: hi"
    refused = {
        "top_p": lambda: gateway.chat("echo.small", hi, sampling=Sampling(top_p=0.5)),
        "tools": lambda: gateway.chat("echo.small", hi, tools=[TOOL]),
        "response_format": lambda: gateway.chat("echo.small", hi, json_schema=JsonSchema("a", {})),
        "messages": lambda: gateway.chat(
            "echo.small", [Message("user", (TextPart("what"), ImagePart("image/png", PNG)))]
        ),
        "n": lambda: gateway.chat_stream("echo.small", hi, n=2),
        "model": lambda: gateway.embed("echo.small", ["abc"]),
    }
    for fld, call in refused.items():
        with pytest.raises(InvalidRequestError) as info:
            call()
        assert info.value.field == fld, fld
        assert "echo.small" in info.value.message
    req = ChatRequest("", hi, tools=(TOOL,))
    assert capabilities.missing(resolve_model("echo.small", registry=WITH_ECHO), req) == (
        "tools",
        "tools (function calling) are not supported by model echo.small (Echo)",
    )


def test_added_provider_is_priced_for_both_cost_estimates() -> None:
    assert price_for("echo.small", registry=WITH_ECHO) == (1.0, 4.0)
    assert cost_usd("echo.small", 1_000_000, 1_000_000) is None  # shipped registry: unknown
    assert price_per_million(resolve_model("echo.embed-1", registry=WITH_ECHO)) == 0.5
    assert price_for("echo.other", registry=WITH_ECHO) is None


def test_added_provider_is_listed_and_described_by_v1_models(app_factory: Callable[..., Flask]) -> None:
    settings = make_settings()
    app = app_factory(settings, gateway=Gateway(settings, registry=WITH_ECHO))
    client = app.test_client()
    auth = {"Authorization": API_KEY}
    listed = client.get("/v1/models", headers=auth).json
    assert {"id": "echo.small", "object": "model", "created": 0, "owned_by": "echo"} in listed["data"]
    assert any(m["id"] == "local" for m in listed["data"])
    one = client.get("/v1/models/echo.tiny", headers=auth)
    assert one.status_code == 200 and one.json["owned_by"] == "echo"
    r = client.post(
        "/v1/chat/completions",
        json={"model": "echo.small", "messages": [{"role": "user", "content": "hey"}]},
        headers=auth,
    )
    assert r.status_code == 200, r.json
    assert r.json["choices"][0]["message"]["content"] == "echo: hey"
    r = client.post(
        "/v1/chat/completions",
        json={"model": "echo.small", "messages": [{"role": "user", "content": "hey"}], "top_p": 0.5},
        headers=auth,
    )
    assert r.status_code == 400 and "top_p" in r.json["error"]["message"]


@pytest.mark.parametrize(
    ("model", "tools", "images"),
    [
        ("anthropic.claude-v2:1", False, False),
        ("us.anthropic.claude-opus-4-1-20250805-v1:0", True, True),
        ("meta.llama3-8b-instruct-v1:0", False, False),
        ("us.meta.llama3-2-11b-instruct-v1:0", True, True),
        ("us.meta.llama4-maverick-17b-instruct-v1:0", True, True),
        ("amazon.titan-text-express-v1", False, False),
        ("us.amazon.nova-micro-v1:0", True, False),
        ("mistral.mistral-large-2402-v1:0", True, False),
        ("mistral.mixtral-8x7b-instruct-v0:1", False, False),
        ("cohere.command-r-plus-v1:0", True, False),
        ("ai21.jamba-1-5-large-v1:0", False, False),
    ],
)
def test_bedrock_spec_capabilities_by_family(model: str, tools: bool, images: bool) -> None:
    caps = REGISTRY.get("bedrock").capabilities(model)  # type: ignore[union-attr]
    assert (caps.tools, caps.images) == (tools, images)
    assert caps.parallel_tool_calls_off and not caps.stream_n and caps.sampling == {"top_p", "user"}


def test_parallel_tool_calls_false_is_refused_where_not_honoured() -> None:
    req = ChatRequest("", [Message("user", "hi")], tools=(TOOL,), parallel_tool_calls=False)
    claude = resolve_model("bedrock.us.anthropic.claude-3-5-haiku-20241022-v1:0")
    assert capabilities.missing(claude, req) is None  # Bedrock keeps the answer's first call
    spec = claude.spec
    strict = dataclasses.replace(
        spec, capabilities=lambda m: dataclasses.replace(spec.capabilities(m), parallel_tool_calls_off=False)
    )
    assert capabilities.missing(dataclasses.replace(claude, spec=strict), req) == (
        "parallel_tool_calls",
        "parallel_tool_calls: false is not supported by model "
        "bedrock.us.anthropic.claude-3-5-haiku-20241022-v1:0",
    )
    assert capabilities.missing(resolve_model("gpt-4o"), req) is None


def test_tester_estimate_counts_calls_by_the_specs_native_n() -> None:
    from lib.assessment.tester.estimate import estimate_assessment

    common = {"prompt": "p", "rubric": "r", "examples": (), "code": "x = 1", "num_key_concepts": 2}
    native = [s.name for s in PROVIDERS if s.native_n]
    assert native == ["openai"]
    one = estimate_assessment(**common, num_responses=3, native_n=True)  # type: ignore[arg-type]
    each = estimate_assessment(**common, num_responses=3, native_n=False)  # type: ignore[arg-type]
    assert (one[0], each[0]) == (1, 3)
    assert each[1] == 3 * one[1] and each[2] == one[2]
