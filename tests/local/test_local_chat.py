"""SmolLM2 chat through the local provider: real llama.cpp inference, small and quick."""

from __future__ import annotations

import json

import jsonschema_rs
import pytest

from lib.errors import ContextTooLongError, InvalidRequestError, UnknownModelError, UpstreamTimeoutError
from lib.providers.base import ChatRequest, JsonSchema, Message, Sampling
from lib.providers.deadline import Deadline
from lib.providers.local import CHAT_MODEL_ID, LocalProvider
from tests.local.conftest import needs_models

pytestmark = [pytest.mark.local, needs_models]

QUESTION = [
    Message("system", "You are a friendly teacher."),
    Message("user", "Explain in two sentences why the sky is blue."),
]


def req(**kw: object) -> ChatRequest:
    values: dict[str, object] = {"model": "local", "messages": QUESTION, "temperature": 0.0, "max_tokens": 48}
    values.update(kw)
    return ChatRequest(**values)  # type: ignore[arg-type]


def test_chat_returns_text_usage_and_model_id(local_provider: LocalProvider) -> None:
    result = local_provider.chat(req(), Deadline(60))
    assert result.model == CHAT_MODEL_ID
    assert result.provider == "local"
    assert len(result.choices) == 1
    choice = result.choices[0]
    assert choice.text.strip()
    assert choice.finish_reason in ("stop", "length")
    assert result.usage.prompt_tokens > 10
    assert 0 < result.usage.completion_tokens <= 48
    assert result.latency_s > 0


def test_multi_turn_history_changes_the_prompt(local_provider: LocalProvider) -> None:
    one = local_provider.chat(req(messages=[Message("user", "Hi")]), Deadline(60))
    history = [Message("user", "Hi"), Message("assistant", "Hello! How can I help?"), Message("user", "Hi")]
    three = local_provider.chat(req(messages=history), Deadline(60))
    assert three.usage.prompt_tokens > one.usage.prompt_tokens + 5


def test_stream_equals_non_stream_at_temperature_zero(local_provider: LocalProvider) -> None:
    whole = local_provider.chat(req(max_tokens=64), Deadline(60))
    deltas = list(local_provider.chat_stream(req(max_tokens=64), Deadline(60)))
    assert len(deltas) > 3  # really streamed, not one lump
    assert "".join(d.text for d in deltas) == whole.choices[0].text
    assert all(d.finish_reason is None and d.usage is None for d in deltas[:-1])
    assert deltas[-1].finish_reason == whole.choices[0].finish_reason
    assert deltas[-1].usage == whole.usage


def test_temperature_zero_is_deterministic(local_provider: LocalProvider) -> None:
    a = local_provider.chat(req(), Deadline(60)).choices[0].text
    b = local_provider.chat(req(), Deadline(60)).choices[0].text
    assert a == b


def test_max_tokens_gives_finish_reason_length(local_provider: LocalProvider) -> None:
    result = local_provider.chat(req(max_tokens=5), Deadline(60))
    assert result.choices[0].finish_reason == "length"
    assert result.usage.completion_tokens == 5
    deltas = list(local_provider.chat_stream(req(max_tokens=5), Deadline(60)))
    assert deltas[-1].finish_reason == "length"
    assert deltas[-1].usage is not None and deltas[-1].usage.completion_tokens == 5


def test_n_choices(local_provider: LocalProvider) -> None:
    result = local_provider.chat(req(n=3, temperature=1.0, max_tokens=12), Deadline(60))
    assert [c.index for c in result.choices] == [0, 1, 2]
    assert all(c.text.strip() for c in result.choices)
    assert result.usage.completion_tokens <= 36
    assert result.usage.completion_tokens >= 3
    greedy = local_provider.chat(req(n=2, max_tokens=12), Deadline(60))
    assert greedy.choices[0].text == greedy.choices[1].text
    assert (
        greedy.usage.completion_tokens
        == 2 * local_provider.chat(req(max_tokens=12), Deadline(60)).usage.completion_tokens
    )


def test_stream_n_choices_are_indexed(local_provider: LocalProvider) -> None:
    deltas = list(local_provider.chat_stream(req(n=2, max_tokens=6), Deadline(60)))
    finished = [d for d in deltas if d.finish_reason is not None]
    assert [d.index for d in finished] == [0, 1]
    assert finished[-1].usage is not None and finished[-1].usage.completion_tokens == 12
    assert "".join(d.text for d in deltas if d.index == 0) == "".join(d.text for d in deltas if d.index == 1)


def test_stop_sequence_cuts_the_answer(local_provider: LocalProvider) -> None:
    full = local_provider.chat(req(max_tokens=64), Deadline(60)).choices[0].text
    words = full.split()
    assert len(words) > 4
    stop_word = words[3]
    cut = local_provider.chat(req(max_tokens=64, stop=[stop_word]), Deadline(60)).choices[0]
    assert cut.finish_reason == "stop"
    assert cut.text == full[: full.index(stop_word)]
    streamed = list(local_provider.chat_stream(req(max_tokens=64, stop=[stop_word]), Deadline(60)))
    assert "".join(d.text for d in streamed) == cut.text


PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 40},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "hobbies": {"type": "array", "items": {"type": "string", "maxLength": 30}, "maxItems": 3},
        "mood": {"type": "string", "enum": ["happy", "sad", "neutral"]},
    },
    "required": ["name", "age", "hobbies", "mood"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("temperature", [0.0, 0.9])
def test_json_schema_output_is_valid_json(local_provider: LocalProvider, temperature: float) -> None:
    schema = JsonSchema("person", PERSON)
    messages = [Message("user", "Describe Bob, a 30 year old who likes chess and hiking.")]
    result = local_provider.chat(
        req(messages=messages, json_schema=schema, temperature=temperature, max_tokens=200), Deadline(60)
    )
    choice = result.choices[0]
    assert choice.finish_reason == "stop"
    value = json.loads(choice.text)
    jsonschema_rs.validate(PERSON, value)


def test_json_schema_in_stream(local_provider: LocalProvider) -> None:
    schema = JsonSchema(
        "verdict", {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    )
    deltas = list(local_provider.chat_stream(req(json_schema=schema, max_tokens=40), Deadline(60)))
    value = json.loads("".join(d.text for d in deltas))
    assert isinstance(value["ok"], bool)


def test_unsupported_schema_is_an_invalid_request(local_provider: LocalProvider) -> None:
    schema = JsonSchema("bad", {"$ref": "https://example.invalid/schema.json"})
    with pytest.raises(InvalidRequestError) as exc:
        local_provider.chat(req(json_schema=schema), Deadline(60))
    assert exc.value.field == "json_schema"


def test_request_validation(local_provider: LocalProvider) -> None:
    with pytest.raises(InvalidRequestError, match="embedding model"):
        local_provider.chat(req(model="local-minilm"), Deadline(60))
    with pytest.raises(UnknownModelError, match="local-gpt9"):
        local_provider.chat(req(model="local-gpt9"), Deadline(60))
    with pytest.raises(InvalidRequestError) as exc:
        local_provider.chat(req(n=99), Deadline(60))
    assert exc.value.field == "n"
    with pytest.raises(InvalidRequestError):
        local_provider.chat(req(messages=[]), Deadline(60))
    for alias in ("local-smollm2", CHAT_MODEL_ID):
        assert local_provider.chat(req(model=alias, max_tokens=2), Deadline(60)).model == CHAT_MODEL_ID


def test_prompt_longer_than_context(fresh_provider) -> None:  # type: ignore[no-untyped-def]
    provider = fresh_provider(local_chat_context=512)
    long = " ".join(["word"] * 800)
    with pytest.raises(ContextTooLongError):
        provider.chat(req(messages=[Message("user", long)]), Deadline(60))


def test_deadline_stops_a_long_generation(local_provider: LocalProvider) -> None:
    local_provider.chat(req(max_tokens=1), Deadline(60))  # loaded
    with pytest.raises(UpstreamTimeoutError):
        local_provider.chat(req(max_tokens=4000, temperature=1.0), Deadline(0.3))
    with pytest.raises(UpstreamTimeoutError):
        list(local_provider.chat_stream(req(max_tokens=4000, temperature=1.0), Deadline(0.3)))
    # the engine went back to the pool: the next call works
    assert local_provider.chat(req(max_tokens=3), Deadline(60)).choices[0].text


def test_abandoned_stream_releases_its_slot(fresh_provider) -> None:  # type: ignore[no-untyped-def]
    provider = fresh_provider(local_max_concurrent=1, local_max_queue=0)
    stream = provider.chat_stream(req(max_tokens=64), Deadline(60))
    next(stream)
    next(stream)
    stream.close()  # type: ignore[attr-defined]
    result = provider.chat(req(max_tokens=3), Deadline(60))  # would be CapacityError if the slot leaked
    assert result.choices[0].text


def test_seed_makes_sampling_reproducible(local_provider: LocalProvider) -> None:
    def ask(seed: int) -> list[str]:
        out = local_provider.chat(
            req(temperature=1.2, max_tokens=12, n=2, sampling=Sampling(seed=seed, top_p=0.99)), Deadline(60)
        )
        return [c.text for c in out.choices]

    first = ask(1234)
    assert ask(1234) == first  # same seed, same answers (choice i uses seed + i)
    assert first[0] != first[1] or ask(99) != first  # the seed does change what is sampled


def test_frequency_penalty_changes_a_greedy_answer(local_provider: LocalProvider) -> None:
    plain = local_provider.chat(req(temperature=0, max_tokens=24), Deadline(60)).choices[0].text
    penalised = (
        local_provider.chat(
            req(temperature=0, max_tokens=24, sampling=Sampling(frequency_penalty=2.0, presence_penalty=2.0)),
            Deadline(60),
        )
        .choices[0]
        .text
    )
    assert penalised != plain
