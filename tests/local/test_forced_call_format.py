"""A forced tool call together with a json_schema format (instructor's RESPONSES_TOOLS mode): the call
is the whole answer, so the local model's plan is the call and the format is not a refusal; with a
possible text answer (``auto``) the pair stays a 400 naming ``response_format``."""

from __future__ import annotations

import pytest

from lib.errors import InvalidRequestError
from lib.providers.base import ChatRequest, JsonSchema, Message, Tool, ToolChoice
from lib.providers.local.tools import ToolPlan, plan_for

PERSON = Tool("Person", {"type": "object", "properties": {"name": {"type": "string"}}})
OTHER = Tool("other", {"type": "object"})
FORMAT = JsonSchema("Person", {"type": "object", "properties": {"name": {"type": "string"}}})


def request(choice: ToolChoice | None) -> ChatRequest:
    return ChatRequest(
        "local",
        [Message("user", "Invent a person.")],
        tools=(PERSON, OTHER),
        tool_choice=choice,
        json_schema=FORMAT,
    )


def test_forced_call_plans_the_call() -> None:
    assert plan_for(request(ToolChoice("function", "Person"))) == ToolPlan("required", (PERSON,))
    assert plan_for(request(ToolChoice("required"))) == ToolPlan("required", (PERSON, OTHER))


@pytest.mark.parametrize("choice", [None, ToolChoice("auto")])
def test_a_possible_text_answer_keeps_the_refusal(choice: ToolChoice | None) -> None:
    with pytest.raises(InvalidRequestError) as exc:
        plan_for(request(choice))
    assert exc.value.field == "response_format"
