"""Malformed rubrics are the caller's mistake: 400 naming ``rubric`` and what is wrong, before any model
call (the loopback OpenAI stand-in records every request; it must record none)."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from flask.testing import FlaskClient

from lib.assessment.rubric import parse_rubric
from lib.errors import InvalidRequestError
from tests.assessment.conftest import read
from tests.conftest import API_KEY
from tests.support.openai_mock import CHAT, OpenAIMock

GOOD = read("u3l13.csv")

BAD = {
    "unterminated quote": (
        'Key Concept,Extensive Evidence\nLoops,"uses loops\nEvents,handles events\n',
        ["not valid CSV", "line 2", "never closed"],
    ),
    "text after closing quote": (
        'Key Concept,Extensive Evidence\nLoops,"uses" loops\n',
        ["not valid CSV", "line 2"],
    ),
    "no key concept column": ("Concept,Extensive Evidence\nLoops,x\n", ["'Key Concept' column"]),
    "header only": ("Key Concept,Extensive Evidence\n", ["no key concepts"]),
    "duplicate key concepts": (
        "Key Concept,Extensive Evidence\nLoops,a\nEvents,b\n  loops ,c\n",
        ["key concept 'loops' twice", "line 4"],
    ),
    "duplicate column": ("Key Concept,Notes,notes\nLoops,a,b\n", ["'notes' twice"]),
    "unquoted comma": (
        "Key Concept,Extensive Evidence\nLoops,uses for, while and do loops\n",
        ["line 2 has 3 cells", "2 columns"],
    ),
    "text under an unnamed column": ("Key Concept,,Extensive Evidence\nLoops,lost,a\n", ["column 2"]),
    "row without key concept": (
        "Key Concept,Extensive Evidence\nLoops,a\n,orphan text\n",
        ["line 3", "no Key Concept"],
    ),
}


@pytest.mark.parametrize("name", list(BAD))
def test_parse_rubric_refuses_with_the_problem_named(name: str) -> None:
    text, phrases = BAD[name]
    with pytest.raises(InvalidRequestError) as info:
        parse_rubric(text)
    assert info.value.field == "rubric"
    for phrase in phrases:
        assert phrase in info.value.message, info.value.message


def test_parse_rubric_still_accepts_quoted_commas_newlines_and_ragged_short_rows() -> None:
    text = (
        'Key Concept,Extensive Evidence,No Evidence\r\n"Loops, nested","line one\nline two"\r\n'
        "Events,x\r\n\r\n"
    )
    rubric = parse_rubric(text)
    assert rubric.key_concepts == ("Loops, nested", "Events")
    assert rubric.rows[0]["Extensive Evidence"] == "line one\nline two"
    assert rubric.rows[1]["No Evidence"] == ""
    assert parse_rubric(GOOD).key_concepts  # the real Code.org rubric


def _form(rubric: str) -> dict[str, str]:
    return {
        "code": read("u3l13_01.js"),
        "prompt": read("u3l13.txt"),
        "rubric": rubric,
        "model": "gpt-4o",
        "num-responses": "3",
    }


@pytest.mark.parametrize("name", list(BAD))
def test_assessment_route_refuses_a_bad_rubric_without_calling_the_model(
    client: FlaskClient, openai_mock: OpenAIMock, name: str
) -> None:
    text, phrases = BAD[name]
    r = client.post(
        "/assessment",
        data=urlencode(_form(text)),
        headers={"Authorization": API_KEY, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 400, r.get_data(as_text=True)
    assert r.json["kind"] == "invalid_request" and r.json["field"] == "rubric"
    assert phrases[0] in r.json["error"]
    assert openai_mock.calls(CHAT) == []


def test_a_json_body_with_a_bad_rubric_is_refused_too(client: FlaskClient, openai_mock: OpenAIMock) -> None:
    r = client.post(
        "/assessment",
        data=json.dumps(_form(BAD["unterminated quote"][0])),
        headers={"Authorization": API_KEY, "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json["field"] == "rubric"
    assert openai_mock.calls(CHAT) == []


def test_the_mock_does_record_a_good_rubric_call(client: FlaskClient, openai_mock: OpenAIMock) -> None:
    # the stand-in's default answer is no valid assessment; what matters is that the call was made
    client.post(
        "/assessment",
        data=urlencode(_form(GOOD)),
        headers={"Authorization": API_KEY, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert len(openai_mock.calls(CHAT)) >= 1
