"""Datasets, experiments and releases: where they are, loading them, validating them.

``<root>/datasets/<dataset>/<lesson>/``: ``<student_id>.js`` files and ``actual_labels.csv``
(``student,<Key Concept 1>,...``; the legacy name ``expected_grades.csv`` wins when present, as in
Code.org's tool, unless ``--prefer-actual-labels``).

``<root>/{experiments,releases}/<name>/<lesson>/``: ``params.json``, ``system_prompt.txt``,
``standard_rubric.csv``, optional ``examples/<id>.js`` + ``<id>.json|.tsv``, and (releases)
``confidence.json``.

A folder missing locally is downloaded from S3 into ``<root>`` (``-d`` forces a fresh download).
The bundled sample data (``lib/assessment/tester/sample``) is used when ``<root>`` does not have the
named folder and the sample does.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lib.assessment.tester.options import is_identifier
from lib.assessment.tester.params import LessonParams, ParamsError, parse_params
from lib.assessment.tester.s3 import S3Store
from lib.assessment.types import LABELS
from lib.errors import InvalidRequestError

log = logging.getLogger(__name__)

SAMPLE_ROOT = Path(__file__).resolve().parent / "sample"
PROMPT_FILE = "system_prompt.txt"
RUBRIC_FILE = "standard_rubric.csv"
PARAMS_FILE = "params.json"
LABELS_FILE = "actual_labels.csv"
LEGACY_LABELS_FILE = "expected_grades.csv"
CONFIDENCE_FILE = "confidence.json"
#: folders inside an experiment that are not lessons
NON_LESSON_FOLDERS = frozenset({"output", "examples"})


class DataError(InvalidRequestError):
    """Input data (dataset, experiment, labels, rubric) is missing or inconsistent."""


@dataclass(frozen=True)
class Student:
    id: str
    code: str


@dataclass(frozen=True)
class LessonData:
    lesson: str
    dataset_dir: Path
    experiment_dir: Path
    params: LessonParams
    prompt: str
    rubric: str
    key_concepts: tuple[str, ...]
    examples: tuple[tuple[str, str], ...]
    example_ids: tuple[str, ...]
    students: tuple[Student, ...]
    #: student id -> key concept -> human label
    labels: dict[str, dict[str, str]] = field(repr=False)
    release_confidence: dict[str, Any] | None = None


def _norm(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip()


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"missing file: {path}") from None
    except UnicodeDecodeError:
        raise DataError(f"not UTF-8 text: {path}") from None


def rubric_key_concepts(rubric: str, where: str) -> tuple[str, ...]:
    text = rubric.lstrip("\ufeff")
    reader = csv.DictReader(io.StringIO(text))
    fields = [_norm(f) for f in (reader.fieldnames or [])]
    if "Key Concept" not in fields:
        raise DataError(f"{where}: no 'Key Concept' column (header: {', '.join(fields) or 'empty'})")
    column = (reader.fieldnames or [])[fields.index("Key Concept")]
    concepts = [_norm(row.get(column) or "") for row in reader]
    concepts = [c for c in concepts if c]
    if not concepts:
        raise DataError(f"{where}: the rubric has no key concepts")
    dupes = sorted({c for c in concepts if concepts.count(c) > 1})
    if dupes:
        raise DataError(f"{where}: duplicate key concept(s): {', '.join(dupes)}")
    return tuple(concepts)


def read_labels(path: Path) -> tuple[tuple[str, ...], dict[str, dict[str, str]]]:
    """Returns (key concept columns, {student: {kc: label}}). Labels are checked later per student."""
    text = read_text(path)
    reader = csv.reader(io.StringIO(text))
    try:
        header = [_norm(h) for h in next(reader)]
    except StopIteration:
        raise DataError(f"{path}: empty labels file") from None
    if not header or header[0].lower() != "student":
        raise DataError(f"{path}: the first column must be 'student' (got {header[:1]})")
    columns = tuple(header[1:])
    out: dict[str, dict[str, str]] = {}
    for lineno, row in enumerate(reader, start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        student = row[0].strip()
        if student in out:
            raise DataError(f"{path}:{lineno}: student {student} appears twice")
        cells = [c.strip() for c in row[1:]] + [""] * (len(columns) - len(row) + 1)
        out[student] = {kc: cells[i] for i, kc in enumerate(columns)}
    return columns, out


def read_examples(
    lesson_dir: Path, response_type: str
) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    folder = lesson_dir / "examples"
    if not folder.is_dir():
        return (), ()
    pairs: list[tuple[str, str]] = []
    ids: list[str] = []
    for js in sorted(folder.glob("*.js")):
        answer = js.with_suffix(f".{response_type}")
        if not answer.is_file():
            raise DataError(f"example {js.name} has no {answer.name} (response-type is {response_type})")
        pairs.append((read_text(js), read_text(answer)))
        ids.append(js.stem)
    return tuple(pairs), tuple(ids)


def select_students(
    dataset_dir: Path, max_num_students: int, student_ids: list[str] | None
) -> list[tuple[str, Path]]:
    if student_ids:
        chosen = []
        for sid in student_ids:
            path = dataset_dir / f"{sid}.js"
            if not path.is_file():
                raise DataError(f"student {sid}: no {path.name} in {dataset_dir}")
            chosen.append((sid, path))
        return chosen
    files = sorted(dataset_dir.glob("*.js"))
    return [(p.stem, p) for p in files[:max_num_students]]


def load_lesson(
    lesson: str,
    dataset_dir: Path,
    experiment_dir: Path,
    *,
    max_num_students: int,
    student_ids: list[str] | None,
    prefer_actual_labels: bool = False,
    params_transform: Callable[[LessonParams], LessonParams] | None = None,
) -> LessonData:
    """Read and validate everything a lesson run needs. Raises :class:`DataError`/``ParamsError``."""
    if not dataset_dir.is_dir():
        raise DataError(f"lesson {lesson}: dataset folder {dataset_dir} does not exist")
    if not experiment_dir.is_dir():
        raise DataError(f"lesson {lesson}: experiment folder {experiment_dir} does not exist")
    params_path = experiment_dir / PARAMS_FILE
    try:
        raw = json.loads(read_text(params_path))
    except json.JSONDecodeError as exc:
        raise ParamsError(f"{params_path}: invalid JSON ({exc.msg}, line {exc.lineno})") from None
    params = parse_params(raw, str(params_path))
    if params.deprecated_keys:
        log.warning(
            "%s: deprecated key(s) with no effect: %s", params_path, ", ".join(params.deprecated_keys)
        )
    if params_transform is not None:
        params = params_transform(params)
    prompt = read_text(experiment_dir / PROMPT_FILE)
    rubric = read_text(experiment_dir / RUBRIC_FILE)
    key_concepts = rubric_key_concepts(rubric, str(experiment_dir / RUBRIC_FILE))

    unknown_cfe = [kc for kc in params.code_feature_extractor if kc not in key_concepts]
    if unknown_cfe:
        raise ParamsError(
            f"{params_path}: code-feature-extractor names key concept(s) not in the rubric: "
            + ", ".join(unknown_cfe),
            field="code-feature-extractor",
        )

    labels_path = dataset_dir / LABELS_FILE
    legacy = dataset_dir / LEGACY_LABELS_FILE
    if legacy.is_file() and not prefer_actual_labels:
        labels_path = legacy
    columns, labels = read_labels(labels_path)
    missing = [kc for kc in key_concepts if kc not in columns]
    extra = [c for c in columns if c not in key_concepts]
    if missing or extra:
        detail = []
        if missing:
            detail.append("rubric key concept(s) with no label column: " + "; ".join(missing))
        if extra:
            detail.append("label column(s) not in the rubric: " + "; ".join(extra))
        raise DataError(
            f"lesson {lesson}: {labels_path.name} does not match {RUBRIC_FILE}: " + " | ".join(detail)
        )

    chosen = select_students(dataset_dir, max_num_students, student_ids)
    if not chosen:
        raise DataError(f"lesson {lesson}: no students selected in {dataset_dir}")
    problems: list[str] = []
    students: list[Student] = []
    for sid, path in chosen:
        row = labels.get(sid)
        if row is None:
            problems.append(f"student {sid} has no row in {labels_path.name}")
            continue
        for kc in key_concepts:
            value = row.get(kc, "")
            if not value:
                problems.append(f"student {sid} has no label for {kc!r}")
            elif value not in LABELS:
                problems.append(f"student {sid} has invalid label {value!r} for {kc!r}")
        students.append(Student(sid, read_text(path)))
    if problems:
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        raise DataError(f"lesson {lesson}: invalid labels:\n  " + "\n  ".join(shown))

    examples, example_ids = read_examples(experiment_dir, params.response_type)
    confidence = None
    if (experiment_dir / CONFIDENCE_FILE).is_file():
        try:
            confidence = json.loads(read_text(experiment_dir / CONFIDENCE_FILE))
        except json.JSONDecodeError:
            raise DataError(f"{experiment_dir / CONFIDENCE_FILE}: invalid JSON") from None
    return LessonData(
        lesson=lesson,
        dataset_dir=dataset_dir,
        experiment_dir=experiment_dir,
        params=params,
        prompt=prompt,
        rubric=rubric,
        key_concepts=key_concepts,
        examples=examples,
        example_ids=example_ids,
        students=tuple(students),
        labels={s.id: labels[s.id] for s in students},
        release_confidence=confidence,
    )


class Locator:
    """Finds (or downloads) dataset and experiment folders."""

    def __init__(
        self,
        root: Path,
        store_factory: Callable[[], S3Store] | None,
        *,
        download: bool = False,
        sample_root: Path = SAMPLE_ROOT,
    ) -> None:
        self.root = root
        self._store_factory = store_factory
        self._store: S3Store | None = None
        self.download = download
        self.sample_root = sample_root
        self.downloaded: list[str] = []

    @property
    def store(self) -> S3Store:
        if self._store is None:
            if self._store_factory is None:
                raise DataError("S3 is not available in this run")
            self._store = self._store_factory()
        return self._store

    def _bundled(self, rel: str) -> Path | None:
        path = self.sample_root / rel
        return path if path.is_dir() and not (self.root / rel).is_dir() else None

    def folder(self, rel: str) -> Path:
        """``rel`` like ``datasets/<name>/<lesson>``: local, bundled sample, or downloaded."""
        local = self.root / rel
        bundled = self._bundled(rel)
        if bundled is not None:
            return bundled
        if local.is_dir() and not self.download:
            return local
        count = self.store.download_folder(rel, local)
        self.downloaded.append(f"{self.store.url(rel)} -> {local} ({count} files)")
        log.info("downloaded %s (%d files)", self.store.url(rel), count)
        return local

    def fetch_optional(self, rel: str, dest: Path) -> int:
        """Download ``rel`` into ``dest`` if S3 has it (e.g. another run's cached answers); 0 if not."""
        try:
            keys = self.store.list_folders(rel.rsplit("/", 1)[0]) if "/" in rel else []
        except InvalidRequestError:
            return 0
        if rel.rsplit("/", 1)[-1] not in keys:
            return 0
        count = self.store.download_folder(rel, dest)
        self.downloaded.append(f"{self.store.url(rel)} -> {dest} ({count} files)")
        return count

    def is_bundled(self, rel: str) -> bool:
        return self._bundled(rel) is not None

    def lessons(self, rel: str) -> list[str]:
        """Lesson folders of an experiment/release (local or bundled; else listed in S3)."""
        for base in (self.root / rel, self.sample_root / rel):
            if base.is_dir() and not (self.download and base == self.root / rel):
                found = sorted(
                    p.name
                    for p in base.iterdir()
                    if p.is_dir() and p.name not in NON_LESSON_FOLDERS and (p / PARAMS_FILE).is_file()
                )
                if found:
                    return found
        found = [f for f in self.store.list_folders(rel) if f not in NON_LESSON_FOLDERS]
        bad = [f for f in found if not is_identifier(f)]
        if bad:
            raise DataError(
                f"{self.store.url(rel)}: lesson folder name(s) that are not names: "
                + ", ".join(repr(b) for b in bad)
            )
        return found
