"""``aiproxy-admin dataset build``: a rubric-tester dataset from production records and teacher labels.

Collection: the records of one lesson (since a date) that have their program stored
(``STORE_STUDENT_CODE=1``, or code sent with feedback) and the teacher labels of
``lib.feedback.accuracy.teacher_verdicts`` (the same pairs the summary counts).

Preprocessing, in this order, each counted in the manifest:

1. one rubric: the rubric (by fingerprint) most records of the window were graded with; records
   graded with another revision are left out (``other_rubric``) -- ``actual_labels.csv`` has one
   column per key concept of one rubric;
2. blank programs dropped (``blank``);
3. only fully labelled students: a teacher label for every key concept (``not_fully_labelled``);
4. duplicates: the same program after removing comments and collapsing whitespace (SHA-256 of
   that normal form) is kept once, the earliest (``duplicates``);
5. names and e-mail addresses in comments are replaced by ``[name]`` / ``[email]`` (line numbers
   unchanged; code outside comments is untouched).

Layout (the rubric tester's, ``lib/assessment/tester/data.py``): ``<out>/<lesson>/<student>.js`` and
``<out>/<lesson>/actual_labels.csv`` (``student,<kc1>,...``); the student id is the assessment id.
Versioning: ``<out>/manifest.json`` has the SHA-256 of every file, the counts, the filters and the
source window; ``version`` (a hash of the file hashes) identifies the dataset's content.  The folder is
built beside ``<out>`` and swapped in with renames, so a reader never sees half a dataset.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import shutil
import tempfile
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from lib.assessment.comments import comment_ranges, remove_comments
from lib.assessment.tester.data import LABELS_FILE
from lib.assessment.tester.options import IDENTIFIER_RULE, is_identifier
from lib.errors import InvalidRequestError
from lib.feedback.accuracy import teacher_verdicts
from lib.feedback.records import AssessmentRecord, utcnow
from lib.fileio import atomic_write_bytes, swap_folder

MANIFEST = "manifest.json"
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
#: "Name: Jane Doe", "by jane doe", "Author - J. Doe", "created by Jane" ... up to three name words
_NAME = re.compile(
    r"(?i)\b(name|author|student|(?:created|written|made|coded|programmed)?\s*by)(\s*[:\-]?\s*)"
    r"([A-Za-z][\w'.-]*(?:[ \t]+[A-Za-z][\w'.-]*){0,2})"
)
_SPACE = re.compile(r"\s+")


def strip_personal(code: str) -> str:
    """E-mail addresses and names in the program's comments replaced; everything else unchanged."""
    out: list[str] = []
    pos = 0
    for start, end in comment_ranges(code):
        out.append(code[pos:start])
        comment = _EMAIL.sub("[email]", code[start:end])
        out.append(_NAME.sub(lambda m: f"{m.group(1)}{m.group(2)}[name]", comment))
        pos = end
    out.append(code[pos:])
    return "".join(out)


def normalised_hash(code: str) -> str:
    """SHA-256 of the program without comments and with all whitespace collapsed (duplicate test)."""
    return hashlib.sha256(_SPACE.sub(" ", remove_comments(code)).strip().encode("utf-8")).hexdigest()


def _labels_csv(key_concepts: tuple[str, ...], rows: list[tuple[str, dict[str, str]]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["student", *key_concepts])
    for student, labels in rows:
        writer.writerow([student, *(labels[kc] for kc in key_concepts)])
    return buf.getvalue()


def select(
    records: list[AssessmentRecord], labels: dict[str, dict[str, str]], *, one_rubric: bool = True
) -> tuple[list[AssessmentRecord], dict[str, int]]:
    """The preprocessing steps 1-4 (see the module docstring; step 1 only with ``one_rubric``: a
    fine-tuning file may mix rubrics); (kept records, counts)."""
    counts = {"records_with_code": len(records), "other_rubric": 0, "blank": 0}
    counts.update(not_fully_labelled=0, duplicates=0)
    if not records:
        return [], counts
    by_rubric = Counter(r.rubric_sha256 for r in records)
    rubric = max(
        by_rubric, key=lambda h: (by_rubric[h], max(r.created_at for r in records if r.rubric_sha256 == h))
    )
    kept: list[AssessmentRecord] = []
    seen: set[str] = set()
    for record in records:
        code = record.code or ""
        mine = labels.get(record.id, {})
        if one_rubric and record.rubric_sha256 != rubric:
            counts["other_rubric"] += 1
        elif not code.strip():
            counts["blank"] += 1
        elif any(kc not in mine for kc in record.key_concepts):
            counts["not_fully_labelled"] += 1
        elif (digest := normalised_hash(code)) in seen:
            counts["duplicates"] += 1
        else:
            seen.add(digest)
            kept.append(record)
    return kept, counts


def build_dataset(engine: sa.Engine, *, lesson: str, since: datetime | None, out: Path) -> dict[str, Any]:
    """Write the dataset folder ``out`` (replacing it atomically); return its manifest.

    ``lesson`` becomes a folder name, and /assessment callers may send any text as a lesson: one that
    is not a plain name (``../x``, ``a/b``, ``.hidden``) is refused before anything is read or written.
    """
    if not is_identifier(lesson):
        raise InvalidRequestError(f"lesson {lesson[:80]!r} is not a name ({IDENTIFIER_RULE})", field="lesson")
    verdicts = teacher_verdicts(engine, lesson=lesson, since=since, with_code=True)
    kept, counts = select(verdicts.records, verdicts.labels)
    if not kept:
        raise InvalidRequestError(
            f"no fully labelled, non-blank program with stored code for lesson {lesson!r} in the window "
            f"({json.dumps(counts)})"
        )
    first = kept[0]
    files: dict[str, bytes] = {f"{lesson}/{r.id}.js": strip_personal(r.code or "").encode() for r in kept}
    label_rows = [(r.id, verdicts.labels[r.id]) for r in kept]
    files[f"{lesson}/{LABELS_FILE}"] = _labels_csv(first.key_concepts, label_rows).encode()
    hashes = {path: hashlib.sha256(data).hexdigest() for path, data in sorted(files.items())}
    version = hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()
    manifest = {
        "name": out.name,
        "version": version,
        "created_at": utcnow().isoformat(timespec="seconds") + "Z",
        "lesson": lesson,
        "filters": {
            "lesson": lesson,
            "since": since.isoformat() if since else None,
            "rubric_sha256": first.rubric_sha256,
            "steps": [
                "one rubric",
                "drop blank",
                "fully labelled",
                "dedupe normalised code",
                "strip names/e-mails",
            ],
        },
        "window": {
            "since": since.isoformat() if since else None,
            "first_assessment": min(r.created_at for r in kept).isoformat(),
            "last_assessment": max(r.created_at for r in kept).isoformat(),
        },
        "counts": {**counts, "students": len(kept)},
        "key_concepts": list(first.key_concepts),
        "files": hashes,
    }
    files[MANIFEST] = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
    _write_folder(out, files)
    return manifest


def _write_folder(out: Path, files: dict[str, bytes]) -> None:
    """Build the folder beside ``out`` and swap it in (old folder moved aside, then removed)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for rel, data in files.items():
            atomic_write_bytes(staging / rel, data)
        swap_folder(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
