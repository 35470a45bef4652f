"""``--dynamic-examples K --examples-from SOURCE``: few-shot examples chosen per student by similarity.

Teachers' rubrics work best with examples close to the student's program, but whether nearest
examples beat the experiment's fixed ones is to be measured, not assumed: with this option every
student is assessed twice, once with the fixed ``examples/`` and once with the ``K`` graded examples
nearest to their program, and the run reports both accuracies side by side (``side_by_side``).

Selection is ``lib/retrieval/examples.py`` (the one implementation ``/assessment``'s
``examples-collection`` uses): the query is the program with comments removed, embedded with the
collection's model.  ``SOURCE`` is

- a dataset name (a folder under ``datasets/``, local, bundled or from S3 like ``--dataset-name``):
  each graded student of the lesson is an example, its answer being its human labels in the lesson's
  response type.  The dataset is ingested into a collection embedded with the configured embedding
  model (``local`` offline), kept in ``<output>/dynamic_examples.db`` so a rerun embeds only programs
  that changed.  When it is the dataset being measured, a student is never its own example
  (leave-one-out), else the measurement would grade students with their own human labels.
- ``collection:NAME``: a retrieval collection in the service's database (``DATABASE_URL``), one
  document per example with its answer in ``response`` metadata, as ``/assessment`` reads it; a
  document whose id is the student's id is left out as well.

The chosen examples go into the request, so the answer cache's fingerprint covers them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lib.assessment.tester.data import LessonData, Student
from lib.assessment.tester.export import answer_text
from lib.assessment.tester.options import COLLECTION_PREFIX
from lib.errors import InvalidRequestError
from lib.retrieval.examples import nearest_example_docs
from lib.retrieval.service import Retrieval
from lib.retrieval.store import CollectionNotFoundError, CollectionStore, Embed
from lib.store import Store

INDEX_FILE = "dynamic_examples.db"
#: Programs are embedded whole when they fit: long chunks keep a program's structure together.
CHUNK_TOKENS, CHUNK_OVERLAP = 500, 50
OPTION = "--examples-from"


def collection_of(source: str) -> str | None:
    """The collection name of a ``collection:NAME`` source, else None (a dataset name)."""
    return source[len(COLLECTION_PREFIX) :] if source.startswith(COLLECTION_PREFIX) else None


def graded_answer(pool: LessonData, student_id: str) -> str:
    """A graded student's human labels as an example answer, in the lesson's response type."""
    labels = pool.labels[student_id]
    rows = [{"Key Concept": kc, "Label": labels[kc]} for kc in pool.key_concepts]
    return answer_text(rows, pool.params.response_type)


@dataclass
class ExampleChooser:
    """The run's source of nearest examples: one collection per lesson, queried per student."""

    retrieval: Retrieval
    embed: Embed
    k: int
    source: str
    leave_one_out: bool
    close: Callable[[], None] = lambda: None
    collections: dict[str, str] = field(default_factory=dict)

    def ingest(self, pool: LessonData, model: str) -> None:
        """Make ``pool``'s graded students the examples of its lesson (re-embedding changed ones only)."""
        name = f"{self.source}-{pool.lesson}"[:100]
        store = self.retrieval.store
        try:
            if store.get(name).model != model:  # the embedding model changed since the last run
                store.delete(name)
                self.retrieval.forget(name)
        except CollectionNotFoundError:
            pass
        coll, _ = store.create(name, model, CHUNK_TOKENS, CHUNK_OVERLAP)
        wanted = {s.id for s in pool.students}
        for stale in set(store.document_metadata(coll)) - wanted:
            store.delete_document(coll, stale)
        for student in pool.students:
            meta = {"response": graded_answer(pool, student.id), "student": student.id}
            store.upsert(coll, student.id, student.code, meta, self.embed)
        self.collections[pool.lesson] = name

    def use_collection(self, lesson: str, name: str) -> None:
        self.collections[lesson] = name

    def choose(self, lesson: str, student: Student) -> list[tuple[str, str, str]]:
        """``(example id, code, answer)`` of the ``k`` examples nearest to ``student``'s program."""
        exclude = (student.id,) if self.leave_one_out else ()
        try:
            return nearest_example_docs(
                self.retrieval, self.collections[lesson], student.code, self.k, self.embed, exclude=exclude
            )
        except CollectionNotFoundError as exc:
            raise InvalidRequestError(f"{OPTION}: {exc.message}", field=OPTION) from None


def dataset_chooser(folder: Path, embed: Embed, k: int, source: str, leave_one_out: bool) -> ExampleChooser:
    """A chooser over a dataset, its collections in ``folder/dynamic_examples.db`` (SQLite)."""
    folder.mkdir(parents=True, exist_ok=True)
    store = Store(f"sqlite:///{folder / INDEX_FILE}")
    store.migrate()
    retrieval = Retrieval(CollectionStore(store.engine))
    return ExampleChooser(retrieval, embed, k, source, leave_one_out, close=store.dispose)


def collection_chooser(
    store: Store, embed: Embed, k: int, source: str, lessons: Sequence[str]
) -> ExampleChooser:
    """A chooser over one collection of the service's database, used for every lesson."""
    name = collection_of(source) or source
    retrieval = Retrieval(CollectionStore(store.engine))
    if retrieval.store.generation(name) is None:
        store.dispose()
        raise InvalidRequestError(f"{OPTION}: no collection named {name!r}", field=OPTION)
    chooser = ExampleChooser(retrieval, embed, k, source, leave_one_out=True, close=store.dispose)
    for lesson in lessons:
        chooser.use_collection(lesson, name)
    return chooser


def _rates(m: dict[str, Any]) -> dict[str, Any]:
    return {
        "n": m["n"],
        "errors": m["errors"],
        "exact": m["exact"]["rate"],
        "pass_fail": m["pass_fail"]["rate"],
    }


def side_by_side(fixed: dict[str, Any], dynamic: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of the comparison: overall, each lesson, each key concept; fixed and dynamic rates each
    from ``stats.compute_all`` of the run with those examples."""
    rows = [
        {
            "scope": "Overall",
            "level": 0,
            "fixed": _rates(fixed["overall"]),
            "dynamic": _rates(dynamic["overall"]),
        }
    ]
    for lesson, ls in fixed["lessons"].items():
        dl = dynamic["lessons"][lesson]
        rows.append(
            {"scope": lesson, "level": 1, "fixed": _rates(ls["overall"]), "dynamic": _rates(dl["overall"])}
        )
        for kc, km in ls["key_concepts"].items():
            rows.append(
                {
                    "scope": kc,
                    "level": 2,
                    "fixed": _rates(km),
                    "dynamic": _rates(dl["key_concepts"][kc]),
                }
            )
    return rows
