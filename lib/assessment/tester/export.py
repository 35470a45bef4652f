"""``--export-examples DIR``: few-shot example files from a run.

For each student with an answer: ``DIR/<lesson>/<id>.js`` (the code as graded) and ``<id>.json``
or ``<id>.tsv`` (per the lesson's ``response-type``) holding the model's answer with the columns
``Key Concept, Observations, Evidence, Label, Reason`` -- the form ``examples/`` expects. Correct the
answers by hand and copy the pairs into ``<experiment>/<lesson>/examples/``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lib.errors import InvalidRequestError
from lib.fileio import atomic_write_text

COLUMNS: tuple[str, ...] = ("Key Concept", "Observations", "Evidence", "Label", "Reason")


def is_file_name(name: str) -> bool:
    """A plain file name: ids from ``--student-ids`` are identifiers already; ids from a dataset's
    ``*.js`` names may hold other characters (spaces) but never a separator or a ``..``."""
    return bool(name) and name not in (".", "..") and not any(c in name for c in "/\\\0")


def _cell(value: Any) -> str:
    return " ".join(str(value if value is not None else "").split())


def answer_text(rows: list[dict[str, Any]], response_type: str) -> str:
    clean = [
        {c: _cell(row.get(c, row.get("Grade", "") if c == "Label" else "")) for c in COLUMNS} for row in rows
    ]
    if response_type == "json":
        return json.dumps(clean, indent=4, ensure_ascii=False) + "\n"
    lines = ["\t".join(COLUMNS)] + ["\t".join(row[c] for c in COLUMNS) for row in clean]
    return "\n".join(lines) + "\n"


def export_example(
    folder: Path, student_id: str, code: str, rows: list[dict[str, Any]], response_type: str
) -> None:
    if not is_file_name(student_id):  # a file name inside ``folder``, never a path
        raise InvalidRequestError(f"--export-examples: student id {student_id!r} is not a file name")
    atomic_write_text(folder / f"{student_id}.js", code)
    atomic_write_text(folder / f"{student_id}.{response_type}", answer_text(rows, response_type))
